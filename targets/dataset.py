"""Datasets: a target's point set with its references, ready for the scoring kernels.

``Dataset`` holds explicit points and mpmath references (search, select and sampled final sets);
``Sweep`` is an exhaustive final set: every float32 of the domain, scored in parallel chunks against
a fast float64 reference whose accuracy has been measured against mpmath on the select set.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from primitives.floatbits import get_format
from primitives.ulp import inv_rel_scale, inv_ulp32
from targets.fastref import (
    MAX_DEVIATION_ULP,
    NoFastReference,
    fast_reference,
    first_nonfinite,
    reference_deviation,
)
from targets.points import FINAL_SAMPLE_POINTS, PointSet, float_at, make_point_set
from targets.reference import cached_references, compute_references, reference_at
from targets.target import Target, TargetError

MODES = {"float32": "ulp", "float64": "rel"}  # working format -> error metric


@dataclass(frozen=True, slots=True)
class Dataset:
    """Explicit points with references; every array is read-only.

    Attributes:
        target: what the references are of.
        points: the point set (kind, digest, ...).
        metric: "ulp" (float32 setting) or "rel" (relative error, real-number setting).
        x: the points, in the working format.
        ref_hi, ref_lo: f(x) as a float64 pair.
        inv_scale: 1 / (the error unit at each point): 1/ulp32(RN32(f)) or 1/|f|.
        rounded: f(x) correctly rounded to the working format.
    """

    target: Target
    points: PointSet
    metric: str
    x: np.ndarray
    ref_hi: np.ndarray
    ref_lo: np.ndarray
    inv_scale: np.ndarray
    rounded: np.ndarray

    @property
    def kind(self) -> str:
        return self.points.kind

    @property
    def dtype(self) -> str:
        return self.points.dtype

    @property
    def digest(self) -> str:
        return self.points.digest

    @property
    def size(self) -> int:
        return int(self.x.shape[0])

    @property
    def label(self) -> str:
        return self.points.label


@dataclass(frozen=True, slots=True)
class Sweep:
    """Every float32 of the domain, with a validated fast reference.

    Attributes:
        target: the target.
        points: the exhaustive point set (an ordinal range).
        reference: numba float64 -> float64 function for f.
        reference_deviation: its measured largest deviation from mpmath, in ULPs.
        deviation_points: how many points that was measured on.
    """

    target: Target
    points: PointSet
    reference: Callable[[float], float]
    reference_deviation: float
    deviation_points: int
    metric: str = "ulp"

    @property
    def kind(self) -> str:
        return self.points.kind

    @property
    def dtype(self) -> str:
        return self.points.dtype

    @property
    def digest(self) -> str:
        return self.points.digest

    @property
    def size(self) -> int:
        return self.points.size

    @property
    def label(self) -> str:
        return self.points.label


def _readonly(*arrays: np.ndarray) -> None:
    for array in arrays:
        array.setflags(write=False)


def dataset_from_points(target: Target, points: PointSet, cache_dir: Path | None = None) -> Dataset:
    """Attach (cached) mpmath references to explicit points."""
    if points.x is None:
        raise ValueError("exhaustive point sets have no explicit points; use build_sweep")
    fmt = get_format(points.dtype)
    refs = cached_references(target, points.x, points.digest, fmt, cache_dir=cache_dir)
    metric = MODES[points.dtype]
    inv_scale = inv_ulp32(refs.rounded) if metric == "ulp" else inv_rel_scale(refs.hi)
    x = np.array(points.x, copy=True)
    rounded, hi, lo = (np.array(a, copy=True) for a in (refs.rounded, refs.hi, refs.lo))
    _readonly(x, rounded, hi, lo, inv_scale)
    return Dataset(target, points, metric, x, hi, lo, inv_scale, rounded)


def build_dataset(
    target: Target,
    kind: str,
    dtype: str = "float32",
    seed: int = 0,
    n: int | None = None,
    cache_dir: Path | None = None,
) -> Dataset | Sweep:
    """The ``kind`` set ("search", "select" or "final") of ``target`` in ``dtype``.

    The final float32 set is a ``Sweep`` over every float of the domain when it has at most 2^31
    floats and a fast reference is available and accurate; otherwise a large sample with mpmath
    references.

    Raises TargetError (one line, naming the first bad x) when the function is not real and finite
    at a point of the set: for an exhaustive set, the reference pass of ``build_sweep`` covers
    every float of the domain. Callers that must not fail (the end-of-run sign-off) catch it.
    """
    if dtype not in MODES:
        raise TargetError(f"unknown mode {dtype!r} (float32 or float64)")
    fmt = get_format(dtype)
    lo, hi = target.domain(fmt)
    points = make_point_set(lo, hi, fmt, kind, seed, n)
    if points.x is None:
        try:
            return build_sweep(target, points, seed, cache_dir)
        except NoFastReference:
            points = make_point_set(
                lo, hi, fmt, kind, seed, n=None if kind != "final" else FINAL_SAMPLE_POINTS
            )
    return dataset_from_points(target, points, cache_dir)


def refine_dataset(
    target: Target,
    search: Dataset,
    select: Dataset,
    seed: int = 0,
    n: int | None = None,
    cache_dir: Path | None = None,
) -> Dataset:
    """The search points and a denser sample of the domain, without any select point: where the
    lattice refinement of constants measures programs (the select set stays unseen by the search)."""
    fmt = get_format(search.dtype)
    lo, hi = target.domain(fmt)
    sample = make_point_set(lo, hi, fmt, "refine", seed, n)
    assert sample.x is not None
    x = np.union1d(np.asarray(sample.x, dtype=fmt.dtype), np.asarray(search.x, dtype=fmt.dtype))
    x = np.ascontiguousarray(x[~np.isin(x, select.x)])
    x.setflags(write=False)
    digest = hashlib.blake2b(b"refine|" + x.tobytes(), digest_size=16).hexdigest()
    points = PointSet("refine", fmt.name, x, sample.ord_lo, sample.ord_hi, False, digest)
    return dataset_from_points(target, points, cache_dir)


def build_sweep(target: Target, points: PointSet, seed: int = 0, cache_dir: Path | None = None) -> Sweep:
    """An exhaustive set with its fast reference, measured against mpmath on the select points and,
    for derived references, checked finite on every float of the domain (else TargetError at the
    first x where f is not defined or finite, or NoFastReference if only float64 overflowed)."""
    reference = fast_reference(target)
    fmt = get_format(points.dtype)
    lo, hi = target.domain(fmt)
    check = dataset_from_points(target, make_point_set(lo, hi, fmt, "select", seed), cache_dir)
    deviation = reference_deviation(reference, check.x, check.ref_hi, check.ref_lo, check.inv_scale)
    if not deviation <= MAX_DEVIATION_ULP:
        raise NoFastReference(
            f"the float64 reference of {target.expr} deviates {deviation:.3g} ULP from mpmath"
        )
    if target.fast_ref is None:  # derived formulas may have poles at floats the probes missed
        bad = first_nonfinite(reference, points.ord_lo, points.size)
        if bad is not None:
            reference_at(target, float_at(points, bad), fmt)  # TargetError naming x if f is bad there
            raise NoFastReference(
                f"the float64 reference of {target.expr} overflows at x = {float_at(points, bad)!r}"
            )
    return Sweep(target, points, reference, deviation, check.size)


def with_extra_points(data: Dataset, xs: np.ndarray) -> Dataset:
    """``data`` plus the points ``xs`` (e.g. hard points mined from a program's worst cases).

    References for the new points come from mpmath like all others; the result is sorted and
    distinct, with a new digest. Points already present are ignored.
    """
    fmt = get_format(data.dtype)
    extra = np.setdiff1d(np.asarray(xs, dtype=fmt.dtype), data.x)
    if extra.size == 0:
        return data
    refs = compute_references(data.target, extra, fmt)
    metric_scale = inv_ulp32(refs.rounded) if data.metric == "ulp" else inv_rel_scale(refs.hi)
    x = np.concatenate([data.x, extra])
    order = np.argsort(x, kind="stable")
    merged = [
        np.ascontiguousarray(np.concatenate(pair)[order])
        for pair in (
            (data.x, extra),
            (data.ref_hi, refs.hi),
            (data.ref_lo, refs.lo),
            (data.inv_scale, metric_scale),
            (data.rounded, refs.rounded),
        )
    ]
    x, hi, lo, inv_scale, rounded = merged
    _readonly(x, hi, lo, inv_scale, rounded)
    digest = hashlib.blake2b(x.tobytes(), digest_size=16).hexdigest()
    points = PointSet(data.points.kind, data.dtype, x, data.points.ord_lo, data.points.ord_hi, False, digest)
    return Dataset(data.target, points, data.metric, x, hi, lo, inv_scale, rounded)
