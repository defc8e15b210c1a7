"""Cost models against measured time: the host's cycle table, and the rank correlation of each model
with the exported C kernels' measured time over a corpus of programs.

The corpus: every classical polynomial of every anchored target (Horner, fused and plain), Horner
and Estrin forms of degrees 2-12, rational forms p/q and programs with sqrt, plus the front of any
run directory given with --run. Each program is exported with the C emitter and compiled in one
translation unit with gcc -O3 -march=native -ffp-contract=off, then timed two ways (minimum over
rounds that visit every program in turn, so a load change hits all programs alike):

  scalar  a dependent chain of calls, x_{i+1} = xs[i] + 0 * f(x_i): what one scalar call costs;
  array   NAME_array over 4096 L1-resident elements: what an array call costs per element.

Spearman rank correlation: scalar time against the latency model, array time against the
throughput model (ports with the measured port sharing of op pairs and the dependency-chain bound,
``primitives.cycles``; also against the same model with every pair sharing, i.e. the summed ports,
against ports only, and with half and twice the out-of-order window), and both against
the op count (the baseline model) measured in the same run. The
models are computed with each cycle table: the measured one (cost_source = measure) and, when
llvm-mca is installed, the simulated one (cost_source = llvm-mca); a third array model simulates
each program's whole compiled loop (the LLVM export JIT-compiled for the host, its main vectorised
loop run through llvm-mca: cycles per element), which is too slow for a search but shows what a
per-op table leaves out.

    python bench/cost_model.py [--run RUN ...] [--rounds 15] [--no-loop-model] [--json]
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from codegen.emit_c import c_function
from codegen.mca import McaError, find_mca, loop_cycles
from codegen.verify import CompilerMissing, find_compiler
from evo.costmodel import host_table
from primitives.cycles import WINDOW_OPS, array_cycles, critical_path, port_cycles
from primitives.program import Const, Instr, Program, Ref, const_of
from targets.baselines import anchors_data, baselines

C_FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-std=gnu99", "-fPIC")
N_ELEMENTS = 4096

HARNESS = r"""
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stddef.h>
#include <time.h>
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
static volatile float sink;
static const float zero = 0.0f;
"""

TIMERS = r"""
double scalar_{name}(const float *xs, size_t n, int reps)
{{
    double best = 1e30;
    const float z = zero;
    for (int r = 0; r < reps; r++) {{
        float y = 0.0f;
        double t = now();
        for (size_t i = 0; i < n; i++)
            y = {name}(xs[i] + z * y);  /* each call waits for the previous one: latency */
        t = now() - t;
        sink = y;
        if (t < best) best = t;
    }}
    return best * 1e9 / (double)n;
}}
void {name}_array(const float *restrict x, float *restrict y, size_t n)
{{
    for (size_t i = 0; i < n; i++)
        y[i] = {name}(x[i]);
}}
double array_{name}(const float *xs, float *ys, size_t n, int passes, int reps)
{{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {{
        double t = now();
        for (int p = 0; p < passes; p++)
            {name}_array(xs, ys, n);
        t = now() - t;
        if (t < best) best = t;
    }}
    sink = ys[0];
    return best * 1e9 / ((double)n * passes);
}}
"""


# ----------------------------------------------------------------- corpus
class _Builder:
    def __init__(self) -> None:
        self.body: list[Instr] = []

    def op(self, name: str, *args) -> Ref:
        self.body.append(
            Instr(
                name, tuple(a if isinstance(a, Ref | Const) else const_of(float(np.float32(a))) for a in args)
            )
        )
        return Ref(len(self.body))

    def program(self, out) -> Program:
        return Program(tuple(self.body), out if isinstance(out, Ref | Const) else const_of(out))


def horner(b: _Builder, coefficients: list, u, fused: bool = True):
    r = coefficients[-1]
    for c in reversed(coefficients[:-1]):
        r = b.op("fma", r, u, c) if fused else b.op("add", b.op("mul", r, u), c)
    return r


def estrin(b: _Builder, coefficients: list, u, fused: bool = True):
    """c0 + c1 u + ... by Estrin's scheme: pairs with u, pairs of pairs with u^2, then u^4, ..."""
    terms = list(coefficients)
    power = u
    while len(terms) > 1:
        paired = []
        for i in range(0, len(terms) - 1, 2):
            lo, hi = terms[i], terms[i + 1]
            paired.append(b.op("fma", hi, power, lo) if fused else b.op("add", b.op("mul", hi, power), lo))
        if len(terms) % 2:
            paired.append(terms[-1])
        terms = paired
        if len(terms) > 1:
            power = b.op("mul", power, power)
    return terms[0]


def taylor_exp2(degree: int) -> list[float]:
    return [float(np.float32(math.log(2) ** k / math.factorial(k))) for k in range(degree + 1)]


def corpus() -> list[tuple[str, Program]]:
    """The programs the models are checked on (names unique)."""
    programs: list[tuple[str, Program]] = []
    for target in anchors_data()["targets"]:
        for baseline in baselines(target):
            programs.append((baseline.name, baseline.program))
    x = Ref(0)
    for degree in range(2, 13):
        for fused in (True, False):
            mode = "fma" if fused else "plain"
            b = _Builder()
            programs.append((f"horner{degree}:{mode}", b.program(horner(b, taylor_exp2(degree), x, fused))))
            b = _Builder()
            programs.append((f"estrin{degree}:{mode}", b.program(estrin(b, taylor_exp2(degree), x, fused))))
    for degree in (1, 2, 3, 4, 6):  # rational p(x) / q(x), q > 0 on [0, 1]
        b = _Builder()
        p = horner(b, [1.0] + [0.5**k for k in range(1, degree + 1)], x)
        q = horner(b, [1.0] + [(-0.3) ** k for k in range(1, degree + 1)], x)
        programs.append((f"rational{degree}", b.program(b.op("div", p, q))))
    for degree in (2, 4, 6):  # sqrt(1 + x) * p(x), and a division by it
        b = _Builder()
        s = b.op("sqrt", b.op("add", x, 1.0))
        programs.append(
            (f"sqrt_times_poly{degree}", b.program(b.op("mul", s, horner(b, taylor_exp2(degree), x))))
        )
        b = _Builder()
        s = b.op("sqrt", b.op("add", x, 1.0))
        programs.append(
            (f"poly_over_sqrt{degree}", b.program(b.op("div", horner(b, taylor_exp2(degree), x), s)))
        )
    b = _Builder()
    chain = x
    for _ in range(3):
        chain = b.op("div", 1.0, b.op("add", chain, 2.0))
    programs.append(("continued_fraction3", b.program(chain)))
    b = _Builder()
    programs.append(("sqrt_chain3", b.program(b.op("sqrt", b.op("sqrt", b.op("sqrt", b.op("add", x, 1.0)))))))
    return programs


def run_front(run: str) -> list[tuple[str, Program]]:
    from evo.api import load_run

    loaded = load_run(run)
    return [
        (f"{Path(run).name}:{e.individual.program.canonical_hash()[:8]}", e.individual.program.pruned())
        for e in loaded.front.entries
        if e.individual.program.op_count() > 0
    ]


# ----------------------------------------------------------------- timing
def compile_timers(programs: list[tuple[str, Program]], workdir: Path) -> tuple[ctypes.CDLL, list[str]]:
    """One shared library with scalar_k / array_k timers for every program (k = its index)."""
    cc = find_compiler()
    names = [f"k{i}" for i in range(len(programs))]
    parts = [HARNESS]
    for name, (_, program) in zip(names, programs, strict=True):
        parts.append("\n".join(c_function(program, name)))
        parts.append(TIMERS.format(name=name))
    source = workdir / "timers.c"
    source.write_text("#pragma STDC FP_CONTRACT OFF\n" + "\n".join(parts))
    library = workdir / "libtimers.so"
    subprocess.run([cc, *C_FLAGS, "-shared", "-o", str(library), str(source), "-lm"], check=True)
    lib = ctypes.CDLL(str(library))
    for name in names:
        getattr(lib, f"scalar_{name}").restype = ctypes.c_double
        getattr(lib, f"scalar_{name}").argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        getattr(lib, f"array_{name}").restype = ctypes.c_double
        getattr(lib, f"array_{name}").argtypes = (
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_int,
            ctypes.c_int,
        )
    return lib, names


def time_programs(
    programs: list[tuple[str, Program]], rounds: int = 15, lo: float = 0.25, hi: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """(scalar ns per call, array ns per element) of every program, minimum over rounds."""
    xs = np.linspace(lo, hi, N_ELEMENTS, dtype=np.float32)
    ys = np.empty_like(xs)
    scalar = np.full(len(programs), np.inf)
    array = np.full(len(programs), np.inf)
    with tempfile.TemporaryDirectory() as tmp:
        lib, names = compile_timers(programs, Path(tmp))
        for _ in range(rounds):
            for k, name in enumerate(names):
                scalar[k] = min(scalar[k], getattr(lib, f"scalar_{name}")(xs.ctypes.data, N_ELEMENTS, 3))
                array[k] = min(
                    array[k], getattr(lib, f"array_{name}")(xs.ctypes.data, ys.ctypes.data, N_ELEMENTS, 16, 3)
                )
    return scalar, array


def spearman(a, b) -> float:
    """Spearman rank correlation (average ranks for ties)."""

    def ranks(v):
        v = np.asarray(v, dtype=float)
        order = np.argsort(v, kind="mergesort")
        r = np.empty(len(v))
        r[order] = np.arange(len(v), dtype=float)
        for value in np.unique(v):
            tied = v == value
            r[tied] = r[tied].mean()
        return r

    ra, rb = ranks(a), ranks(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", default=[], help="add the front of this run directory")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--no-loop-model", action="store_true", help="skip the per-program llvm-mca loop model"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tables = {"measure": host_table(source="measure")}
    if find_mca() is None:
        print("llvm-mca not found on PATH: only the measured cycle table is checked", file=sys.stderr)
    else:
        simulated = host_table(source="llvm-mca")
        if simulated.source.startswith("llvm-mca"):
            tables["llvm-mca"] = simulated
    table = tables["measure"]
    programs = corpus()
    for run in args.run:
        programs += run_front(run)
    try:
        scalar, array = time_programs(programs, args.rounds)
    except CompilerMissing as exc:
        print(f"bench/cost_model.py needs a C compiler to time the exported kernels: {exc}", file=sys.stderr)
        sys.exit(2)
    ops = np.array([p.cost() for _, p in programs])
    models = {}
    for source, t in tables.items():
        models[f"latency[{source}]"] = np.array([critical_path(p, t.latencies) for _, p in programs])
        models[f"throughput[{source}]"] = np.array([array_cycles(p, t) for _, p in programs])
        # without the port sharing (every op pair on one resource: the ports' plain sum)
        summed = dataclasses.replace(t, sharing=())
        models[f"summed[{source}]"] = np.array([array_cycles(p, summed) for _, p in programs])
        # ports only, no chain bound, in the same run
        models[f"ports[{source}]"] = np.array([t.loop_overhead + port_cycles(p, t) for _, p in programs])
    for window in (WINDOW_OPS // 2, WINDOW_OPS * 2):  # how much the window's size matters
        models[f"throughput-w{window}[measure]"] = np.array(
            [array_cycles(p, table, window) for _, p in programs]
        )
    if "llvm-mca" in tables and not args.no_loop_model:
        try:
            models["loop[llvm-mca]"] = np.array([loop_cycles(p) for _, p in programs])
        except McaError as exc:
            print(f"llvm-mca loop model skipped: {exc}", file=sys.stderr)
    correlations = {"scalar_vs_ops": spearman(scalar, ops), "array_vs_ops": spearman(array, ops)}
    for key, values in models.items():
        timing = scalar if key.startswith("latency") else array
        correlations[f"{'scalar' if timing is scalar else 'array'}_vs_{key}"] = spearman(timing, values)
    result = {
        "tables": {source: t.to_dict() for source, t in tables.items()},
        "n_programs": len(programs),
        "spearman": correlations,
        "programs": [
            {
                "name": n,
                "ops": float(ops[i]),
                **{key: float(v[i]) for key, v in models.items()},
                "scalar_ns": float(scalar[i]),
                "array_ns": float(array[i]),
            }
            for i, (n, _) in enumerate(programs)
        ],
    }
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        print()
        return
    for source, t in tables.items():
        print(
            f"cycle table [{source}]: {t.cpu}, {t.vector_width} float32 lanes, "
            f"{1 / t.ns_per_cycle:.2f} GHz "
            f"(from a 1-cycle integer add chain), source {t.source}, llvmlite {t.llvmlite}"
        )
        shared = [pair for pair, value in t.sharing if value >= 0.5]
        print(f"  op pairs sharing a port (sharing >= 0.5): {', '.join(shared) or 'none'}")
    header = "".join(f" {'lat ' + s:>15} {'1/thr ' + s:>15}" for s in tables)
    print(f"{'op':>6}{header}")
    for op, _ in table.latency:
        print(
            f"{op:>6}"
            + "".join(f" {t.latencies[op]:>15.2f} {t.rthroughputs[op]:>15.3f}" for t in tables.values())
        )
    print(
        f"{'loop':>6}"
        + "".join(f" {'':>15} {t.loop_overhead:>15.3f}" for t in tables.values())
        + "   (array loop overhead per element)"
    )
    print()
    print(f"{'program':34s} {'ops':>4} {'lat cyc':>8} {'scalar ns':>9} {'thr cyc':>8} {'array ns':>9}")
    for row in result["programs"]:
        print(
            f"{row['name'][:34]:34s} {row['ops']:>4g} {row['latency[measure]']:>8.1f} "
            f"{row['scalar_ns']:>9.2f} "
            f"{row['throughput[measure]']:>8.3f} {row['array_ns']:>9.3f}"
        )
    s = result["spearman"]
    print()
    print(f"{len(programs)} programs, Spearman rank correlation with measured time (goal >= 0.9):")
    lines = [("scalar call vs op count", s["scalar_vs_ops"])]
    lines += [
        (f"scalar call vs latency model [{source}]", s[f"scalar_vs_latency[{source}]"]) for source in tables
    ]
    lines += [("array call vs op count", s["array_vs_ops"])]
    lines += [
        (f"array call vs throughput model [{source}]", s[f"array_vs_throughput[{source}]"])
        for source in tables
    ]
    lines += [
        (f"array call vs summed-ports model [{source}]", s[f"array_vs_summed[{source}]"]) for source in tables
    ]
    lines += [
        (f"array call vs ports-only model [{source}]", s[f"array_vs_ports[{source}]"]) for source in tables
    ]
    lines += [
        (f"array call vs throughput, window {w} ops", s[f"array_vs_throughput-w{w}[measure]"])
        for w in (WINDOW_OPS // 2, WINDOW_OPS * 2)
    ]
    if "array_vs_loop[llvm-mca]" in s:
        lines.append(("array call vs whole-loop llvm-mca model", s["array_vs_loop[llvm-mca]"]))
    for label, value in lines:
        print(f"  {label:44s} {value:.3f}")


if __name__ == "__main__":
    main()
