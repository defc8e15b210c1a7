"""Deterministic point sets over a domain: search (small), select (~64k), refine (~16k, for the
lattice refinement of constants) and final (exhaustive or large).

Explicit sets are sorted, distinct floats of the working format, drawn from a seed:
the endpoints; short runs of consecutive floats at both ends, around zero and at binade edges (powers
of two, where ULPs change size); stratified uniform-in-value points (one per equal slice of the
interval); stratified uniform-in-ordinal points (one per equal slice of the float bit patterns,
which reach tiny magnitudes); and random fill. A domain with at most ``n`` floats is used whole.
The final set of a float32 domain is exhaustive (an ordinal range, never materialised) when the
domain holds at most ``EXHAUSTIVE_LIMIT`` floats.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from primitives.floatbits import FloatFormat, bits_to_float, float_to_bits, from_ordinal, get_format, ordinal

SEARCH_POINTS = 4096
SELECT_POINTS = 65536
REFINE_POINTS = 16384
FINAL_SAMPLE_POINTS = 1 << 20
EXHAUSTIVE_LIMIT = 1 << 31
KIND_SALT = {"search": 1, "select": 2, "final": 3, "refine": 4}


@dataclass(frozen=True, slots=True)
class PointSet:
    """Either explicit points (``x``) or every float with ordinal in [ord_lo, ord_hi] (exhaustive).

    Attributes:
        kind: "search", "select" or "final".
        dtype: the working format.
        x: sorted distinct points, read-only (None when exhaustive).
        ord_lo, ord_hi: the ordinal range of the domain (always set).
        exhaustive: True when the set is every float of the domain.
        digest: identity of the points (goes into caches and score records).
    """

    kind: str
    dtype: str
    x: np.ndarray | None
    ord_lo: int
    ord_hi: int
    exhaustive: bool
    digest: str

    @property
    def size(self) -> int:
        return (self.ord_hi - self.ord_lo + 1) if self.x is None else int(self.x.shape[0])

    @property
    def label(self) -> str:
        how = "exhaustive" if self.exhaustive else "sample"
        return f"{self.kind} ({how}, {self.size} points, {self.digest[:8]})"


def domain_ordinals(lo: float, hi: float, fmt: FloatFormat) -> tuple[int, int]:
    return ordinal(float_to_bits(lo, fmt), fmt), ordinal(float_to_bits(hi, fmt), fmt)


def _floats_from_ordinals(ords: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    ords = np.asarray(ords, dtype=np.int64)
    if fmt.width == 32:
        bits = np.where(ords < 0, np.int64(0x80000000) | -ords, ords).astype(np.uint32)
    else:
        bits = np.where(ords < 0, (-ords).astype(np.uint64) | np.uint64(1 << 63), ords.astype(np.uint64))
    return bits.view(fmt.dtype)


def _ordinals_of(values: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    bits = np.ascontiguousarray(values, dtype=fmt.dtype).view(fmt.uint_dtype)
    if fmt.width == 32:
        signed = bits.astype(np.int64)
        magnitude = signed & 0x7FFFFFFF
        return np.where(signed & 0x80000000, -magnitude, magnitude)
    magnitude = (bits & np.uint64((1 << 63) - 1)).astype(np.int64)
    return np.where(bits >> np.uint64(63), -magnitude, magnitude)


def _edge_ordinals(o_lo: int, o_hi: int, lo: float, hi: float, fmt: FloatFormat, budget: int) -> list[int]:
    """Runs of consecutive floats at the ends, around 0 and around powers of two inside the domain."""
    run = 8
    found: set[int] = set()
    for centre in (o_lo, o_hi):
        found.update(range(centre - run, centre + run + 1))
    if lo <= 0.0 <= hi:
        found.update(range(-run, run + 1))
    edges: list[int] = []
    for sign in (-1.0, 1.0):
        for exponent in range(fmt.emin, fmt.emax + 1):
            value = sign * math.ldexp(1.0, exponent)
            if lo <= value <= hi:
                edges.append(ordinal(float_to_bits(value, fmt), fmt))
    if edges:
        keep = max(1, budget // (2 * 4 + 1))
        step = max(1, len(edges) // keep)
        for centre in edges[::step]:
            found.update(range(centre - 4, centre + 5))
    return [o for o in found if o_lo <= o <= o_hi]


def sample_ordinals(
    o_lo: int, o_hi: int, lo: float, hi: float, fmt: FloatFormat, n: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` distinct ordinals of the domain (all of them when the domain is small)."""
    count = o_hi - o_lo + 1
    if count <= n:
        return np.arange(o_lo, o_hi + 1, dtype=np.int64)
    structured = set(_edge_ordinals(o_lo, o_hi, lo, hi, fmt, n // 10))  # always kept
    n_value = int(n * 0.6)
    n_ordinal = int(n * 0.25)
    sampled: set[int] = set()
    # Stratified in value: one uniform draw inside each of n_value equal slices.
    slices = (np.arange(n_value) + rng.random(n_value)) / n_value
    values = np.clip(lo + (hi - lo) * slices, lo, hi).astype(fmt.dtype)
    sampled.update(_ordinals_of(values, fmt).tolist())
    # Stratified in ordinal (bit pattern) space.
    width = count / n_ordinal
    offsets = np.floor((np.arange(n_ordinal) + rng.random(n_ordinal)) * width).astype(np.int64)
    sampled.update((o_lo + np.minimum(offsets, count - 1)).tolist())
    sampled -= structured
    while len(structured) + len(sampled) < n:
        extra = n - len(structured) - len(sampled)
        values = np.clip(lo + (hi - lo) * rng.random(extra), lo, hi).astype(fmt.dtype)
        sampled.update(o for o in _ordinals_of(values, fmt).tolist() if o not in structured)
        if len(structured) + len(sampled) < n:  # very narrow domains in value: draw ordinals too
            sampled.update(
                o for o in rng.integers(o_lo, o_hi + 1, size=extra).tolist() if o not in structured
            )
    room = n - len(structured)
    random_part = np.array(sorted(sampled), dtype=np.int64)
    if room <= 0:  # only for tiny n: the structured points alone fill it
        random_part = random_part[:0]
    elif len(random_part) > room:  # trim the random surplus only, never the structured points
        random_part = np.sort(random_part[rng.choice(len(random_part), size=room, replace=False)])
    return np.union1d(np.array(sorted(structured), dtype=np.int64), random_part)


def make_point_set(
    lo: float, hi: float, fmt: FloatFormat, kind: str, seed: int, n: int | None = None
) -> PointSet:
    """The ``kind`` point set of the domain [lo, hi] for ``seed`` (deterministic)."""
    if kind not in KIND_SALT:
        raise ValueError(f"unknown point set {kind!r} (search, select, refine or final)")
    o_lo, o_hi = domain_ordinals(lo, hi, fmt)
    count = o_hi - o_lo + 1
    if kind == "final" and n is None and fmt.width == 32 and count <= EXHAUSTIVE_LIMIT:
        digest = hashlib.blake2b(f"{fmt.name}|{o_lo}|{o_hi}".encode(), digest_size=16).hexdigest()
        return PointSet(kind, fmt.name, None, o_lo, o_hi, True, digest)
    default = {
        "search": SEARCH_POINTS,
        "select": SELECT_POINTS,
        "refine": REFINE_POINTS,
        "final": FINAL_SAMPLE_POINTS,
    }[kind]
    n = default if n is None else int(n)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), KIND_SALT[kind]])))
    ords = sample_ordinals(o_lo, o_hi, lo, hi, fmt, n, rng)
    x = _floats_from_ordinals(ords, fmt)
    x.setflags(write=False)
    digest = hashlib.blake2b(x.tobytes(), digest_size=16).hexdigest()
    return PointSet(kind, fmt.name, x, o_lo, o_hi, count <= n, digest)


def float_at(points: PointSet, index: int) -> float:
    """The point with the given index (works for exhaustive sets too)."""
    fmt = get_format(points.dtype)
    if points.x is not None:
        return float(points.x[index])
    return bits_to_float(from_ordinal(points.ord_lo + index, fmt), fmt)
