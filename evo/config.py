"""RunConfig: every setting of a run, resolved from defaults, a TOML file, flags and ``--set`` overrides.

The resolved config is saved verbatim in the run directory (``config.json``); together with
``meta.json`` it is enough to replay a run.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from evo.errors import UsageError
from evo.selection import DEFAULT_SELECTION, SELECTIONS
from primitives.cycles import COST_KINDS, CycleTable, CycleTableError
from primitives.ops import UnknownOpError, get_op

MUTATION_KINDS = (
    "insert",
    "remove",
    "rewire",
    "change_op",
    "perturb_const",
    "redraw_const",
    "refit",
    "horner_step",
    "reciprocal",
    "fraction",
    "square",
    "level",
)
DEFAULT_MUTATION_WEIGHTS = (
    ("insert", 3.0),
    ("remove", 2.0),
    ("rewire", 2.0),
    ("change_op", 2.0),
    ("perturb_const", 2.0),
    ("redraw_const", 1.0),
    ("refit", 1.0),
    ("reciprocal", 0.0),
    ("fraction", 0.0),
    ("square", 0.0),
    ("level", 0.0),
)
# real mode (when mutation_weights is not given): the continued-fraction steps are on
REAL_MUTATION_WEIGHTS = tuple(
    (kind, {"reciprocal": 1.0, "fraction": 1.0, "square": 0.5, "level": 0.5}.get(kind, weight))
    for kind, weight in DEFAULT_MUTATION_WEIGHTS
)
MODES = ("float32", "real")
BACKENDS = ("serial", "ray")
SEEDINGS = ("identity", "anchors", "classical")
SIGNOFFS = ("front", "best", "none")
MIGRATIONS = ("ring", "random")


@dataclass(frozen=True, slots=True)
class RunConfig:
    """All settings of a search run (see ``evo evolve --help`` and the README for their meaning)."""

    # what to approximate
    target: str | None = "exp2"
    expr: str | None = None
    domain: str | None = None
    name: str | None = None
    mode: str = "float32"
    # the search space and the objective
    ops: tuple[str, ...] = ("add", "sub", "mul", "div", "fma")
    cost_weights: tuple[tuple[str, float], ...] = ()
    cost: str = "ops"  # ops (weighted count), latency (cycles per call) or throughput (cycles per element)
    cost_table: CycleTable | None = None  # the host's cycle table a latency/throughput run uses (recorded)
    cost_source: str = (
        "measure"  # where a missing cost_table comes from: measure (timed) or llvm-mca (simulated)
    )
    max_ops: int = 8
    # the error threshold: ULPs in float32 mode, a relative error in real mode; read from the key
    # target_error (target_ulp is its float32 spelling) and stored under the mode's spelling
    target_ulp: float | None = None
    stop_when_certified: bool = False
    # budget and seed
    max_evals: int | None = None
    max_seconds: float | None = None
    seed: int | None = None
    seed_from: str = "classical"
    # scorer calls of the float32 lattice refinement of each classical seed (evo.lattice; 0: none)
    seed_lattice_budget: int = 6000
    # rounds of the exchange of that refinement: worst final-set points join its set (evo.exchange; 0: none)
    seed_exchange_rounds: int = 3
    # regularized evolution
    population_size: int = 100
    tournament_size: int = 10
    selection: str = DEFAULT_SELECTION
    mutation_weights: tuple[tuple[str, float], ...] = DEFAULT_MUTATION_WEIGHTS
    mutation_retries: int = 20
    restart_after: int = 30000
    # constant fitting
    fit: bool = True
    fit_iterations: int = 40
    # extra broad-start fits for structurally new children; None: 0 in float32 mode, 6 in real mode
    fit_explore_starts: int | None = None
    # escalate a structurally new child to the thorough fit when its error is within this factor of
    # its cost niche's best on the front; None: 10 in real mode, 0 (off) in float32 mode
    escalate_fit: float | None = None
    fit_points: int = 512
    # end-of-run polish (evo.polish): the share of max_seconds kept for the thorough refit of the
    # best programs of the front's highest op counts; None: 0.1 in real mode, 0 (off) in float32 mode
    end_polish_share: float | None = None
    end_polish_programs: int = 2  # distinct structures refitted per op count (the front's entry first)
    end_polish_counts: int = 4  # how many of the front's highest op counts are polished
    polish_budget: int = 96
    polish_below: float = 16.0
    # hard-point mining: every mine_every evaluations, the best program's worst points join the search set
    mine_every: int = 5000
    mine_points: int = 32
    mine_below: float = 64.0
    max_hard_points: int = 2048
    # point sets
    search_points: int = 4096
    select_points: int = 65536
    data_seed: int = 0
    # run directory and logging
    runs_dir: str = "runs"
    checkpoint_every: int = 5000
    progress_every: int = 1000
    log_every_eval: int = 0
    signoff: str = "front"
    cache_size: int = 20000
    # distribution
    backend: str = "serial"
    workers: int | None = None
    ray_address: str | None = None
    in_flight_per_worker: int = 2
    ray_batch: int = 16
    sync_batch: int = 0
    # islands: whole searches that exchange their best programs (None: 1 serial, one per Ray worker)
    islands: int | None = None
    migrate_every: int = 1000  # evaluations per island between migrations
    migrants: int = 2  # how many of an island's best programs each migration sends
    migration: str = "ring"  # ring (to the next island) or random (to a drawn other island)
    sync_migration: bool = False  # migrate at fixed counts in a fixed order (deterministic on Ray)

    # ----------------------------------------------------------------- views
    @property
    def weights(self) -> dict[str, float]:
        return dict(self.mutation_weights)

    @property
    def costs(self) -> dict[str, float]:
        """Cost weight of every allowed op (op-table default unless overridden)."""
        overrides = dict(self.cost_weights)
        return {op: overrides.get(op, get_op(op).cost) for op in self.ops}

    @property
    def dtype(self) -> str:
        return "float64" if self.mode == "real" else "float32"

    @property
    def target_error(self) -> float | None:
        """The error threshold (ULPs in float32 mode, relative error in real mode), or None."""
        return self.target_ulp

    def describe_target_error(self) -> str:
        """One line saying what the threshold means, e.g. ``target error: relative 1e-06``."""
        if self.target_ulp is None:
            return "target error: none (minimise the error within max_ops)"
        if self.mode == "real":
            return f"target error: relative {self.target_ulp:g} (|y - f(x)| / |f(x)|)"
        return f"target error: {self.target_ulp:g} ULP (float32)"

    @property
    def objective(self) -> str:
        return "cost" if self.target_ulp is not None else "error"

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["ops"] = list(self.ops)
        data["cost_weights"] = dict(self.cost_weights)
        data["mutation_weights"] = dict(self.mutation_weights)
        data["cost_table"] = None if self.cost_table is None else self.cost_table.to_dict()
        if self.mode == "real":  # a relative error is not a number of ULPs: store it as target_error
            data = {("target_error" if k == "target_ulp" else k): v for k, v in data.items()}
        return data

    def replace(self, **changes: Any) -> RunConfig:
        return from_mapping({**self.to_dict(), **changes})


ALIASES = ("target_error",)  # keys that set a field of another name (target_error -> target_ulp)


def _field_names() -> list[str]:
    return [f.name for f in fields(RunConfig)]


def _key_names() -> list[str]:
    return [*_field_names(), *ALIASES]


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _default(name: str) -> Any:
    return next(f for f in fields(RunConfig) if f.name == name).default


def _unknown_key(key: str) -> UsageError:
    close = difflib.get_close_matches(key, _key_names(), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return UsageError(f"unknown config key {_brief(key)}{hint}")


def _as_int(key: str, value: Any, minimum: int | None = None, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not value.is_integer())
    ):
        raise UsageError(f"config {key!r} must be an integer, got {_brief(value)}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise UsageError(f"config {key!r} must be >= {minimum}, got {value}")
    return value


def _as_float(key: str, value: Any, optional: bool = False, positive: bool = True) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
        raise UsageError(f"config {key!r} must be a finite number, got {_brief(value)}")
    if positive and value <= 0:
        raise UsageError(f"config {key!r} must be positive, got {value!r}")
    return float(value)


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond the float range
        return False


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise UsageError(f"config {key!r} must be one of {', '.join(choices)}, got {_brief(value)}")
    return value


def _weights(key: str, value: Any, allowed: tuple[str, ...] | None) -> tuple[tuple[str, float], ...]:
    shape = UsageError(f"config {key!r} must be a table of name = weight, got {_brief(value)}")
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, list | tuple):
        if not all(isinstance(item, list | tuple) and len(item) == 2 for item in value):
            raise shape
        items = [tuple(item) for item in value]
    else:
        raise shape
    result = []
    for name, weight in items:
        if not isinstance(name, str):
            raise shape
        if allowed is not None and name not in allowed:
            raise UsageError(f"config {key!r}: unknown entry {name!r} (known: {', '.join(allowed)})")
        if allowed is None:
            _known_op(key, name)
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not _finite(weight)
            or weight < 0
        ):
            raise UsageError(f"config {key}.{name} must be a number >= 0, got {_brief(weight)}")
        result.append((str(name), float(weight)))
    return tuple(sorted(result))


def _known_op(key: str, name: Any) -> None:
    if not isinstance(name, str):
        raise UsageError(f"config {key!r}: op names are text, got {_brief(name)}")
    try:
        get_op(name)
    except UnknownOpError as exc:
        raise UsageError(f"config {key!r}: {exc}") from None


def _cost_table(value: Any) -> CycleTable | None:
    if value is None or isinstance(value, CycleTable):
        return value
    if not isinstance(value, Mapping):
        raise UsageError("config 'cost_table' must be a table (as recorded in config.json)")
    try:
        return CycleTable.from_dict(value)
    except CycleTableError as exc:
        raise UsageError(f"config 'cost_table': {exc}") from None


def from_mapping(data: Mapping[str, Any]) -> RunConfig:
    """A validated RunConfig from a plain mapping (unknown keys and bad values raise UsageError).

    Target texts are checked here with the safe expression language (``targets.expr``), so every
    reader of a config (a TOML file, flags, a stored config.json on resume, export or inspect)
    refuses a bad or hostile ``expr``/``domain`` before anything else uses it.
    """
    if not isinstance(data, Mapping):
        raise UsageError(f"a config must be a table of keys, got {type(data).__name__}")
    for key in data:
        if key not in _key_names():
            raise _unknown_key(key)
    merged = {name: data.get(name, _default(name)) for name in _field_names()}
    c = merged
    out: dict[str, Any] = {}
    for key in ("target", "expr", "domain", "name", "ray_address"):
        if c[key] is not None and not isinstance(c[key], str):
            raise UsageError(f"config {key!r} must be text, got {_brief(c[key])}")
        out[key] = c[key]
    if out["expr"] is not None:
        out["target"] = None if data.get("target") is None else out["target"]
    check_target_choice(out["target"], out["expr"], out["domain"])
    _check_target_texts(out["target"], out["expr"], out["domain"])
    out["mode"] = _choice("mode", c["mode"], MODES)
    ops = c["ops"]
    if isinstance(ops, str):
        ops = [p.strip() for p in ops.split(",") if p.strip()]
    if not isinstance(ops, list | tuple) or not ops:
        raise UsageError("config 'ops' must be a non-empty list of op names")
    for op in ops:
        _known_op("ops", op)
    if len(set(ops)) != len(ops):
        raise UsageError(f"config 'ops' lists an op twice: {_brief(list(ops))}")
    out["ops"] = tuple(ops)
    out["cost_weights"] = _weights("cost_weights", c["cost_weights"], None)
    out["cost"] = _choice("cost", c["cost"], COST_KINDS)
    out["cost_table"] = _cost_table(c["cost_table"])
    out["cost_source"] = _choice("cost_source", c["cost_source"], ("measure", "llvm-mca"))
    out["max_ops"] = _as_int("max_ops", c["max_ops"], minimum=1)
    out["target_ulp"] = _target_error(data, out["mode"])
    if not isinstance(c["stop_when_certified"], bool):
        raise UsageError("config 'stop_when_certified' must be true or false")
    if c["stop_when_certified"] and out["target_ulp"] is None:
        raise UsageError("stop_when_certified needs target_error (target_ulp in float32 mode)")
    out["stop_when_certified"] = c["stop_when_certified"]
    out["max_evals"] = _as_int("max_evals", c["max_evals"], minimum=1, optional=True)
    out["max_seconds"] = _as_float("max_seconds", c["max_seconds"], optional=True)
    seed = c["seed"]
    if seed is not None:
        seed = _as_int("seed", seed, minimum=0)
    out["seed"] = seed
    # real mode starts from f(x) = x unless told otherwise: polynomial seeds crowd out the rational
    # forms its search finds (float32 starts from the classical answer and has to beat it)
    seeding = data.get("seed_from", "identity" if out["mode"] == "real" else c["seed_from"])
    out["seed_from"] = _choice("seed_from", seeding, SEEDINGS)
    out["seed_lattice_budget"] = _as_int("seed_lattice_budget", c["seed_lattice_budget"], minimum=0)
    out["seed_exchange_rounds"] = _as_int("seed_exchange_rounds", c["seed_exchange_rounds"], minimum=0)
    out["population_size"] = _as_int("population_size", c["population_size"], minimum=2)
    out["tournament_size"] = _as_int("tournament_size", c["tournament_size"], minimum=1)
    if out["tournament_size"] > out["population_size"]:
        raise UsageError("tournament_size cannot exceed population_size")
    out["selection"] = _choice("selection", c["selection"], SELECTIONS)
    given = data.get("mutation_weights")
    if given is None and out["mode"] == "real":
        given = REAL_MUTATION_WEIGHTS
    weights = _weights("mutation_weights", c["mutation_weights"] if given is None else given, MUTATION_KINDS)
    if not any(w > 0 for _, w in weights):
        raise UsageError("at least one mutation weight must be positive")
    out["mutation_weights"] = weights
    out["mutation_retries"] = _as_int("mutation_retries", c["mutation_retries"], minimum=1)
    out["restart_after"] = _as_int("restart_after", c["restart_after"], minimum=0)
    if not isinstance(c["fit"], bool):
        raise UsageError(f"config 'fit' must be true or false, got {_brief(c['fit'])}")
    out["fit"] = c["fit"]
    out["fit_iterations"] = _as_int("fit_iterations", c["fit_iterations"], minimum=0)
    out["fit_explore_starts"] = _as_int(
        "fit_explore_starts", c["fit_explore_starts"], minimum=0, optional=True
    )
    out["escalate_fit"] = _as_float("escalate_fit", c["escalate_fit"], optional=True, positive=False)
    if out["escalate_fit"] is not None and out["escalate_fit"] < 0:
        raise UsageError(f"config 'escalate_fit' must be >= 0, got {out['escalate_fit']!r}")
    out["fit_points"] = _as_int("fit_points", c["fit_points"], minimum=8)
    out["end_polish_share"] = _as_float(
        "end_polish_share", c["end_polish_share"], optional=True, positive=False
    )
    if out["end_polish_share"] is not None and not 0 <= out["end_polish_share"] < 1:
        raise UsageError(f"config 'end_polish_share' must be in [0, 1), got {out['end_polish_share']!r}")
    out["end_polish_programs"] = _as_int("end_polish_programs", c["end_polish_programs"], minimum=0)
    out["end_polish_counts"] = _as_int("end_polish_counts", c["end_polish_counts"], minimum=0)
    out["polish_budget"] = _as_int("polish_budget", c["polish_budget"], minimum=0)
    out["polish_below"] = _as_float("polish_below", c["polish_below"])
    out["mine_every"] = _as_int("mine_every", c["mine_every"], minimum=0)
    out["mine_points"] = _as_int("mine_points", c["mine_points"], minimum=1)
    out["mine_below"] = _as_float("mine_below", c["mine_below"])
    out["max_hard_points"] = _as_int("max_hard_points", c["max_hard_points"], minimum=0)
    out["search_points"] = _as_int("search_points", c["search_points"], minimum=16)
    out["select_points"] = _as_int("select_points", c["select_points"], minimum=16)
    out["data_seed"] = _as_int("data_seed", c["data_seed"], minimum=0)
    if not isinstance(c["runs_dir"], str) or not c["runs_dir"]:
        raise UsageError("config 'runs_dir' must be a directory path")
    out["runs_dir"] = c["runs_dir"]
    out["checkpoint_every"] = _as_int("checkpoint_every", c["checkpoint_every"], minimum=1)
    out["progress_every"] = _as_int("progress_every", c["progress_every"], minimum=1)
    out["log_every_eval"] = _as_int("log_every_eval", c["log_every_eval"], minimum=0)
    out["signoff"] = _choice("signoff", c["signoff"], SIGNOFFS)
    out["cache_size"] = _as_int("cache_size", c["cache_size"], minimum=0)
    out["backend"] = _choice("backend", c["backend"], BACKENDS)
    out["workers"] = _as_int("workers", c["workers"], minimum=1, optional=True)
    out["in_flight_per_worker"] = _as_int("in_flight_per_worker", c["in_flight_per_worker"], minimum=1)
    out["ray_batch"] = _as_int("ray_batch", c["ray_batch"], minimum=1)
    out["sync_batch"] = _as_int("sync_batch", c["sync_batch"], minimum=0)
    out["islands"] = _as_int("islands", c["islands"], minimum=1, optional=True)
    out["migrate_every"] = _as_int("migrate_every", c["migrate_every"], minimum=1)
    out["migrants"] = _as_int("migrants", c["migrants"], minimum=0)
    if out["migrants"] > out["population_size"]:
        raise UsageError("migrants cannot exceed population_size")
    out["migration"] = _choice("migration", c["migration"], MIGRATIONS)
    if not isinstance(c["sync_migration"], bool):
        raise UsageError(f"config 'sync_migration' must be true or false, got {_brief(c['sync_migration'])}")
    out["sync_migration"] = c["sync_migration"]
    if (out["islands"] or 1) > 1 and out["sync_batch"]:
        raise UsageError("sync_batch is for one population; with islands use sync_migration")
    return RunConfig(**out)


def _target_error(data: Mapping[str, Any], mode: str) -> float | None:
    """The threshold from ``target_error`` or its float32 spelling ``target_ulp`` (not both)."""
    error, ulp = data.get("target_error"), data.get("target_ulp")
    if error is not None and ulp is not None:
        raise UsageError("give target_error or target_ulp, not both (target_ulp is the float32 spelling)")
    if ulp is not None and mode == "real":
        raise UsageError(
            "target_ulp counts float32 ULPs; in real mode the threshold is a relative error: "
            "give target_error (--target-error), e.g. 1e-6"
        )
    if error is not None:
        return _as_float("target_error", error)
    return _as_float("target_ulp", ulp, optional=True)


def check_target_choice(target: str | None, expr: str | None, domain: str | None) -> None:
    """The one "target or expression" rule: a built-in target name, or an expression with a domain."""
    if target is not None and expr is not None:
        raise UsageError("give either a target or an expression, not both")
    if target is None and expr is None:
        raise UsageError("no target: give a target name or an expression with a domain")
    if expr is not None and domain is None:
        raise UsageError("an expression target needs a domain 'lo,hi'")


def _check_target_texts(target: str | None, expr: str | None, domain: str | None) -> None:
    """Parse (never evaluate) the target texts: a known name, an expression, two constant endpoints."""
    from targets.errors import TargetError
    from targets.expr import parse_constant_expression, parse_expression
    from targets.registry import get_target
    from targets.target import parse_domain

    try:
        if target is not None:
            get_target(target)
        if expr is not None:
            parse_expression(expr)
        if domain is not None:
            for endpoint in parse_domain(domain):
                parse_constant_expression(endpoint)
    except TargetError as exc:
        raise UsageError(str(exc)) from None


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` (value in TOML syntax, bare words as strings; ``a.b=v`` for table entries)."""
    if "=" not in text:
        raise UsageError(f"--set expects key=value, got {text!r}")
    key, raw = (part.strip() for part in text.split("=", 1))
    if not key:
        raise UsageError(f"--set expects key=value, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``--set`` overrides to a plain config mapping (dotted keys reach into tables)."""
    result = dict(data)
    for text in overrides:
        key, value = parse_override(text)
        if "." in key:
            table, entry = key.split(".", 1)
            if table not in ("mutation_weights", "cost_weights"):
                raise _unknown_key(key)
            current = result.get(table)
            current = _default(table) if current is None else current
            if isinstance(current, list | tuple) and all(
                isinstance(i, list | tuple) and len(i) == 2 for i in current
            ):
                current = dict(current)
            if not isinstance(current, Mapping):
                raise UsageError(f"config {table!r} must be a table of name = weight, got {_brief(current)}")
            current = dict(current)
            current[entry] = value
            result[table] = current
        else:
            if key not in _key_names():
                raise _unknown_key(key)
            result[key] = value
    return result


def load_toml(path: str | Path) -> dict[str, Any]:
    """The mapping in a TOML config file (one-line errors for missing or malformed files)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"config file {str(path)!r} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start})"
        ) from None
    except FileNotFoundError:
        raise UsageError(f"config file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise UsageError(f"cannot read config file {str(path)!r}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    for key in data:
        if key not in _key_names():
            raise _unknown_key(key)
    return data


def resolve(base: Mapping[str, Any] | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Defaults, then ``base`` (file + flags), then ``--set`` overrides, validated."""
    data = dict(base or {})
    return from_mapping(apply_overrides(data, overrides or []))


def with_seed(config: RunConfig, seed: int) -> RunConfig:
    return dataclasses.replace(config, seed=seed)
