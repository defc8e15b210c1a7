"""References: f(x) from mpmath at high precision, correctly rounded, and an on-disk cache of them.

For every point the value is computed at ``bits`` and again at ``bits + 64``; the two must agree on
the correctly rounded result in the working format and on the float64 pair (hi, lo), otherwise the
precision is doubled (up to 4096 bits), so cancellation inside a user's expression cannot leak a
wrong reference. The rounding goes straight from the mpf to the format (no double rounding).
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from primitives.floatbits import FLOAT32, FLOAT64, FloatFormat, format_hex
from primitives.rounding import round_mpf
from targets.target import REFERENCE_BITS, Target, TargetError

MAX_BITS = 4096
CACHE_VERSION = 1


@dataclass(frozen=True, slots=True)
class References:
    """f at each point: ``rounded`` (correctly rounded in the working format) and the float64
    pair ``hi + lo`` (about 106 bits) used to measure errors.
    """

    rounded: np.ndarray
    hi: np.ndarray
    lo: np.ndarray


def _evaluate(function, x: float, bits: int):
    import mpmath

    with mpmath.workprec(bits):
        try:
            value = function(mpmath.mpf(x))
        except (ValueError, ZeroDivisionError, OverflowError) as exc:
            raise _PointError("is not defined", exc) from None
        if isinstance(value, mpmath.mpc):
            if value.imag != 0:
                raise _PointError("is not real", None)
            value = value.real
        if not isinstance(value, mpmath.mpf):
            try:
                value = mpmath.mpf(value)
            except (TypeError, ValueError):
                raise _PointError("is not a real number", None) from None
        if not mpmath.isfinite(value):
            raise _PointError("is not finite", None)
        hi = round_mpf(value, FLOAT64)
        lo = round_mpf(value - mpmath.mpf(hi), FLOAT64) if math.isfinite(hi) else 0.0
        return value, hi, lo


class _PointError(Exception):
    def __init__(self, problem: str, cause: BaseException | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.cause = cause


def reference_at(
    target: Target, x: float, fmt: FloatFormat = FLOAT32, bits: int = REFERENCE_BITS, function=None
):
    """(rounded, hi, lo) for one point, with precision raised until two evaluations agree."""
    function = target.mp_function() if function is None else function
    while True:
        try:
            v1, hi1, lo1 = _evaluate(function, x, bits)
            v2, hi2, lo2 = _evaluate(function, x, bits + 64)
        except _PointError as err:
            raise TargetError(f"{target.expr} {err.problem} at x = {format_hex(x, fmt)} ({x!r})") from None
        r1, r2 = round_mpf(v1, fmt), round_mpf(v2, fmt)
        if r1 == r2 and hi1 == hi2 and lo1 == lo2 and math.copysign(1, r1) == math.copysign(1, r2):
            if not math.isfinite(r1):
                raise TargetError(f"{target.expr} overflows {fmt.name} at x = {format_hex(x, fmt)} ({x!r})")
            return r1, hi1, lo1
        bits *= 2
        if bits > MAX_BITS:
            raise TargetError(
                f"{target.expr} cannot be evaluated reliably at x = {x!r} (unstable beyond {MAX_BITS} bits)"
            )


def compute_references(
    target: Target, x: np.ndarray, fmt: FloatFormat = FLOAT32, bits: int = REFERENCE_BITS
) -> References:
    """References for every point of ``x`` (slow: mpmath per point; use ``cached_references``)."""
    function = target.mp_function()
    n = len(x)
    rounded = np.empty(n, dtype=fmt.dtype)
    hi = np.empty(n, dtype=np.float64)
    lo = np.empty(n, dtype=np.float64)
    for i, xi in enumerate(np.asarray(x, dtype=np.float64).tolist()):
        rounded[i], hi[i], lo[i] = reference_at(target, xi, fmt, bits, function)
    return References(rounded, hi, lo)


def probe_points(lo: float, hi: float, fmt: FloatFormat, count: int = 65) -> list[float]:
    """Endpoints, evenly spread points and zero (if inside): cheap evidence of where f is defined."""
    values = {lo, hi}
    for k in range(1, count - 1):
        values.add(float(fmt.dtype.type(lo + (hi - lo) * k / (count - 1))))
    if lo < 0 < hi:
        values.add(0.0)
    return sorted(v for v in values if lo <= v <= hi)


def check_real_and_finite(target: Target) -> None:
    """Refuse (TargetError) a target whose function is not real and finite on probes of its domain."""
    function = target.mp_function()
    for fmt in (FLOAT32,):
        lo, hi = target.domain(fmt)
        for x in probe_points(lo, hi, fmt):
            reference_at(target, x, fmt, REFERENCE_BITS, function)


def default_cache_dir() -> Path:
    """Where references are cached: ``$EVO_CACHE_DIR`` or the user cache directory."""
    env = os.environ.get("EVO_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "evo" / "references"


def cache_key(target: Target, points_digest: str, fmt: FloatFormat, bits: int) -> str:
    text = f"v{CACHE_VERSION}|{target.key}|{points_digest}|{fmt.name}|{bits}"
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def cached_references(
    target: Target,
    x: np.ndarray,
    points_digest: str,
    fmt: FloatFormat = FLOAT32,
    bits: int = REFERENCE_BITS,
    cache_dir: Path | None = None,
) -> References:
    """``compute_references`` through the on-disk cache keyed by target, point digest, format and
    precision. A corrupt or mismatched cache file is ignored and rewritten (atomically).
    """
    directory = default_cache_dir() if cache_dir is None else Path(cache_dir)
    path = directory / f"{target.name}-{cache_key(target, points_digest, fmt, bits)}.npz"
    if path.exists():
        try:
            with np.load(path) as data:
                refs = References(data["rounded"], data["hi"], data["lo"])
                same_points = np.array_equal(data["x"], np.asarray(x, dtype=data["x"].dtype))
            if same_points and refs.rounded.dtype == fmt.dtype and len(refs.hi) == len(x):
                return refs
        except (OSError, ValueError, KeyError):
            pass
    refs = compute_references(target, x, fmt, bits)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, suffix=".tmp", delete=False) as handle:
            np.savez(handle, x=np.asarray(x), rounded=refs.rounded, hi=refs.hi, lo=refs.lo)
            temporary = handle.name
        os.replace(temporary, path)
    except OSError:
        pass  # a read-only cache only costs time
    return refs
