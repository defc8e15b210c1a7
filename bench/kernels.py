"""Kernel speed: exported evo kernels against glibc's scalar, libmvec's and SLEEF's vector functions.

One C harness, compiled in this run, times every kernel two ways (minimum over repeats):
  L1      a 4096-element array (16 KiB) evaluated 1024 times: compute throughput;
  stream  one pass over 8M elements (32 MiB in, 32 MiB out): memory-bound throughput.
evo kernels are compiled with -O3 -march=native -mprefer-vector-width=512 -ffp-contract=off (one of
the flag sets `evo export --verify` checks); glibc scalar calls
with -O3 -march=native; libmvec loops with -O3 -march=native -ffast-math, which makes gcc call the
vector variants (_ZGVdN8v_exp2f, ...); SLEEF's u10 (1 ULP) and u35 (3.5 ULP) functions
(Debian's libsleef-dev; skipped with a printed reason when absent) in a loop of vector loads and
stores, 16-wide (Sleef_exp2f16_u10, ...) where the host has AVX-512, else 8-wide (AVX2).
The full-range evo functions (whose array functions write arrays of 2^20 elements or more with
non-temporal stores, so the stream rows include that) are timed at each accuracy tier (1, 2, 4
ULP), log2f also with its polynomials in Horner's order (the tiers' previous form), and every row
prints the max ULP of its outputs on the timed inputs against a float64 numpy reference. The same
exported reduced-domain kernels are also JIT-compiled through LLVM and timed by the same harness
(through a function pointer). Ratios are speeds against libmvec (or SLEEF) measured in
the same run: on a shared machine they are what counts.

    python bench/kernels.py [--program PROGRAM.json ...] [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from codegen.emit_c import c_function
from codegen.emit_llvm import jit
from codegen.fullrange import full_range_c
from codegen.fullrange_kernels import TIERS, tier
from codegen.log2_kernel import LOG2_KERNEL, LOG2_KERNEL_DEG8
from codegen.verify import find_compiler
from evo.loading import load_program
from targets.baselines import anchor

N_STREAM = 1 << 23
N_L1_TOTAL = 1 << 22
N_HOT = 4096
REPS = 3
ROUNDS = 5  # interleaved rounds (--rounds): more rounds find quieter moments on a loaded machine

HARNESS = r"""
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

typedef void (*array_fn)(const float *restrict, float *restrict, size_t);

/* ns per element: min over reps of (hot: n_hot elements x (total / n_hot) passes) */
double time_hot(array_fn f, const float *x, float *y, size_t n_hot, size_t total, int reps)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = now();
        for (size_t done = 0; done < total; done += n_hot)
            f(x, y, n_hot);
        t = now() - t;
        if (t < best) best = t;
    }
    return best * 1e9 / (double)total;
}

double time_stream(array_fn f, const float *x, float *y, size_t n, int reps)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = now();
        f(x, y, n);
        t = now() - t;
        if (t < best) best = t;
    }
    return best * 1e9 / (double)n;
}
"""

SLEEF = r"""
#include <immintrin.h>
#include <stddef.h>
#include <sleef.h>
void sleef_{f}_{u}_array(const float *restrict x, float *restrict y, size_t n)
{{
    size_t i = 0;
#ifdef __AVX512F__  /* SLEEF's 16-lane functions where the host has AVX-512 */
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, Sleef_{f}16_{u}(_mm512_loadu_ps(x + i)));
#else
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, Sleef_{f}8_{u}(_mm256_loadu_ps(x + i)));
#endif
    for (; i < n; i++)
        y[i] = Sleef_{f}_{u}(x[i]);
}}
"""
SLEEF_VARIANTS = {
    "exp2f": ("u10", "u35"),
    "expf": ("u10",),
    "log2f": ("u10", "u35"),
}  # SLEEF 3.5 has no expf u35
REFERENCE = {"exp2f": np.exp2, "expf": np.exp, "log2f": np.log2}

LIBM = r"""
#include <math.h>
#include <stddef.h>
void glibc_{f}_array(const float *restrict x, float *restrict y, size_t n)
{{ for (size_t i = 0; i < n; i++) y[i] = {f}(x[i]); }}
"""


def _compile(
    sources: dict[str, tuple[str, tuple[str, ...]]], out: Path, libraries: tuple[str, ...]
) -> ctypes.CDLL:
    cc = find_compiler()
    objects = []
    for name, (source, flags) in sources.items():
        path = out / f"{name}.c"
        path.write_text(source)
        obj = out / f"{name}.o"
        subprocess.run([cc, *flags, "-fPIC", "-c", "-o", str(obj), str(path)], check=True)
        objects.append(str(obj))
    library = out / "libbench.so"
    subprocess.run([cc, "-shared", "-o", str(library), *objects, *libraries, "-lmvec", "-lm"], check=True)
    return ctypes.CDLL(str(library))


def _cpu_flags() -> set[str]:
    """The host CPU's feature flags (x86 Linux), empty where /proc/cpuinfo says none."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def _sleef_available(out: Path, flags: tuple[str, ...]) -> str | None:
    """None when SLEEF's vector functions compile, link and load here, else the reason they do not."""
    probe = out / "sleef_probe.c"
    probe.write_text(SLEEF.format(f="exp2f", u="u10"))
    done = subprocess.run(
        [
            find_compiler(),
            *flags,
            "-fPIC",
            "-shared",
            "-o",
            str(out / "libprobe.so"),
            str(probe),
            "-lsleef",
            "-lm",
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["compile failed"])[-1]
        return f"SLEEF skipped: {reason} (install libsleef-dev)"
    try:
        ctypes.CDLL(str(out / "libprobe.so"))
    except OSError as exc:
        return f"SLEEF skipped: {exc}"
    return None


def max_ulp(function: str, x: np.ndarray, y: np.ndarray) -> float:
    """Max ULP of float32 outputs y = f(x) against a float64 reference, ulp32 of the rounded reference."""
    with np.errstate(all="ignore"):
        ref = REFERENCE[function](x.astype(np.float64))
        rn = ref.astype(np.float32)
        finite = np.isfinite(rn)
        err = np.abs(y[finite].astype(np.float64) - ref[finite]) / np.spacing(np.abs(rn[finite])).astype(
            np.float64
        )
    bad = ~np.isfinite(y[finite]).all() or not (y[~finite] == rn[~finite]).all()
    return float("inf") if bad or not err.size else float(err.max())


def _kernel_source(name: str, program) -> str:
    lines = [
        "#include <math.h>",
        "#include <stddef.h>",
        "#pragma STDC FP_CONTRACT OFF",
        *c_function(program, name),
    ]
    lines += [
        f"void {name}_array(const float *restrict x, float *restrict y, size_t n)",
        f"{{ for (size_t i = 0; i < n; i++) y[i] = {name}(x[i]); }}",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--program", action="append", default=[], help="exp2 kernel on [0, 1] to add (file or spec)"
    )
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="interleaved timing rounds (minimum kept)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rounds = max(1, args.rounds)
    evo_flags = ("-O3", "-march=native", "-mprefer-vector-width=512", "-ffp-contract=off", "-std=gnu99")
    mvec_flags = ("-O3", "-march=native", "-ffast-math", "-std=gnu99")
    libm_flags = ("-O3", "-march=native", "-std=gnu99")

    kernels = {"anchor_exp2_fma6": ("exp2 on [0,1]", anchor("exp2_0_1").program)}
    for i, spec in enumerate(args.program):
        kernels[f"evolved_exp2_{i}"] = (f"exp2 on [0,1]: {spec}", load_program(spec))
    functions = ("exp2f", "expf", "log2f")
    full = {
        (f, b): full_range_c(f, tier(f, b).kernel, name=f"evo_{f}_tier{b}") for f in functions for b in TIERS
    }
    sources = {"harness": (HARNESS, evo_flags)}
    for name, (_, program) in kernels.items():
        sources[name] = (_kernel_source(name, program), evo_flags)
    for (function, bound), item in full.items():
        sources[f"full_{function}_{bound}"] = (item.source, evo_flags)
    # the same log2 polynomials in Horner's order, the shipped tiers' previous form: the split
    # order's gain is measured in the same run
    horner = {1: LOG2_KERNEL, 2: LOG2_KERNEL_DEG8}
    for bound, program in horner.items():
        sources[f"horner_log2f_{bound}"] = (
            full_range_c("log2f", program, name=f"evo_log2f_horner{bound}").source,
            evo_flags,
        )
    for function in functions:
        sources[f"libm_{function}"] = (LIBM.format(f=function), libm_flags)
        sources[f"mvec_{function}"] = (LIBM.format(f=function).replace("glibc_", "mvec_"), mvec_flags)

    with tempfile.TemporaryDirectory() as scratch:
        sleef_skip = _sleef_available(Path(scratch), libm_flags)
        sleef_lanes = 16 if "avx512f" in _cpu_flags() else 8  # as the source's #ifdef __AVX512F__
        if sleef_skip is None:
            for function in functions:
                for u in SLEEF_VARIANTS[function]:
                    sources[f"sleef_{function}_{u}"] = (SLEEF.format(f=function, u=u), libm_flags)
        else:
            print(sleef_skip)
        library = _compile(sources, Path(scratch), () if sleef_skip else ("-lsleef",))
        array_type = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
        for fn in (library.time_hot, library.time_stream):
            fn.restype = ctypes.c_double
        library.time_hot.argtypes = [
            array_type,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_size_t,
            ctypes.c_int,
        ]
        library.time_stream.argtypes = [
            array_type,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_int,
        ]
        rng = np.random.default_rng(0)
        domains = {"reduced": (0.0, 1.0), "exp2f": (-20.0, 20.0), "expf": (-20.0, 20.0), "log2f": (1e-3, 1e3)}
        rows = []

        inputs = {d: rng.uniform(lo, hi, N_STREAM).astype(np.float32) for d, (lo, hi) in domains.items()}

        def measure(group: str, domain: str, members: list[tuple[str, str]]) -> None:
            """Time a group's kernels in ROUNDS interleaved rounds (each a min over REPS), keeping the
            minimum: load from other processes then biases no kernel against another."""
            x = inputs[domain]  # the same inputs for every kernel of a group
            fns = [
                array_type(
                    symbol
                    if isinstance(symbol, int)
                    else ctypes.cast(getattr(library, symbol), ctypes.c_void_p).value
                )
                for _, symbol in members
            ]
            best = [[float("inf"), float("inf")] for _ in members]
            y = np.empty_like(x)
            for _ in range(rounds):
                for k, fn in enumerate(fns):
                    best[k][0] = min(
                        best[k][0],
                        library.time_hot(fn, x.ctypes.data, y.ctypes.data, N_HOT, N_L1_TOTAL, REPS),
                    )
                    best[k][1] = min(
                        best[k][1], library.time_stream(fn, x.ctypes.data, y.ctypes.data, N_STREAM, REPS)
                    )
            for (label, _), fn, (hot, stream) in zip(members, fns, best, strict=True):
                fn(x.ctypes.data, y.ctypes.data, x.shape[0])
                error = max_ulp("exp2f" if domain == "reduced" else domain, x, y)
                rows.append(
                    {"group": group, "kernel": label, "l1_ns": hot, "stream_ns": stream, "max_ulp": error}
                )

        # the same exported kernels JIT-compiled through LLVM, called by the same C harness
        jitted = {name: jit(program, name) for name, (_, program) in kernels.items()}
        measure(
            "exp2 on [0, 1]",
            "reduced",
            [(f"evo C {name} ({title})", f"{name}_array") for name, (title, _) in kernels.items()]
            + [(f"evo LLVM JIT {name}", kernel.address) for name, kernel in jitted.items()]
            + [("glibc exp2f (scalar)", "glibc_exp2f_array"), ("libmvec exp2f (vector)", "mvec_exp2f_array")],
        )
        for function in functions:
            group = f"full-range {function}"
            members, same = [], {}
            for bound in TIERS:
                t = tier(function, bound)
                label = f"evo {function} <= {bound} ULP ({t.kernel.op_count()}-op kernel)"
                if (
                    t.kernel.canonical_hash() in same
                ):  # the looser tier ships the tighter one's kernel: same code
                    same[t.kernel.canonical_hash()].append(label)
                    continue
                same[t.kernel.canonical_hash()] = [label]
                members.append((label, f"evo_{function}_tier{bound}_array"))
            if function == "log2f":
                members += [
                    (f"evo log2f <= {b} ULP, Horner order ({p.op_count()} ops)", f"evo_log2f_horner{b}_array")
                    for b, p in horner.items()
                ]
            members += [
                (f"glibc {function} (scalar)", f"glibc_{function}_array"),
                (f"libmvec {function} (vector)", f"mvec_{function}_array"),
            ]
            if sleef_skip is None:
                members += [
                    (f"SLEEF {function}{sleef_lanes}_{u}", f"sleef_{function}_{u}_array")
                    for u in SLEEF_VARIANTS[function]
                ]
            measure(group, function, members)
            for labels in same.values():  # rows of the looser tiers that share a kernel, after the one timed
                first = next(r for r in rows if r["kernel"] == labels[0])
                for label in labels[1:]:
                    rows.insert(rows.index(first) + 1, {**first, "kernel": f"{label}: same as above"})
                    first = rows[rows.index(first) + 1]

    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; ns per element "
        f"(min of {rounds} interleaved rounds of {REPS}); L1 = {N_HOT}-element array, stream = {N_STREAM:,d} "
        "elements"
    )
    for group in dict.fromkeys(r["group"] for r in rows):
        members = [r for r in rows if r["group"] == group]
        mvec = next((r for r in members if r["kernel"].startswith("libmvec")), None)
        u10 = next(
            (r for r in members if r["kernel"].startswith("SLEEF") and r["kernel"].endswith("u10")), None
        )
        u35 = next(
            (r for r in members if r["kernel"].startswith("SLEEF") and r["kernel"].endswith("u35")), None
        )
        print(f"\n{group}")
        print(
            f"  {'kernel':54s} {'max ULP':>8s} {'L1 ns':>7s} {'stream ns':>9s}   speed vs libmvec L1 / stream"
            f"   vs SLEEF u10 / u35 (L1)"
        )

        def ratio(ref, r, key):
            return f"{ref[key] / r[key]:.2f}x" if ref and r is not ref else "-"

        for r in members:
            print(
                f"  {r['kernel']:54s} {r['max_ulp']:>8.3f} {r['l1_ns']:>7.3f} {r['stream_ns']:>9.3f}   "
                f"{ratio(mvec, r, 'l1_ns'):>12s} / {ratio(mvec, r, 'stream_ns'):<7s}      "
                f"{ratio(u10, r, 'l1_ns'):>8s} / {ratio(u35, r, 'l1_ns')}"
            )


if __name__ == "__main__":
    main()
