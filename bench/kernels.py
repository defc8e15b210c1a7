"""Kernel speed: exported evo kernels against glibc's scalar and libmvec's vector functions.

One C harness, compiled in this run, times every kernel two ways (minimum over repeats):
  L1      a 4096-element array (16 KiB) evaluated 4096 times: compute throughput;
  stream  one pass over 16M elements (64 MiB in, 64 MiB out): memory-bound throughput.
evo kernels are compiled with -O3 -march=native -mprefer-vector-width=512 -ffp-contract=off (one of
the flag sets `evo export --verify` checks); glibc scalar calls
with -O3 -march=native; libmvec loops with -O3 -march=native -ffast-math, which makes gcc call the
vector variants (_ZGVeN16v_exp2f, ...). The same exported kernels are also JIT-compiled through
LLVM and timed from Python (that figure includes a ctypes call per array).

    python bench/kernels.py [--program PROGRAM.json ...] [--json]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from codegen.emit_c import c_function
from codegen.emit_llvm import jit
from codegen.fullrange import full_range_c
from codegen.log2_kernel import LOG2_KERNEL
from codegen.verify import find_compiler
from evo.loading import load_program
from targets.baselines import anchor

N_STREAM = 1 << 24
N_HOT = 4096
REPS = 9

HARNESS = r"""
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }

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

LIBM = r"""
#include <math.h>
#include <stddef.h>
void glibc_{f}_array(const float *restrict x, float *restrict y, size_t n)
{{ for (size_t i = 0; i < n; i++) y[i] = {f}(x[i]); }}
"""


def _compile(sources: dict[str, tuple[str, tuple[str, ...]]], out: Path) -> ctypes.CDLL:
    cc = find_compiler()
    objects = []
    for name, (source, flags) in sources.items():
        path = out / f"{name}.c"
        path.write_text(source)
        obj = out / f"{name}.o"
        subprocess.run([cc, *flags, "-fPIC", "-c", "-o", str(obj), str(path)], check=True)
        objects.append(str(obj))
    library = out / "libbench.so"
    subprocess.run([cc, "-shared", "-o", str(library), *objects, "-lmvec", "-lm"], check=True)
    return ctypes.CDLL(str(library))


def _kernel_source(name: str, program) -> str:
    lines = ["#include <math.h>", "#include <stddef.h>", "#pragma STDC FP_CONTRACT OFF", *c_function(program, name)]
    lines += [f"void {name}_array(const float *restrict x, float *restrict y, size_t n)",
              f"{{ for (size_t i = 0; i < n; i++) y[i] = {name}(x[i]); }}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--program", action="append", default=[], help="exp2 kernel on [0, 1] to add (file or spec)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    evo_flags = ("-O3", "-march=native", "-mprefer-vector-width=512", "-ffp-contract=off", "-std=gnu99")
    mvec_flags = ("-O3", "-march=native", "-ffast-math", "-std=gnu99")
    libm_flags = ("-O3", "-march=native", "-std=gnu99")

    kernels = {"anchor_exp2_fma6": ("exp2 on [0,1]", anchor("exp2_0_1").program)}
    for i, spec in enumerate(args.program):
        kernels[f"evolved_exp2_{i}"] = (f"exp2 on [0,1]: {spec}", load_program(spec))
    full = {f: full_range_c(f, k) for f, k in (("exp2f", anchor("exp2_m05_05").program),
                                              ("expf", anchor("exp_ln2h").program), ("log2f", LOG2_KERNEL))}
    sources = {"harness": (HARNESS, evo_flags)}
    for name, (_, program) in kernels.items():
        sources[name] = (_kernel_source(name, program), evo_flags)
    for function, item in full.items():
        sources[f"full_{function}"] = (item.source, evo_flags)
        sources[f"libm_{function}"] = (LIBM.format(f=function), libm_flags)
        sources[f"mvec_{function}"] = (LIBM.format(f=function).replace("glibc_", "mvec_"), mvec_flags)

    with tempfile.TemporaryDirectory() as scratch:
        library = _compile(sources, Path(scratch))
        array_type = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
        for fn in (library.time_hot, library.time_stream):
            fn.restype = ctypes.c_double
        library.time_hot.argtypes = [array_type, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_int]
        library.time_stream.argtypes = [array_type, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        rng = np.random.default_rng(0)
        domains = {"reduced": (0.0, 1.0), "exp2f": (-20.0, 20.0), "expf": (-20.0, 20.0), "log2f": (1e-3, 1e3)}
        rows = []

        def measure(label: str, group: str, symbol: str, domain: str) -> None:
            lo, hi = domains[domain]
            x = rng.uniform(lo, hi, N_STREAM).astype(np.float32)
            y = np.empty_like(x)
            fn = array_type(ctypes.cast(getattr(library, symbol), ctypes.c_void_p).value)
            hot = library.time_hot(fn, x.ctypes.data, y.ctypes.data, N_HOT, N_STREAM, REPS)
            stream = library.time_stream(fn, x.ctypes.data, y.ctypes.data, N_STREAM, REPS)
            rows.append({"group": group, "kernel": label, "l1_ns": hot, "stream_ns": stream})

        for name, (title, _) in kernels.items():
            measure(f"evo C {name} ({title})", "exp2 on [0, 1]", f"{name}_array", "reduced")
        measure("glibc exp2f (scalar)", "exp2 on [0, 1]", "glibc_exp2f_array", "reduced")
        measure("libmvec exp2f (vector)", "exp2 on [0, 1]", "mvec_exp2f_array", "reduced")
        for function in full:
            group = f"full-range {function}"
            measure(f"evo {function} (full range)", group, f"evo_{function}_array", function)
            measure(f"glibc {function} (scalar)", group, f"glibc_{function}_array", function)
            measure(f"libmvec {function} (vector)", group, f"mvec_{function}_array", function)

    # LLVM JIT of the same exported kernels, timed from Python (ctypes call per array included)
    for name, (title, program) in kernels.items():
        kernel = jit(program, name)
        x = rng.uniform(0, 1, N_STREAM).astype(np.float32)
        y = np.empty_like(x)
        hot_best = stream_best = float("inf")
        for _ in range(REPS):
            started = time.perf_counter()
            for start in range(0, N_STREAM // 16, N_HOT):
                kernel.array(x.ctypes.data, y.ctypes.data, N_HOT)
            hot_best = min(hot_best, (time.perf_counter() - started) / (N_STREAM // 16))
            started = time.perf_counter()
            kernel.array(x.ctypes.data, y.ctypes.data, N_STREAM)
            stream_best = min(stream_best, (time.perf_counter() - started) / N_STREAM)
        rows.append({"group": "exp2 on [0, 1]", "kernel": f"evo LLVM JIT {name}", "l1_ns": hot_best * 1e9, "stream_ns": stream_best * 1e9})

    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; ns per element "
          f"(min of {REPS}); L1 = {N_HOT}-element array, stream = {N_STREAM:,d} elements")
    for group in dict.fromkeys(r["group"] for r in rows):
        members = [r for r in rows if r["group"] == group]
        mvec = next((r for r in members if r["kernel"].startswith("libmvec")), None)
        print(f"\n{group}")
        print(f"  {'kernel':62s} {'L1 ns':>8s} {'stream ns':>10s} {'speed vs libmvec':>16s}")
        for r in members:
            ratio = f"{mvec['l1_ns'] / r['l1_ns']:.2f}x" if mvec and r is not mvec else "-"
            print(f"  {r['kernel']:62s} {r['l1_ns']:>8.3f} {r['stream_ns']:>10.3f} {ratio:>16s}")


if __name__ == "__main__":
    main()
