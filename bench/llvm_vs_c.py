"""LLVM JIT kernel against the same kernel as C: L1 ns per element, both timed by one C harness in one run.

The C kernel is the exported source compiled with gcc -O3 -march=native -ffp-contract=off; the LLVM
kernel is the IR export JIT-compiled by llvmlite for the host CPU (its name and features, opt level 3,
loop and SLP vectorisers on, no fast-math flags). The harness calls both through a function pointer on
a 4096-element array (16 KiB in, 16 KiB out) many times and keeps the minimum over repeats, so no
Python or ctypes call is inside the timed region. Both kernels are first checked bit for bit against
the interpreter on the timed inputs.

    python bench/llvm_vs_c.py [--program PROGRAM ...] [--reps 9]
"""

from __future__ import annotations

import argparse
import ctypes
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from codegen import emit_files
from codegen.emit_llvm import jit
from codegen.verify import find_compiler
from evo.loading import load_program
from primitives.interp import evaluate
from primitives.textform import parse_text
from targets.baselines import anchor, baselines

N_HOT = 4096
TOTAL = 1 << 24
C_FLAGS = ("-O3", "-march=native", "-ffp-contract=off")
NO_ERRNO = ("-fno-math-errno",)  # lets gcc vectorise sqrtf (a verified flag set); second C column
EVERY_OP = """
t1 = mul(x, x)
t2 = add(t1, 0x1.8p+0)
t3 = sub(t2, x)
t4 = div(0x1p+0, t3)
t5 = sqrt(t2)
t6 = neg(t5)
t7 = fma(t4, t6, -0x1.921fb6p+1)
return t7
"""

HARNESS = r"""
#define _POSIX_C_SOURCE 199309L
#include <stddef.h>
#include <stdint.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

typedef void (*array_fn)(const float *, float *, int64_t);

double time_hot(array_fn f, const float *x, float *y, int64_t n_hot, int64_t total, int reps)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = now();
        for (int64_t done = 0; done < total; done += n_hot)
            f(x, y, n_hot);
        t = now() - t;
        if (t < best) best = t;
    }
    return best * 1e9 / (double)total;
}
"""


def _build(programs: dict, scratch: Path, flags: tuple[str, ...], tag: str) -> ctypes.CDLL:
    cc = find_compiler()
    directory = scratch / tag
    directory.mkdir()
    sources = [directory / "harness.c"]
    sources[0].write_text(HARNESS)
    for name, program in programs.items():
        for file_name, text in emit_files(program, "c", name, None, name).items():
            (directory / file_name).write_text(text)
        sources.append(directory / f"{name}.c")
    library = directory / "libbench.so"
    subprocess.run(
        [cc, *flags, "-std=c99", "-shared", "-fPIC", "-o", str(library), *map(str, sources), "-lm"],
        check=True,
    )
    return ctypes.CDLL(str(library))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--program", action="append", default=[], help="more programs (file, RUN[:HASH] or anchor:NAME)"
    )
    parser.add_argument("--reps", type=int, default=9)
    args = parser.parse_args()
    programs = {
        "exp2_fma": anchor("exp2_0_1").program,
        "exp2_plain": next(b for b in baselines("exp2_0_1") if not b.fused and b.degree == 6).program,
        "log2_fma": anchor("log2_1_2").program,
        "erf_fma": anchor("erf_0_1").program,
        "every_op": parse_text(EVERY_OP),
    }
    for i, spec in enumerate(args.program):
        programs[f"program_{i}"] = load_program(spec)
    x = np.random.default_rng(0).uniform(0, 1, N_HOT).astype(np.float32)
    array_type = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
    print(
        f"L1 ns per element: {N_HOT}-element array, {TOTAL:,d} elements per repeat, min of {args.reps}; "
        f"C at {' '.join(C_FLAGS)} (and with {' '.join(NO_ERRNO)}), LLVM JIT for the host CPU"
    )
    print(
        f"  {'kernel':12s} {'ops':>4s} {'C ns':>8s} {'C ns':>10s} {'LLVM ns':>8s} {'LLVM / C':>9s}  "
        "bit-exact on the timed inputs"
    )
    print(f"  {'':12s} {'':>4s} {'':>8s} {'no errno':>10s}")
    with tempfile.TemporaryDirectory() as scratch:
        libraries = [
            _build(programs, Path(scratch), C_FLAGS, "c"),
            _build(programs, Path(scratch), C_FLAGS + NO_ERRNO, "c_no_errno"),
        ]
        harness = libraries[0].time_hot
        harness.restype = ctypes.c_double
        harness.argtypes = [
            array_type,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_int64,
            ctypes.c_int64,
            ctypes.c_int,
        ]
        for name, program in programs.items():
            kernel = jit(program, f"{name}_jit")
            functions = {
                "c": array_type(ctypes.cast(getattr(libraries[0], f"{name}_array"), ctypes.c_void_p).value),
                "c_no_errno": array_type(
                    ctypes.cast(getattr(libraries[1], f"{name}_array"), ctypes.c_void_p).value
                ),
                "llvm": array_type(kernel.address),
            }
            want = evaluate(program, x)
            exact = {}
            for label, fn in functions.items():
                y = np.empty_like(x)
                fn(x.ctypes.data, y.ctypes.data, N_HOT)
                exact[label] = bool(
                    ((y.view(np.uint32) == want.view(np.uint32)) | (np.isnan(y) & np.isnan(want))).all()
                )
            y = np.empty_like(x)
            best = dict.fromkeys(functions, float("inf"))
            for _ in range(2):  # interleaved rounds, so load on the machine hits both alike
                for label, fn in functions.items():
                    best[label] = min(
                        best[label], harness(fn, x.ctypes.data, y.ctypes.data, N_HOT, TOTAL, args.reps)
                    )
            verdict = ", ".join(f"{label} {'yes' if ok else 'NO'}" for label, ok in exact.items())
            print(
                f"  {name:12s} {program.op_count():>4d} {best['c']:>8.3f} {best['c_no_errno']:>10.3f} "
                f"{best['llvm']:>8.3f} "
                f"{best['llvm'] / best['c']:>8.2f}x  {verdict}"
            )


if __name__ == "__main__":
    main()
