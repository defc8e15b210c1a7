"""Cost models of a program: weighted op count, critical-path latency and array throughput, in cycles.

A ``CycleTable`` holds, for one host CPU, each op's latency (cycles from operand to result) and
reciprocal throughput per element of a vectorised loop (cycles of the busiest execution resource
per op), and the loop's own overhead per element. It is a plain value measured once
(``codegen.cycletable``) and recorded with a run; everything here is pure arithmetic on it, so a
model is deterministic and never looks at a clock.

- ``latency``: the longest dependency chain from x to the output, summing op latencies. What a
  scalar call pays, since nothing else in a straight-line program can overlap its critical path.
- ``throughput``: loop overhead plus the larger of two bounds per element. What an array call pays.
  The ports: independent elements overlap their chains and compete for the FP pipes. Each op's
  pressure is its own reciprocal throughput plus that of every other op in proportion to their
  measured port sharing (1: one resource, as add and sub; 0: separate pipes, as add and fma on a
  core with add pipes apart from its FMA pipes); the busiest op's pressure binds. Without sharing
  figures (older tables) every pair shares fully: the plain sum.
  The chain: the out-of-order core holds about ``WINDOW_OPS`` ops in flight, so about
  WINDOW_OPS / n iterations of an n-op loop body (vector_width elements each) overlap, and each
  element pays critical path / (vector_width * WINDOW_OPS / n) cycles. A long chain of cheap ops
  is chain-bound; a wide program is port-bound.
- ``ops``: the weighted op count (``Program.cost``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from primitives.ops import OP_NAMES
from primitives.program import Program, Ref

COST_KINDS = ("ops", "latency", "throughput")
# Ops an out-of-order core keeps in flight in a loop (its FP scheduler and queue: about 64-100 on
# recent x86 and AArch64 cores); chosen from the cores' documented sizes, not fitted to timings.
WINDOW_OPS = 64


class CycleTableError(ValueError):
    """A cycle table that is incomplete or malformed."""


@dataclass(frozen=True, slots=True)
class CycleTable:
    """Per-op latency and reciprocal throughput of one host, in cycles (see the module docstring)."""

    cpu: str
    features: str
    llvmlite: str
    source: str
    vector_width: int
    ns_per_cycle: float
    latency: tuple[tuple[str, float], ...]
    rthroughput: tuple[tuple[str, float], ...]
    loop_overhead: float
    # port sharing of op pairs, (("a,b", fraction), ...) with a < b; pairs not listed share fully
    sharing: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        for label, rows in (("latency", self.latency), ("rthroughput", self.rthroughput)):
            names = {name for name, _ in rows}
            missing = set(OP_NAMES) - names
            if missing:
                raise CycleTableError(f"cycle table has no {label} for {', '.join(sorted(missing))}")
            for name, value in rows:
                if not (isinstance(value, int | float) and value > 0 and value < 1e6):
                    raise CycleTableError(
                        f"cycle table {label} of {name!r} must be a positive number, got {value!r}"
                    )
        object.__setattr__(self, "sharing", tuple(sorted(self.sharing)))  # one spelling per table
        for pair, value in self.sharing:
            ops = pair.split(",")
            if len(ops) != 2 or not set(ops) <= set(OP_NAMES) or ops[0] >= ops[1]:
                raise CycleTableError(f"cycle table sharing key {pair!r} must be 'a,b' of two ops, a < b")
            if not (isinstance(value, int | float) and 0 <= value <= 1):
                raise CycleTableError(f"cycle table sharing of {pair!r} must be in [0, 1], got {value!r}")
        if not (self.loop_overhead >= 0 and self.ns_per_cycle > 0 and self.vector_width >= 1):
            raise CycleTableError("cycle table needs loop_overhead >= 0, ns_per_cycle > 0, vector_width >= 1")

    @property
    def latencies(self) -> dict[str, float]:
        return dict(self.latency)

    @property
    def rthroughputs(self) -> dict[str, float]:
        return dict(self.rthroughput)

    def shares(self, a: str, b: str) -> float:
        """Port sharing of ops a and b (1 for an op with itself and for pairs not measured)."""
        if a == b:
            return 1.0
        return dict(self.sharing).get(",".join(sorted((a, b))), 1.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu": self.cpu,
            "features": self.features,
            "llvmlite": self.llvmlite,
            "source": self.source,
            "vector_width": self.vector_width,
            "ns_per_cycle": self.ns_per_cycle,
            "latency": dict(self.latency),
            "rthroughput": dict(self.rthroughput),
            "loop_overhead": self.loop_overhead,
            "sharing": dict(self.sharing),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CycleTable:
        """Rebuild from ``to_dict`` output (JSON); CycleTableError on anything malformed."""
        try:
            return cls(
                cpu=str(data["cpu"]),
                features=str(data["features"]),
                llvmlite=str(data["llvmlite"]),
                source=str(data["source"]),
                vector_width=int(data["vector_width"]),
                ns_per_cycle=float(data["ns_per_cycle"]),
                latency=tuple(sorted((str(k), float(v)) for k, v in dict(data["latency"]).items())),
                rthroughput=tuple(sorted((str(k), float(v)) for k, v in dict(data["rthroughput"]).items())),
                loop_overhead=float(data["loop_overhead"]),
                sharing=tuple(sorted((str(k), float(v)) for k, v in dict(data.get("sharing", {})).items())),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, CycleTableError):
                raise
            raise CycleTableError(f"malformed cycle table: {exc!r}") from None


def critical_path(program: Program, latency: Mapping[str, float]) -> float:
    """Cycles along the longest dependency chain from the input (or a constant) to the output.

    Constants and x are ready at time 0; dead instructions do not count.
    """
    ready = [0.0]
    for instr, alive in zip(program.body, program.live, strict=True):
        if not alive:
            ready.append(0.0)
            continue
        start = max((ready[a.index] for a in instr.args if isinstance(a, Ref)), default=0.0)
        ready.append(start + latency[instr.op])
    return ready[program.out.index] if isinstance(program.out, Ref) else 0.0


def port_cycles(program: Program, table: CycleTable) -> float:
    """The port bound per element of the array loop: the largest pressure of a live op, its own
    reciprocal throughput and the others' weighted by their port sharing with it (module docstring).
    With full sharing everywhere this is the sum of the live ops' reciprocal throughputs."""
    rthroughput = table.rthroughputs
    counts: dict[str, int] = {}
    for instr, alive in zip(program.body, program.live, strict=True):
        if alive:
            counts[instr.op] = counts.get(instr.op, 0) + 1
    return max(
        (
            sum(table.shares(op, other) * n * rthroughput[other] for other, n in counts.items())
            for op in counts
        ),
        default=0.0,
    )


def chain_cycles(program: Program, table: CycleTable, window: int = WINDOW_OPS) -> float:
    """The dependency-chain bound per element of the array loop: the critical path over the
    elements in flight (``window`` ops of n-op iterations, vector_width elements each)."""
    live = sum(program.live)
    if live == 0:
        return 0.0
    in_flight = table.vector_width * max(1.0, window / live)
    return critical_path(program, table.latencies) / in_flight


def array_cycles(program: Program, table: CycleTable, window: int = WINDOW_OPS) -> float:
    """Cycles per element of the vectorised array loop: loop overhead plus the larger of the port
    bound and the dependency-chain bound (module docstring)."""
    return table.loop_overhead + max(port_cycles(program, table), chain_cycles(program, table, window))


@dataclass(frozen=True, slots=True)
class CostModel:
    """The cost the search minimises: ``cost(program) -> float`` (frozen, picklable, deterministic)."""

    kind: str = "ops"
    weights: tuple[tuple[str, float], ...] = ()
    table: CycleTable | None = None

    def __post_init__(self) -> None:
        if self.kind not in COST_KINDS:
            raise ValueError(f"unknown cost model {self.kind!r} (known: {', '.join(COST_KINDS)})")
        if self.kind != "ops" and self.table is None:
            raise ValueError(f"the {self.kind} cost model needs a cycle table")

    @property
    def unit(self) -> str:
        return (
            "weighted ops"
            if self.kind == "ops"
            else ("cycles per call" if self.kind == "latency" else "cycles per element")
        )

    def cost(self, program: Program) -> float:
        if self.kind == "ops":
            return program.cost(dict(self.weights) if self.weights else None)
        assert self.table is not None
        if self.kind == "latency":
            return round(critical_path(program, self.table.latencies), 6)
        return round(array_cycles(program, self.table), 6)
