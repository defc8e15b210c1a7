"""jax-ffi export against jnp.exp2 under jax.jit: ns per element on the same arrays, in one run.

The jax-ffi kernel is the classical 6-op FMA polynomial for 2^x on [0, 1] (or --program), exported
with `--lang jax-ffi` semantics (C kernel at -O3 -march=native -ffp-contract=off -fno-math-errno, XLA
FFI handler), called inside jax.jit; the baseline is jax.jit(jnp.exp2). Both run on the same float32
arrays of x in [0, 1]; the table gives the minimum over repeats of a blocked call, and the max ULP
error of each against the correctly rounded 2^x on the timed inputs (jnp.exp2 is a full-range
function, the kernel a reduced-domain one: compare them as the building block each is).

    python bench/jax_ffi.py [--program PROGRAM] [--reps 15]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _best_ns(function, x, reps: int) -> float:
    function(x).block_until_ready()  # compile and warm up
    best = float("inf")
    for _ in range(reps):
        started = time.perf_counter()
        function(x).block_until_ready()
        best = min(best, time.perf_counter() - started)
    return best * 1e9 / x.size


def _max_ulp(y: np.ndarray, x: np.ndarray) -> float:
    from primitives.ulp import ulp32

    exact = np.exp2(x.astype(np.float64))  # float64 2^x: far below float32 resolution
    spacing = np.array([ulp32(float(np.float32(v))) for v in exact[:: max(1, x.size // 4096)]])
    err = np.abs(y[:: max(1, x.size // 4096)].astype(np.float64) - exact[:: max(1, x.size // 4096)]) / spacing
    return float(err.max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--program", help="an exp2 kernel on [0, 1] (file, RUN[:HASH] or anchor:NAME); default the Sollya 6-op anchor")
    parser.add_argument("--reps", type=int, default=15)
    args = parser.parse_args()
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        print("JAX is not installed (pip install -e '.[jax]'): nothing to time")
        return
    from codegen.verify import build_kernel
    from evo.loading import load_program
    from targets.baselines import anchor

    program = load_program(args.program) if args.program else anchor("exp2_0_1").program
    ffi_kernel = build_kernel(program, "jax-ffi", "exp2k").__closure__[0].cell_contents  # jax.jit(exp2k)
    reference = jax.jit(jnp.exp2)
    rng = np.random.default_rng(0)
    print(f"jax {jax.__version__}, CPU; ns per element under jax.jit (min of {args.reps}); x uniform in [0, 1]")
    print(f"  {'elements':>10s} {'jax-ffi ns':>11s} {'jnp.exp2 ns':>12s} {'ffi speed':>10s}  max ULP ffi / jnp.exp2")
    for n in (4096, 65536, 1 << 20, 1 << 24):
        x = jnp.asarray(rng.uniform(0, 1, n).astype(np.float32))
        ffi_ns = _best_ns(ffi_kernel, x, args.reps)
        jnp_ns = _best_ns(reference, x, args.reps)
        host = np.asarray(x)
        errors = (_max_ulp(np.asarray(ffi_kernel(x)), host), _max_ulp(np.asarray(reference(x)), host))
        print(f"  {n:>10,d} {ffi_ns:>11.3f} {jnp_ns:>12.3f} {jnp_ns / ffi_ns:>9.2f}x  {errors[0]:.3f} / {errors[1]:.3f}")


if __name__ == "__main__":
    main()
