"""Cost models of a program: weighted op count, critical-path latency and array throughput, in cycles.

A ``CycleTable`` holds, for one host CPU, each op's latency (cycles from operand to result) and
reciprocal throughput per element of a vectorised loop (cycles of the busiest execution resource
per op), and the loop's own overhead per element. It is a plain value measured once
(``codegen.cycletable``) and recorded with a run; everything here is pure arithmetic on it, so a
model is deterministic and never looks at a clock.

- ``latency``: the longest dependency chain from x to the output, summing op latencies. What a
  scalar call pays, since nothing else in a straight-line program can overlap its critical path.
- ``throughput``: loop overhead plus the larger of two bounds per element. What an array call pays.
  The ports: the sum of the ops' reciprocal throughputs (independent elements overlap their chains
  and compete for the FP ports). The chain: the out-of-order core holds about ``WINDOW_OPS`` ops in
  flight, so about WINDOW_OPS / n iterations of an n-op loop body (vector_width elements each)
  overlap, and each element pays critical path / (vector_width * WINDOW_OPS / n) cycles. A long
  chain of cheap ops is chain-bound; a wide program is port-bound.
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
        if not (self.loop_overhead >= 0 and self.ns_per_cycle > 0 and self.vector_width >= 1):
            raise CycleTableError("cycle table needs loop_overhead >= 0, ns_per_cycle > 0, vector_width >= 1")

    @property
    def latencies(self) -> dict[str, float]:
        return dict(self.latency)

    @property
    def rthroughputs(self) -> dict[str, float]:
        return dict(self.rthroughput)

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
    """The port bound per element of the array loop: the live ops' reciprocal throughputs, summed."""
    rthroughput = table.rthroughputs
    return sum(
        rthroughput[instr.op] for instr, alive in zip(program.body, program.live, strict=True) if alive
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
