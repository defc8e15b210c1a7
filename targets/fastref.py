"""Fast float64 references for exhaustive sweeps, where mpmath would take days.

Built-in targets use the libm (glibc-quality) binary64 function; user expressions are compiled from
the sympy expression with ``lambdify`` into numba. A fast reference is only ever used after
``reference_deviation`` has measured it against the mpmath references on a sample: its largest
deviation must be far below the ULP resolution we report (``MAX_DEVIATION_ULP``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import sympy
from numba import njit
from sympy.codegen.rewriting import expm1_opt, log1p_opt, optimize

from targets.target import Target, X

MAX_DEVIATION_ULP = 1e-3  # in float32 ULPs; glibc's binary64 functions are around 1e-9


@njit(cache=True)
def _exp2(x):
    return np.exp2(x)


@njit(cache=True)
def _exp(x):
    return math.exp(x)


@njit(cache=True)
def _log2(x):
    return math.log2(x)


@njit(cache=True)
def _sin(x):
    return math.sin(x)


@njit(cache=True)
def _cos(x):
    return math.cos(x)


@njit(cache=True)
def _erf(x):
    return math.erf(x)


@njit(cache=True)
def _tanh(x):
    return math.tanh(x)


LIBM_REFERENCES: dict[str, Callable[[float], float]] = {
    "exp2": _exp2,
    "exp": _exp,
    "log2": _log2,
    "sin": _sin,
    "cos": _cos,
    "erf": _erf,
    "tanh": _tanh,
}


class NoFastReference(Exception):
    """The expression cannot be compiled to a fast float64 function."""


def fast_reference(target: Target) -> Callable[[float], float]:
    """A numba-compiled float64 -> float64 function approximating the target."""
    if target.fast_ref is not None:
        return LIBM_REFERENCES[target.fast_ref]
    # lambdify prints the parsed (whitelisted) tree as code, never user text; the numpy error model
    # makes a division by zero inf/nan, which the reference pass over the final set reports
    # log(1 + u) and exp(u) - 1 as log1p / expm1: float64 keeps their relative accuracy near u = 0
    # (log(1+x) loses every digit at tiny x, where float32 still has them all)
    expr = optimize(target.sympy_expr(), (log1p_opt, expm1_opt))
    source = sympy.lambdify(X, expr, modules="math")
    function = njit(error_model="numpy")(source)
    try:
        function(np.float64(0.5))
    except Exception as exc:  # numba typing errors have many types
        raise NoFastReference(f"no float64 reference for {target.expr}: {type(exc).__name__}") from None
    return function


@njit(nogil=True, cache=False)
def _apply(function, x, out):
    for i in range(x.shape[0]):
        out[i] = function(np.float64(x[i]))


def apply_reference(function, x: np.ndarray) -> np.ndarray:
    """function(x) for every point (float64 result)."""
    out = np.empty(x.shape[0], dtype=np.float64)
    _apply(function, np.ascontiguousarray(x), out)
    return out


@njit(nogil=True, cache=False)
def _first_nonfinite(function, ord_lo, count):
    bits = np.empty(1, np.uint32)
    value = bits.view(np.float32)
    sign = np.uint32(0x80000000)
    for i in range(count):
        o = ord_lo + i
        bits[0] = np.uint32(o) if o >= 0 else (sign | np.uint32(-o))
        if not np.isfinite(np.float32(function(np.float64(value[0])))):
            return i
    return -1


def first_nonfinite(function, ord_lo: int, count: int, chunk: int = 1 << 22) -> int | None:
    """Index of the first float32 (ordinal ``ord_lo + i``) where ``function`` is not finite in
    float32, or None: the reference pass over an exhaustive final set (threads over chunks)."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    starts = list(range(0, count, chunk))
    first = _first_nonfinite(function, ord_lo + starts[0], min(chunk, count))  # compiles once
    if first >= 0:
        return first
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        found = pool.map(lambda s: _first_nonfinite(function, ord_lo + s, min(chunk, count - s)), starts[1:])
        for start, index in zip(starts[1:], found, strict=True):
            if index >= 0:
                return start + index
    return None


def reference_deviation(
    function, x: np.ndarray, hi: np.ndarray, lo: np.ndarray, inv_scale: np.ndarray
) -> float:
    """Largest |fast(x) - f(x)| in units of the error metric (float32 ULPs) over the points."""
    fast = apply_reference(function, x)
    deviation = np.abs((fast - hi) - lo) * inv_scale
    return float(np.max(deviation)) if deviation.size else 0.0
