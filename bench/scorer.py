"""Scorer speed: ns per (instruction x point) of ``score`` against plain numpy and the predecessor's JAX path.

For programs of 5, 10 and 20 ops (a Horner chain of fma and a mixed add/sub/mul/div/fma program
reading earlier registers and constants) on the exp2 search set of 1024 and 65536 points, measures

  ours     ``score(program, data)`` (the full call: encode + kernel + Score) and
           ``score_encoded(encoded, data)`` (the kernel on a pre-encoded program, the hot path);
  numpy    one float32 numpy array operation per instruction, then the ULP error with numpy
           (|y - ref_hi - ref_lo| * inv_scale, max and mean); fma is emulated as float64 a*b+c
           rounded to float32, which approximates its cost but is not bit-exact;
  jax      (if installed) the predecessor's path: a jax.numpy float32 function per program (fma as
           a*b+c), ``jax.jit``-ed per candidate and run once on the points, compile time included
           (the cost of each new candidate in its search), and the steady-state time of the jitted
           function (evaluation only, no error computation: this favours JAX).

Times are the minimum over several repeats of many calls (``time.perf_counter``) after a warm-up;
JAX compile+run is the median over several freshly built candidates (each with a constant nudged
by one ULP so that nothing can be served from a compilation cache). Ratios are baseline / score().

    python bench/scorer.py [--quick] [--no-jax] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numba
import numpy as np

from primitives.encode import encode
from primitives.interp import evaluate
from primitives.program import Const, Instr, Program, Ref, const_of, make_program
from targets.dataset import Dataset, build_dataset
from targets.registry import get_target
from targets.scoring import score, score_encoded

GOAL_NS = 0.5  # ns per (instruction x point) for our scorer
OP_LENGTHS = (5, 10, 20)
POINT_COUNTS = (1024, 65536)
KINDS = ("horner", "mixed")
MIXED_OPS = ("add", "sub", "mul", "div", "fma")
MAX_MAGNITUDE = 1e4  # mixed programs keep every register within this on [0, 1]


@dataclass(frozen=True)
class Settings:
    budget_s: float  # time spent on one measurement (all its repeats)
    repeats: int
    jax_candidates: int  # freshly compiled candidates per case


@dataclass
class Row:
    kind: str
    ops: int
    points: int
    score_ns: float  # ns per instr x point, full score() call
    encoded_ns: float  # same for score_encoded on a pre-encoded program
    wrapper_us: float  # score() - score_encoded per call, microseconds
    encode_us: float  # encode(program) alone, microseconds (the bulk of the wrapper)
    numpy_ns: float
    numpy_ratio: float  # numpy / score()
    numpy_encoded_ratio: float  # numpy / score_encoded
    numpy_max_err: float
    score_max_err: float
    jax_candidate_ms: float | None = None  # jit + compile + first run, per candidate
    jax_ns: float | None = None  # steady state, per instr x point
    jax_ratio: float | None = None  # jax steady / score()
    jax_candidate_ratio: float | None = None  # jax compile+run / score() call


# --------------------------------------------------------------------------- programs
def f32(value: float) -> float:
    """``value`` rounded to float32, as a Python float (what ``const_of`` accepts)."""
    return float(np.float32(value))


def horner_program(ops: int) -> Program:
    """Degree-``ops`` Taylor polynomial of 2^x by Horner's rule: ``ops`` chained fma instructions."""
    coeffs = [f32(math.log(2.0) ** k / math.factorial(k)) for k in range(ops + 1)]
    body = [Instr("fma", (Ref(0), const_of(coeffs[ops]), const_of(coeffs[ops - 1])))]
    for k in range(ops - 2, -1, -1):
        body.append(Instr("fma", (Ref(len(body)), Ref(0), const_of(coeffs[k]))))
    return make_program(body)


def _operand_values(arg: Ref | Const, regs: list[np.ndarray]) -> np.ndarray | float:
    if isinstance(arg, Ref):
        return regs[arg.index]
    return float(np.uint32(arg.bits).view(np.float32))


def _float64_step(op: str, values: list) -> np.ndarray:
    a, b = values[0], values[1]
    with np.errstate(all="ignore"):
        return {
            "add": lambda: a + b,
            "sub": lambda: a - b,
            "mul": lambda: a * b,
            "div": lambda: a / b,
            "fma": lambda: a * b + values[2],
        }[op]()


def mixed_program(ops: int, seed: int, grid: np.ndarray) -> Program:
    """A random add/sub/mul/div/fma program (each op once in every 5) reading the previous result.

    Reading the previous result keeps every instruction live; the other operands are random earlier
    registers or constants (never two constants, never t - t or t / t). Each instruction is redrawn
    until its values on ``grid`` stay finite and within ``MAX_MAGNITUDE`` (checked in float64), so
    the program is finite on [0, 1].
    """
    rng = np.random.default_rng(seed)
    regs: list[np.ndarray] = [grid.astype(np.float64)]
    body: list[Instr] = []
    order = [op for _ in range(-(-ops // len(MIXED_OPS))) for op in rng.permutation(MIXED_OPS)]
    for position, op in enumerate(order[:ops]):
        for _attempt in range(1000):
            arity = 3 if op == "fma" else 2
            args: list[Ref | Const] = [Ref(len(regs) - 1)]
            for _ in range(arity - 1):
                if rng.random() < 0.5:
                    args.append(Ref(int(rng.integers(len(regs)))))
                else:
                    args.append(const_of(f32(rng.uniform(0.25, 2.0) * rng.choice((-1.0, 1.0)))))
            if op in ("sub", "div") and rng.random() < 0.5:
                args[0], args[1] = args[1], args[0]
            if all(isinstance(a, Const) for a in args[:2]) or (op in ("sub", "div") and args[0] == args[1]):
                continue  # no constant folding, no t - t = 0 or t / t = 1
            values = _float64_step(op, [_operand_values(a, regs) for a in args])
            if np.all(np.isfinite(values)) and np.max(np.abs(values)) <= MAX_MAGNITUDE:
                body.append(Instr(op, tuple(args)))
                regs.append(values)
                break
        else:
            raise RuntimeError(f"could not draw instruction {position + 1} of a {ops}-op mixed program")
    program = make_program(body)
    if not np.all(np.isfinite(evaluate(program, grid))):
        raise RuntimeError("mixed program is not finite on [0, 1] in float32")
    return program


def build_programs(seed: int) -> dict[tuple[str, int], Program]:
    grid = np.linspace(0.0, 1.0, 65537, dtype=np.float32)
    programs = {}
    for ops in OP_LENGTHS:
        programs["horner", ops] = horner_program(ops)
        programs["mixed", ops] = mixed_program(ops, seed + ops, grid)
    for (kind, ops), program in programs.items():
        assert program.op_count() == ops, (kind, ops, program.op_count())
    return programs


# --------------------------------------------------------------------------- timing
def best_seconds(fn: Callable[[], object], settings: Settings) -> float:
    """Seconds per call: minimum over ``settings.repeats`` repeats of a calibrated number of calls."""
    fn()
    per_repeat = settings.budget_s / settings.repeats
    number = 1
    while True:  # calibrate: double until one repeat takes a fair share of the budget
        started = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - started
        if elapsed >= per_repeat * 0.5 or number >= 1 << 20:
            break
        number *= 2
    best = elapsed / number
    for _ in range(settings.repeats - 1):
        started = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - started) / number)
    return best


def per_instr_point_ns(seconds: float, ops: int, points: int) -> float:
    return seconds * 1e9 / (ops * points)


# --------------------------------------------------------------------------- numpy baseline
def _numpy_fma(a, b, c):
    """Emulated fma: float64 a*b+c rounded to float32 (cost approximation, not bit-exact)."""
    return (np.multiply(a, b, dtype=np.float64) + c).astype(np.float32)


NUMPY_OPS = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "fma": _numpy_fma,
    "neg": np.negative,
    "sqrt": np.sqrt,
}


def numpy_evaluator(program: Program) -> Callable[[np.ndarray], np.ndarray]:
    """Evaluate ``program`` with one numpy float32 array operation per instruction."""

    def operand(a: Ref | Const) -> tuple[int | None, np.float32 | None]:
        return (a.index, None) if isinstance(a, Ref) else (None, np.uint32(a.bits).view(np.float32))

    steps = [(NUMPY_OPS[i.op], tuple(operand(a) for a in i.args)) for i in program.pruned().body]

    def run(x: np.ndarray) -> np.ndarray:
        regs = [x]
        for fn, args in steps:
            regs.append(fn(*[regs[r] if r is not None else c for r, c in args]))
        return regs[-1]

    return run


def numpy_score(run: Callable[[np.ndarray], np.ndarray], data: Dataset) -> tuple[float, float]:
    """(max, mean) ULP error of the numpy evaluation, computed with numpy."""
    y = run(data.x)
    with np.errstate(invalid="ignore", over="ignore"):
        errors = np.abs((y.astype(np.float64) - data.ref_hi) - data.ref_lo) * data.inv_scale
    return float(errors.max()), float(errors.mean())


# --------------------------------------------------------------------------- JAX baseline
def jax_function(program: Program, nudge: int) -> Callable:
    """The program as a jax.numpy float32 function (fma as a*b+c); its first constant moves ``nudge`` ULPs."""
    import jax.numpy as jnp

    body = program.pruned().body
    first_const = True
    steps = []
    for instr in body:
        args = []
        for a in instr.args:
            if isinstance(a, Ref):
                args.append(("r", a.index))
            else:
                bits = a.bits + (nudge if first_const else 0)
                first_const = False
                args.append(("c", float(np.uint32(bits).view(np.float32))))
        steps.append((instr.op, args))
    ops = {
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
        "mul": lambda a, b: a * b,
        "div": lambda a, b: a / b,
        "fma": lambda a, b, c: a * b + c,
        "neg": lambda a: -a,
        "sqrt": jnp.sqrt,
    }

    def kernel(x):
        regs = [x]
        for op, args in steps:
            regs.append(ops[op](*[regs[v] if k == "r" else jnp.float32(v) for k, v in args]))
        return regs[-1]

    return kernel


def measure_jax(program: Program, data: Dataset, settings: Settings, nudge_base: int) -> tuple[float, float]:
    """(median seconds per fresh candidate incl. jit compile, steady seconds per call)."""
    import jax
    import jax.numpy as jnp

    x = jnp.asarray(data.x)
    candidate_s = []
    for k in range(settings.jax_candidates):
        fn = jax_function(program, nudge_base + k)
        started = time.perf_counter()
        jax.jit(fn)(x).block_until_ready()
        candidate_s.append(time.perf_counter() - started)
    jitted = jax.jit(jax_function(program, 0))
    steady_s = best_seconds(lambda: jitted(x).block_until_ready(), settings)
    return statistics.median(candidate_s), steady_s


def jax_version() -> str | None:
    try:
        import jax
    except ImportError:
        return None
    return jax.__version__


# --------------------------------------------------------------------------- driver
def measure_case(
    kind: str, program: Program, data: Dataset, settings: Settings, use_jax: bool, nudge_base: int
) -> Row:
    ops, points = program.op_count(), data.size
    encoded = encode(program)
    result = score(program, data)
    score_s = best_seconds(lambda: score(program, data), settings)
    encoded_s = best_seconds(lambda: score_encoded(encoded, data), settings)
    encode_s = best_seconds(lambda: encode(program), replace(settings, budget_s=settings.budget_s / 4))
    run = numpy_evaluator(program)
    numpy_max, _ = numpy_score(run, data)
    numpy_s = best_seconds(lambda: numpy_score(run, data), settings)
    row = Row(
        kind,
        ops,
        points,
        score_ns=per_instr_point_ns(score_s, ops, points),
        encoded_ns=per_instr_point_ns(encoded_s, ops, points),
        wrapper_us=(score_s - encoded_s) * 1e6,
        encode_us=encode_s * 1e6,
        numpy_ns=per_instr_point_ns(numpy_s, ops, points),
        numpy_ratio=numpy_s / score_s,
        numpy_encoded_ratio=numpy_s / encoded_s,
        numpy_max_err=numpy_max,
        score_max_err=result.max_err,
    )
    if use_jax:
        candidate_s, steady_s = measure_jax(program, data, settings, nudge_base)
        row.jax_candidate_ms = candidate_s * 1e3
        row.jax_ns = per_instr_point_ns(steady_s, ops, points)
        row.jax_ratio = steady_s / score_s
        row.jax_candidate_ratio = candidate_s / score_s
    return row


def cpu_name() -> str:
    name = platform.processor()
    if not name:
        try:
            with open("/proc/cpuinfo") as f:
                models = (line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
                name = next(models, "")
        except OSError:
            name = ""
    return name or platform.machine()


def machine_info() -> dict:
    return {
        "cpu": cpu_name(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "jax": jax_version(),
    }


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(
    rows: list[Row], info: dict, first_call_s: float, use_jax: bool, jax_note: str | None
) -> None:
    print(
        f"machine: {info['cpu']}, {info['cpus']} CPUs; python {info['python']}, numpy {info['numpy']}, "
        f"numba {info['numba']}, jax {info['jax'] or 'not installed'}; scorer single-threaded; "
        f"load average {info['load_average']:.2f} (other busy processes make the times noisy)"
    )
    print(
        f"first score() call of the run (numba kernels: compile, or load from the disk cache; once per "
        f"dtype, never per program): {first_call_s:.2f} s"
    )
    if jax_note:
        print(jax_note)
    print()
    header = [
        "kind",
        "ops",
        "points",
        "score ns",
        "encoded ns",
        "wrapper us",
        "encode us",
        "numpy ns",
        "np/score",
        "np/enc",
    ]
    if use_jax:
        header += ["jax cand ms", "jax ns", "jax/score", "cand/score"]
    lines = [header]
    for r in rows:
        line = [
            r.kind,
            str(r.ops),
            str(r.points),
            f"{r.score_ns:.3f}",
            f"{r.encoded_ns:.3f}",
            f"{r.wrapper_us:.1f}",
            f"{r.encode_us:.1f}",
            f"{r.numpy_ns:.3f}",
            f"{r.numpy_ratio:.1f}x",
            f"{r.numpy_encoded_ratio:.1f}x",
        ]
        if use_jax:
            line += [
                fmt(r.jax_candidate_ms, ".1f"),
                fmt(r.jax_ns, ".3f"),
                fmt(r.jax_ratio, ".1f") + "x",
                fmt(r.jax_candidate_ratio, ",.0f") + "x",
            ]
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for k, line in enumerate(lines):
        pairs = enumerate(zip(line, widths, strict=True))
        cells = [cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in pairs]
        print("| " + " | ".join(cells) + " |")
        if k == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    print()
    print(
        "ns = nanoseconds per (instruction x point); score = full score() call, "
        "encoded = score_encoded on a pre-encoded program;\n"
        "wrapper us = score() - score_encoded per call (encode + Score); encode us = encode() alone;\n"
        "np/score, jax/score, cand/score = baseline time / score() time, "
        "np/enc = numpy time / score_encoded time."
    )
    print(
        "numpy: one float32 op per instruction + numpy ULP error; fma emulated as float64 a*b+c -> float32 "
        "(cost approximation, not bit-exact)."
    )
    if use_jax:
        print(
            "jax cand ms: jit + compile + first run of a fresh candidate (median); "
            "jax ns: steady state of the jitted function, evaluation only (no error computation)."
        )
    worst = max(abs(r.numpy_max_err - r.score_max_err) / max(r.score_max_err, 1.0) for r in rows)
    for fit in cost_model(rows):
        print(
            f"score_encoded cost model, {fit['kind']} on {fit['points']} points: "
            f"{fit['fixed_ns_per_point']:.2f} ns per point fixed (error pass, call, set-up) + "
            f"{fit['ns_per_instr_point']:.3f} ns per instruction x point"
        )
    print(
        f"sanity: numpy max ULP error matches score() to a relative {worst:.1e} "
        "(fma emulation may differ in the last bit)."
    )


def cost_model(rows: list[Row]) -> list[dict]:
    """Least-squares fit of score_encoded ns per point = fixed + per_instr * ops, per kind and point count.

    ``fixed`` is what every point costs whatever the program (the error pass, dispatch and register
    set-up spread over the points); ``per_instr`` is the marginal cost of one instruction on one point.
    """
    fits = []
    for kind in dict.fromkeys(r.kind for r in rows):
        for points in dict.fromkeys(r.points for r in rows):
            group = [r for r in rows if r.kind == kind and r.points == points]
            if len({r.ops for r in group}) < 2:
                continue
            ops = np.array([r.ops for r in group], dtype=np.float64)
            per_point = np.array([r.encoded_ns * r.ops for r in group])
            per_instr, fixed = np.polyfit(ops, per_point, 1)
            fits.append(
                {
                    "kind": kind,
                    "points": points,
                    "fixed_ns_per_point": float(fixed),
                    "ns_per_instr_point": float(per_instr),
                }
            )
    return fits


def goal_line(rows: list[Row]) -> str:
    def verdict(column: str, label: str) -> str:
        worst = max(rows, key=lambda r: getattr(r, column))
        value = getattr(worst, column)
        met = "MET" if value <= GOAL_NS else "NOT MET"
        return f"{label} worst {value:.3f} ({worst.kind} {worst.ops} ops, {worst.points} pts) -> {met}"

    big = [r for r in rows if r.points == max(r.points for r in rows)]
    big_worst = max(r.score_ns for r in big)
    big_met = "MET" if big_worst <= GOAL_NS else "NOT MET"
    return (
        f"GOAL: our scorer <= {GOAL_NS} ns per instruction x point. "
        f"{verdict('encoded_ns', 'score_encoded')}; {verdict('score_ns', 'score()')}; "
        f"score() at {big[0].points} points worst {big_worst:.3f} -> {big_met}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short timings (about 20 s in all)")
    parser.add_argument("--no-jax", action="store_true", help="skip the JAX baseline even if installed")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--seed", type=int, default=0, help="dataset and mixed-program seed")
    parser.add_argument(
        "--points",
        type=int,
        nargs="+",
        default=list(POINT_COUNTS),
        help="sizes of the exp2 search sets (default: 1024 65536; the search uses 4096)",
    )
    args = parser.parse_args()

    settings = Settings(0.1, 3, 2) if args.quick else Settings(1.2, 7, 5)
    use_jax, jax_note = not args.no_jax, None
    if use_jax and jax_version() is None:
        use_jax, jax_note = False, "JAX not installed: skipped (pip install 'jax[cpu]')"
    elif not use_jax:
        jax_note = "JAX: skipped (--no-jax)"
    if jax_note and args.json:
        print(jax_note, file=sys.stderr, flush=True)

    info = machine_info()  # the load average before this run adds its own
    target = get_target("exp2")
    datasets = {n: build_dataset(target, "search", seed=args.seed, n=n) for n in args.points}
    programs = build_programs(args.seed)
    started = time.perf_counter()
    score(programs["horner", OP_LENGTHS[0]], datasets[args.points[0]])
    first_call_s = time.perf_counter() - started

    rows = []
    for kind in KINDS:
        for ops in OP_LENGTHS:
            for n in args.points:
                nudge_base = 1 + len(rows) * settings.jax_candidates
                case = measure_case(kind, programs[kind, ops], datasets[n], settings, use_jax, nudge_base)
                rows.append(case)

    if args.json:
        print(
            json.dumps(
                {
                    "machine": info,
                    "first_call_s": first_call_s,
                    "goal_ns": GOAL_NS,
                    "jax": use_jax,
                    "jax_note": jax_note,
                    "quick": args.quick,
                    "seed": args.seed,
                    "programs": {f"{k}-{o}": str(p) for (k, o), p in programs.items()},
                    "rows": [asdict(r) for r in rows],
                    "cost_model": cost_model(rows),
                    "summary": goal_line(rows),
                },
                indent=1,
            )
        )
        return
    print_table(rows, info, first_call_s, use_jax, jax_note)
    print(goal_line(rows))


if __name__ == "__main__":
    main()
