"""Evaluating one child: fit its constants, polish them in float32, score it on the search set.

``Evaluator`` is pure apart from its read-only datasets: the same job always gives the same result
(which is what makes caching, resuming and distributed evaluation safe). It is what a worker holds.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from evo.fit import FitSettings, minimax_fit, polish
from primitives.encode import encode
from primitives.interp import score_kernel
from primitives.floatbits import float_to_bits, get_format
from primitives.program import Program
from targets.dataset import Dataset
from targets.scoring import Score, score_encoded

RAW_STATS = tuple  # (max, sum, worst index, nonfinite, exact, over_one) from the scoring kernel


@dataclass(frozen=True, slots=True)
class Job:
    """One evaluation request: a child program, and whether its constants should be fitted."""

    child_id: int
    program: Program
    fit: bool


@dataclass(frozen=True, slots=True)
class EvalResult:
    """What came back: the (possibly re-fitted) program and its search-set score."""

    child_id: int
    program: Program
    score: Score
    fit_evals: int
    eval_ms: float
    worker: int = 0


class Evaluator:
    """Scores children on the search set, fitting constants first when asked."""

    def __init__(self, search: Dataset, settings: FitSettings, fit_enabled: bool = True) -> None:
        self.search = search
        self.settings = settings
        self.fit_enabled = fit_enabled
        step = max(1, search.size // settings.fit_points)
        index = np.unique(np.concatenate([np.arange(0, search.size, step), [search.size - 1]]))
        self._fit_x = np.ascontiguousarray(search.x[index], dtype=np.float64)
        self._fit_hi = np.ascontiguousarray(search.ref_hi[index])
        self._fit_lo = np.ascontiguousarray(search.ref_lo[index])
        self._fit_inv = np.ascontiguousarray(search.inv_scale[index])

    def with_search(self, search: Dataset) -> Evaluator:
        """The same evaluator on another search set."""
        return Evaluator(search, self.settings, self.fit_enabled)

    def score_program(self, program: Program) -> Score:
        return self._to_score(score_encoded(encode(program), self.search))

    def _to_score(self, stats: RAW_STATS) -> Score:
        m, total, worst, nonfinite, exact, over_one = stats
        n = self.search.size
        mean = math.inf if nonfinite else float(total) / n
        worst_x = float(self.search.x[worst]) if worst >= 0 else math.nan
        return Score(float(m), mean, worst_x, n, int(nonfinite), int(exact), int(over_one), self.search.metric, self.search.label)

    def run(self, job: Job) -> EvalResult:
        start = time.perf_counter()
        program, stats, evals = job.program, score_encoded(encode(job.program), self.search), 1
        if job.fit and self.fit_enabled and program.constants():
            fitted, fitted_stats, fit_evals = self._fit(program)
            evals += fit_evals
            if fitted is not None and _better(fitted_stats, stats):
                program, stats = fitted, fitted_stats
        elapsed = (time.perf_counter() - start) * 1e3
        return EvalResult(job.child_id, program, self._to_score(stats), evals, elapsed)

    def _fit(self, program: Program) -> tuple[Program | None, RAW_STATS | None, int]:
        free = encode(program, share_constants=False)
        start = np.asarray(free.consts, dtype=np.float64)
        constants, model_error, evals = minimax_fit(
            free.opcodes, free.args, start, free.out, self._fit_x, self._fit_hi, self._fit_lo, self._fit_inv,
            self.settings.iterations,
        )
        if not math.isfinite(model_error):
            return None, None, evals
        fmt = get_format(program.dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            rounded = constants.astype(fmt.dtype)
        if not np.all(np.isfinite(rounded)):
            return None, None, evals
        data = self.search
        if fmt.width == 32 and self.settings.polish_budget > 0 and self._rounded_error(free, rounded) <= self.settings.polish_below:
            rounded, _, _, polish_evals = polish(
                free.opcodes, free.args, rounded, free.out, data.x, data.ref_hi, data.ref_lo, data.inv_scale,
                data.rounded, self.settings.polish_budget,
            )
            evals += polish_evals
        fitted = program.pruned().with_constants([float_to_bits(float(v), fmt) for v in rounded])
        stats = score_encoded(encode(fitted), data)
        return fitted, stats, evals + 1


    def _rounded_error(self, free, constants: np.ndarray) -> float:
        data = self.search
        stats = score_kernel(free.opcodes, free.args, constants, free.out, data.x, data.ref_hi, data.ref_lo, data.inv_scale, data.rounded)
        return float(stats[0])


def _better(a: RAW_STATS, b: RAW_STATS) -> bool:
    """Lower max error, then lower mean error (NaN-safe: NaN is never better)."""
    am, bm = float(a[0]), float(b[0])
    if am != bm:
        return am < bm or (math.isnan(bm) and not math.isnan(am))
    return float(a[1]) < float(b[1])
