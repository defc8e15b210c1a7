"""Scoring: ``score(program, dataset) -> Score``, the interpreter and the error metric fused in numba.

Explicit datasets are scored in one kernel call (no Python per point); exhaustive sweeps are split
into chunks scored in parallel threads (the kernels release the GIL). A NaN or infinite output is
an infinite error, never an exception.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from primitives.encode import Encoded, encode
from primitives.interp import evaluate, score_kernel, sweep_kernel, sweep_worst_kernel
from primitives.program import Program
from targets.dataset import Dataset, Sweep
from targets.points import float_at

SWEEP_CHUNK = 1 << 22


@dataclass(frozen=True, slots=True)
class Score:
    """How well a program approximates its target on one point set.

    Attributes:
        max_err: largest error (ULPs, or relative error in the real-number setting); inf if any
            output is NaN or infinite.
        mean_err: mean error (inf if any output is non-finite).
        worst_x: the first point where the largest error occurs (NaN for an empty set).
        n_points: number of points scored.
        n_nonfinite: outputs that were NaN or infinite.
        n_exact: outputs equal to the correctly rounded value.
        n_over_one: errors above 1 (ULP).
        metric: "ulp" or "rel".
        points: label of the point set (kind, exhaustive or sample, size, digest).
    """

    max_err: float
    mean_err: float
    worst_x: float
    n_points: int
    n_nonfinite: int
    n_exact: int
    n_over_one: int
    metric: str
    points: str

    def __reduce__(self):  # compact pickles (scores travel with every result)
        return (Score, tuple(getattr(self, name) for name in _SCORE_FIELDS))

    @property
    def finite(self) -> bool:
        return math.isfinite(self.max_err)

    @property
    def frac_exact(self) -> float:
        return self.n_exact / self.n_points if self.n_points else 0.0

    @property
    def digits(self) -> float:
        """-log10 of the max error (the paper's "significant digits" for relative errors)."""
        return -math.log10(self.max_err) if self.max_err > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        return {k: _json_float(v) for k, v in asdict(self).items()}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Score:
        fields = dict(data)
        for name in ("max_err", "mean_err", "worst_x"):
            fields[name] = float(fields[name])
        return Score(**fields)

    def summary(self) -> str:
        unit = "ULP" if self.metric == "ulp" else "rel"
        return (
            f"max {self.max_err:.6g} {unit}, mean {self.mean_err:.4g}, worst x = {self.worst_x!r}, "
            f"{self.frac_exact:.2%} correctly rounded, {self.n_over_one} over 1, "
            f"{self.n_nonfinite} non-finite, on {self.points}"
        )


_SCORE_FIELDS = (
    "max_err",
    "mean_err",
    "worst_x",
    "n_points",
    "n_nonfinite",
    "n_exact",
    "n_over_one",
    "metric",
    "points",
)


def _json_float(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _finish(stats: tuple, n: int, x_of_worst, metric: str, label: str) -> Score:
    max_err, total, worst, nonfinite, exact, over_one = stats
    mean = math.inf if nonfinite else (float(total) / n if n else 0.0)
    worst_x = float(x_of_worst(int(worst))) if worst >= 0 else math.nan
    return Score(float(max_err), mean, worst_x, n, int(nonfinite), int(exact), int(over_one), metric, label)


def score_encoded(encoded: Encoded, data: Dataset) -> tuple:
    """The raw kernel statistics of an encoded program on explicit points (the search's hot path)."""
    consts = encoded.consts.astype(data.x.dtype, copy=False)
    return score_kernel(
        encoded.opcodes,
        encoded.args,
        consts,
        encoded.out,
        data.x,
        data.ref_hi,
        data.ref_lo,
        data.inv_scale,
        data.rounded,
    )


def score(program: Program, data: Dataset | Sweep, threads: int | None = None) -> Score:
    """Score ``program`` on ``data`` (explicit points or an exhaustive sweep)."""
    if np.dtype(program.dtype).itemsize > np.dtype(data.dtype).itemsize:
        raise ValueError(f"a {program.dtype} program cannot be scored in {data.dtype}")
    encoded = encode(program)
    if isinstance(data, Sweep):
        return _score_sweep(encoded, data, threads)
    stats = score_encoded(encoded, data)
    return _finish(stats, data.size, lambda i: data.x[i], data.metric, data.label)


def _score_sweep(encoded: Encoded, sweep: Sweep, threads: int | None) -> Score:
    consts = encoded.consts.astype(np.float32)
    count = sweep.size
    starts = list(range(0, count, SWEEP_CHUNK))

    def run(start: int) -> tuple:
        n = min(SWEEP_CHUNK, count - start)
        return sweep_kernel(
            encoded.opcodes,
            encoded.args,
            consts,
            encoded.out,
            sweep.points.ord_lo + start,
            n,
            sweep.reference,
        )

    workers = threads or os.cpu_count() or 1
    run(starts[0]) if workers > 1 else None  # compile once before fanning out
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(run, starts))
    best, worst, total, nonfinite, exact, over_one = -1.0, -1, 0.0, 0, 0, 0
    for start, (m, t, w, nf, ex, ov) in zip(starts, parts, strict=True):
        if m > best:
            best, worst = float(m), start + int(w)
        total += float(t)
        nonfinite += int(nf)
        exact += int(ex)
        over_one += int(ov)
    stats = (best if nonfinite == 0 else math.inf, total, worst, nonfinite, exact, over_one)
    return _finish(stats, count, lambda i: float_at(sweep.points, i), sweep.metric, sweep.label)


def worst_points(
    program: Program, data: Dataset | Sweep, count: int = 32, budget: int = 1 << 24
) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` points of ``data`` where ``program`` errs most (points, errors), worst first.

    On an exhaustive sweep at most about ``budget`` points are examined (every k-th float of the
    domain), so this is a cheap way to find where a program's tail lies.
    """
    if isinstance(data, Sweep):
        encoded = encode(program)
        consts = encoded.consts.astype(np.float32)
        stride = max(1, -(-data.size // budget))
        xs, errors = sweep_worst_kernel(
            encoded.opcodes,
            encoded.args,
            consts,
            encoded.out,
            data.points.ord_lo,
            data.size,
            stride,
            data.reference,
            count,
        )
    else:
        y = evaluate(program, data.x, data.dtype)
        with np.errstate(invalid="ignore", over="ignore"):
            errors = np.abs((y.astype(np.float64) - data.ref_hi) - data.ref_lo) * data.inv_scale
        errors = np.where(np.isfinite(y), errors, np.inf)
        errors = np.where(np.isnan(errors), np.inf, errors)
        top = np.argsort(-errors, kind="stable")[:count]
        xs, errors = data.x[top], errors[top]
    order = np.argsort(-errors, kind="stable")
    return np.asarray(xs)[order], np.asarray(errors)[order]
