"""jax-ffi exports against jnp.exp2 / jnp.exp / jnp.log2 under jax.jit: ns per element, same arrays, one run.

First table: the jax-ffi kernel is the classical 6-op FMA polynomial for 2^x on [0, 1] (or
--program), exported with `--lang jax-ffi` semantics (C kernel at -O3 -march=native -ffp-contract=off
-fno-math-errno, XLA FFI handler), called inside jax.jit; the baseline is jax.jit(jnp.exp2), on the
same float32 arrays of x in [0, 1] (jnp.exp2 is a full-range function, the kernel a reduced-domain
one: compare them as the building block each is).

Second table: the shipped full-range exp2f, expf and log2f (<= 1 ULP tier, `codegen.fullrange`) as
jax-ffi custom calls against jax.jit(jnp.exp2), jax.jit(jnp.exp) and jax.jit(jnp.log2) on the same
arrays (x uniform in [-20, 20] for the exponentials, [1e-3, 1e3] for log2f, as bench/kernels.py).

Each figure is the minimum over repeats that alternate the two functions (load from other processes
then biases neither), with the max ULP error of each against a float64 reference on the timed inputs.

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


def _best_pair(first, second, x, reps: int) -> tuple[float, float]:
    """Minimum ns per element of two functions on x, timed in alternation."""
    a = b = float("inf")
    for _ in range(reps):
        a = min(a, _best_ns(first, x, 1))
        b = min(b, _best_ns(second, x, 1))
    return a, b


def _max_ulp_full(function: str, x: np.ndarray, y: np.ndarray) -> float:
    """Max ULP of y = f(x) against a float64 reference (ulp of the float32-rounded reference); inf when a
    non-finite output differs from the rounded reference's."""
    reference = {"exp2f": np.exp2, "expf": np.exp, "log2f": np.log2}[function]
    with np.errstate(all="ignore"):
        exact = reference(x.astype(np.float64))
        rounded = exact.astype(np.float32)
        finite = np.isfinite(rounded)
        spacing = np.spacing(np.abs(rounded[finite])).astype(np.float64)
        err = np.abs(y[finite].astype(np.float64) - exact[finite]) / spacing
    if not (y[~finite] == rounded[~finite]).all() or not np.isfinite(y[finite]).all():
        return float("inf")
    return float(err.max()) if err.size else 0.0


def full_range_table(reps: int) -> None:
    import tempfile
    from pathlib import Path

    import jax
    import jax.numpy as jnp

    from codegen.emit_jaxffi import BuildError, build_fullrange
    from codegen.fullrange import full_range_c
    from codegen.fullrange_kernels import tier

    baselines = {
        "exp2f": ("jnp.exp2", jnp.exp2, (-20.0, 20.0)),
        "expf": ("jnp.exp", jnp.exp, (-20.0, 20.0)),
        "log2f": ("jnp.log2", jnp.log2, (1e-3, 1e3)),
    }
    rng = np.random.default_rng(1)
    print(
        "\nfull-range functions (<= 1 ULP tier) as jax-ffi calls against jnp under jax.jit "
        f"(min of {reps} alternating)"
    )
    print(
        f"  {'function':>8s} {'elements':>10s} {'jax-ffi ns':>11s} {'jnp ns':>9s} {'ffi speed':>10s}  "
        "max ULP ffi / jnp   (baseline)"
    )
    with tempfile.TemporaryDirectory() as scratch:
        for function, (label, baseline, (lo, hi)) in baselines.items():
            full = full_range_c(function, tier(function, 1).kernel, name=f"evo_{function}")
            directory = Path(scratch) / function
            directory.mkdir()
            try:
                ffi = build_fullrange(full, directory)
            except BuildError as exc:
                print(f"  {function}: skipped, {exc}")
                continue
            reference = jax.jit(baseline)
            for n in (4096, 65536, 1 << 20, 1 << 22):
                x = jnp.asarray(rng.uniform(lo, hi, n).astype(np.float32))
                ffi_ns, jnp_ns = _best_pair(ffi, reference, x, reps)
                host = np.asarray(x)
                errors = (
                    _max_ulp_full(function, host, np.asarray(ffi(x))),
                    _max_ulp_full(function, host, np.asarray(reference(x))),
                )
                print(
                    f"  {function:>8s} {n:>10,d} {ffi_ns:>11.3f} {jnp_ns:>9.3f} {jnp_ns / ffi_ns:>9.2f}x  "
                    f"{errors[0]:>7.3f} / {errors[1]:<7.3f}   ({label})"
                )


def _max_ulp(y: np.ndarray, x: np.ndarray) -> float:
    from primitives.ulp import ulp32

    exact = np.exp2(x.astype(np.float64))  # float64 2^x: far below float32 resolution
    spacing = np.array([ulp32(float(np.float32(v))) for v in exact[:: max(1, x.size // 4096)]])
    err = np.abs(y[:: max(1, x.size // 4096)].astype(np.float64) - exact[:: max(1, x.size // 4096)]) / spacing
    return float(err.max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--program",
        help="an exp2 kernel on [0, 1] (file, RUN[:HASH] or anchor:NAME); default the Sollya 6-op anchor",
    )
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
    print(
        f"jax {jax.__version__}, CPU; ns per element under jax.jit (min of {args.reps}); x uniform in [0, 1]"
    )
    print(
        f"  {'elements':>10s} {'jax-ffi ns':>11s} {'jnp.exp2 ns':>12s} {'ffi speed':>10s}  max ULP ffi / "
        "jnp.exp2"
    )
    for n in (4096, 65536, 1 << 20, 1 << 24):
        x = jnp.asarray(rng.uniform(0, 1, n).astype(np.float32))
        ffi_ns, jnp_ns = _best_pair(ffi_kernel, reference, x, args.reps)
        host = np.asarray(x)
        errors = (_max_ulp(np.asarray(ffi_kernel(x)), host), _max_ulp(np.asarray(reference(x)), host))
        print(
            f"  {n:>10,d} {ffi_ns:>11.3f} {jnp_ns:>12.3f} {jnp_ns / ffi_ns:>9.2f}x  {errors[0]:.3f} / "
            f"{errors[1]:.3f}"
        )
    full_range_table(args.reps)


if __name__ == "__main__":
    main()
