"""Making and evaluating one child: mutate the parent, fit the constants, polish them in float32,
score the child on the search set.

Two caches skip work: one keyed by the child itself, and (opt-in, ``equivalence=True``) a
functional-equivalence cache keyed by the child's output bits at a few fixed probe points (with its
op count and constant count, so a child that adds a neutral instruction, e.g. ``t * 1``, still gets
its extra freedom fitted). Both keys are taken on the child before fitting and map to the fitted
result; a hit is reported as ``cached``. Equivalence hits depend on what was evaluated before, so
they are off unless a caller accepts runs that do not replay bit for bit on resume. The fit's
subsample of the search set always includes the hard points mined into it.

``Evaluator`` is what a worker holds. It is pure apart from its read-only datasets and a cache: the
same job always gives the same result, because the child's mutation uses an RNG seeded only from
the run seed and the child id. That is what makes caching, resuming and distributed evaluation
safe, and it lets workers do all the per-child work while the driver only runs tournaments.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from evo.compensated import frozen_slots
from evo.escalate import escalated_fit, niche_bests, should_escalate
from evo.fit import FitData, FitSettings, fit_constants, fit_data, polish
from evo.mutate import FIT_KINDS, SearchSpace, mutate
from primitives.encode import encode
from primitives.floatbits import float_to_bits, get_format
from primitives.interp import evaluate_kernel, score_kernel
from primitives.program import Program
from targets.dataset import Dataset
from targets.scoring import Score, score_encoded

# children whose structure is new: their fit also tries broad starts (FitSettings.explore_starts)
EXPLORE_KINDS = frozenset(
    {"insert", "remove", "rewire", "change_op", "reciprocal", "fraction", "square", "level", "seed"}
)

# children that gained a continued-fraction level: their fit also scans the joint scale (fit.scale_scan)
SCALE_KINDS = frozenset({"level"})

RAW_STATS = tuple  # (max, sum, worst index, nonfinite, exact, over_one) from the scoring kernel
PROBE_POINTS = 16


def child_rng(seed: int, child_id: int) -> np.random.Generator:
    """The RNG of one child's mutation: a function of (seed, child id) only."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(1, child_id))))


__all__ = ["EvalResult", "Evaluator", "Job", "Lost", "child_rng", "niche_bests"]


@dataclass(frozen=True, slots=True)
class Job:
    """One child to make: mutate ``program`` (the parent) or, for a seed, evaluate it as it is.
    ``niche`` holds the front's niche bests when the job was handed out (``niche_bests``): what
    decides whether the child's fit is escalated (empty: never)."""

    child_id: int
    program: Program
    mutate: bool
    niche: tuple[float, ...] = ()

    def __reduce__(self):
        return (Job, (self.child_id, self.program, self.mutate, self.niche))


@dataclass(frozen=True, slots=True)
class EvalResult:
    """What came back: the child (constants after fitting), how it was made, and its score."""

    child_id: int
    program: Program
    mutation: str
    score: Score
    search_digest: str
    fit_evals: int
    eval_ms: float
    cached: bool = False
    worker: int = 0
    escalate_ms: float = 0.0  # the part of eval_ms spent in an escalated fit (0: not escalated)

    def timing(self) -> dict:
        """The timing fields of an ``Eval`` event."""
        return {
            "eval_ms": round(self.eval_ms, 3),
            "cached": self.cached,
            "worker": self.worker,
            "escalate_ms": round(self.escalate_ms, 3),
        }

    def __reduce__(self):
        return (
            EvalResult,
            (
                self.child_id,
                self.program,
                self.mutation,
                self.score,
                self.search_digest,
                self.fit_evals,
                self.eval_ms,
                self.cached,
                self.worker,
                self.escalate_ms,
            ),
        )


@dataclass(frozen=True, slots=True)
class Lost:
    """A job that could not be evaluated (its worker died twice); the child id stays unused."""

    child_id: int


class Evaluator:
    """Makes children (mutation) and scores them on the search set, fitting constants first."""

    def __init__(
        self,
        search: Dataset,
        settings: FitSettings,
        fit_enabled: bool = True,
        space: SearchSpace | None = None,
        seed: int = 0,
        cache_size: int = 0,
        worker: int = 0,
        base_x: np.ndarray | None = None,
        equivalence: bool = False,
    ) -> None:
        self.search = search
        self.settings = settings
        self.fit_enabled = fit_enabled
        self.space = space
        self.seed = seed
        self.cache_size = cache_size
        self.worker = worker
        # the search set this evaluator chain started from: points beyond it are mined hard points
        self._base_x = search.x if base_x is None else base_x
        # off by default: a hit returns the first-seen equivalent's fitted program, so results
        # depend on cache history and a resumed or distributed run no longer replays bit for bit
        self.equivalence = equivalence
        self._cache: OrderedDict[tuple, tuple[Program, RAW_STATS, int]] = OrderedDict()
        self.lookups = 0
        self.hits = 0
        self.equivalence_hits = 0
        self.escalations = 0  # escalated fits run (not counting cache hits), and their time
        self.escalate_ms = 0.0
        self._probe_x = np.ascontiguousarray(
            self._base_x[np.linspace(0, self._base_x.shape[0] - 1, PROBE_POINTS).astype(np.int64)]
        )
        step = max(1, search.size // settings.fit_points)
        hard = np.flatnonzero(~np.isin(search.x, self._base_x))
        index = np.unique(np.concatenate([np.arange(0, search.size, step), [search.size - 1], hard]))
        self._fit = fit_data(
            search.x[index], search.ref_hi[index], search.ref_lo[index], search.inv_scale[index]
        )
        # the escalated fit evaluates a real-number program in double-double (far below float64 rounding)
        self._fit_escalated = FitData(*(getattr(self._fit, a) for a in ("x", "hi", "lo", "inv")), True)

    def with_search(self, search: Dataset) -> Evaluator:
        """The same evaluator on another search set (with an empty cache)."""
        return Evaluator(
            search,
            self.settings,
            self.fit_enabled,
            self.space,
            self.seed,
            self.cache_size,
            self.worker,
            self._base_x,
            self.equivalence,
        )

    @property
    def fit_x(self) -> np.ndarray:
        """The points the fit sees (a subsample of the search set plus every mined hard point)."""
        return self._fit.x

    @property
    def hit_rate(self) -> float:
        """Fraction of children answered from a cache (structural or functional-equivalence)."""
        return self.hits / self.lookups if self.lookups else 0.0

    def score_program(self, program: Program) -> Score:
        return self._to_score(score_encoded(encode(program), self.search))

    def _to_score(self, stats: RAW_STATS) -> Score:
        m, total, worst, nonfinite, exact, over_one = stats
        n = self.search.size
        mean = math.inf if nonfinite else float(total) / n
        worst_x = float(self.search.x[worst]) if worst >= 0 else math.nan
        return Score(
            float(m),
            mean,
            worst_x,
            n,
            int(nonfinite),
            int(exact),
            int(over_one),
            self.search.metric,
            self.search.label,
        )

    def run(self, job: Job) -> EvalResult:
        start = time.perf_counter()
        if job.mutate:
            if self.space is None:
                raise ValueError("this evaluator has no search space: it cannot mutate")
            child, kind = mutate(job.program, child_rng(self.seed, job.child_id), self.space)
        else:
            child, kind = job.program, "seed"
        fit = kind in FIT_KINDS and self.fit_enabled
        explore = fit and kind in EXPLORE_KINDS and self.settings.explore_starts > 0
        if fit and kind in SCALE_KINDS:
            explore = "scale"  # also scan the joint scale of the large constants (a cache-key value)
        program, stats, evals, hit = self._cached_evaluate(child, fit, explore)
        escalate_ms = 0.0
        if fit and kind in EXPLORE_KINDS and self._escalates(stats, program, job.niche):
            begun = time.perf_counter()
            program, stats, more, _ = self._cached_escalate(program, stats)
            evals += more
            escalate_ms = (time.perf_counter() - begun) * 1e3
        elapsed = (time.perf_counter() - start) * 1e3
        return EvalResult(
            # a cache hit reports the evaluations its result cost, so events do not depend on cache state
            job.child_id,
            program,
            kind,
            self._to_score(stats),
            self.search.digest,
            evals,
            elapsed,
            hit,
            self.worker,
            escalate_ms,
        )

    def _escalates(self, stats: RAW_STATS, program: Program, niche: tuple[float, ...]) -> bool:
        factor = self.settings.escalate
        return bool(program.constants()) and should_escalate(
            float(stats[0]), program.op_count(), niche, factor
        )

    def _cached_escalate(self, program: Program, stats: RAW_STATS) -> tuple[Program, RAW_STATS, int, bool]:
        """The escalated fit of a fitted child, cached by that child (a function of it alone)."""
        key = ("escalated", program)
        found = self._cache.get(key) if self.cache_size else None
        if found is not None:
            self._cache.move_to_end(key)
            return (*found, True)
        begun = time.perf_counter()
        self.escalations += 1
        fitted, fitted_stats, evals = self._fit_program(program, escalate=True)
        self.escalate_ms += (time.perf_counter() - begun) * 1e3
        result = (
            (fitted, fitted_stats, evals) if fitted is not None and _better(fitted_stats, stats) else None
        )
        result = result or (program, stats, evals)
        if self.cache_size:
            self._cache[key] = result
        return (*result, False)

    def _cached_evaluate(
        self, child: Program, fit: bool, explore: bool = False
    ) -> tuple[Program, RAW_STATS, int, bool]:
        if not self.cache_size:
            return (*self._evaluate(child, fit, explore), False)
        self.lookups += 1
        keys: tuple = ((child, fit, explore),)
        if self.equivalence:
            keys = (*keys, self._equivalence_key(child, fit, explore))
        for number, key in enumerate(keys):
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                self.hits += 1
                self.equivalence_hits += number
                return (*found, True)
        result = self._evaluate(child, fit, explore)
        for key in keys:
            self._cache[key] = result
        while len(self._cache) > 2 * self.cache_size:
            self._cache.popitem(last=False)
        return (*result, False)

    def _equivalence_key(self, child: Program, fit: bool, explore: bool = False) -> tuple:
        """The child's output bits at the probe points, with what a fit could change about it."""
        encoded = encode(child)
        x = self._probe_x.astype(encoded.consts.dtype)
        y = np.empty_like(x)
        evaluate_kernel(encoded.opcodes, encoded.args, encoded.consts, encoded.out, x, y)
        return (
            "equivalent",
            y.tobytes(),
            child.dtype,
            fit,
            explore,
            child.op_count() if fit else 0,
            len(child.constants()) if fit else 0,
        )

    def _evaluate(self, child: Program, fit: bool, explore: bool = False) -> tuple[Program, RAW_STATS, int]:
        program, stats, evals = child, score_encoded(encode(child), self.search), 1
        if fit and program.constants():
            fitted, fitted_stats, fit_evals = self._fit_program(program, explore)
            evals += fit_evals
            if fitted is not None and _better(fitted_stats, stats):
                program, stats = fitted, fitted_stats
        return program, stats, evals

    def _fit_program(
        self, program: Program, explore: bool = False, escalate: bool = False
    ) -> tuple[Program | None, RAW_STATS | None, int]:
        free = encode(program, share_constants=False)
        start = np.asarray(free.consts, dtype=np.float64)
        if escalate:
            data = self._fit_escalated if program.dtype == "float64" else self._fit
            result = escalated_fit(free, start, data, self.settings, self.seed)
        else:
            result = fit_constants(
                free, start, self._fit, self.settings, bool(explore), scale=explore == "scale"
            )
        evals = result.evaluations
        if not np.isfinite(result.max_error):
            return None, None, evals
        constants = result.constants
        frozen = frozen_slots(program.pruned())
        if frozen:  # error-free-transformation constants cancel in float64: the fit cannot place them
            constants = constants.copy()
            constants[list(frozen)] = start[list(frozen)]
        fmt = get_format(program.dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            rounded = constants.astype(fmt.dtype)
        if not np.all(np.isfinite(rounded)):
            return None, None, evals
        data = self.search
        if (
            fmt.width == 32
            and self.settings.polish_budget > 0
            and self._rounded_error(free, rounded) <= self.settings.polish_below
        ):
            rounded, _, _, polish_evals = polish(
                free.opcodes,
                free.args,
                rounded,
                free.out,
                data.x,
                data.ref_hi,
                data.ref_lo,
                data.inv_scale,
                data.rounded,
                self.settings.polish_budget,
                frozen,
            )
            evals += polish_evals
        fitted = program.pruned().with_constants([float_to_bits(float(v), fmt) for v in rounded])
        stats = score_encoded(encode(fitted), data)
        return fitted, stats, evals + 1

    def _rounded_error(self, free, constants: np.ndarray) -> float:
        data = self.search
        stats = score_kernel(
            free.opcodes,
            free.args,
            constants,
            free.out,
            data.x,
            data.ref_hi,
            data.ref_lo,
            data.inv_scale,
            data.rounded,
        )
        return float(stats[0])


def _better(a: RAW_STATS, b: RAW_STATS) -> bool:
    """Lower max error, then lower mean error (NaN-safe: NaN is never better)."""
    am, bm = float(a[0]), float(b[0])
    if am != bm:
        return am < bm or (math.isnan(bm) and not math.isnan(am))
    return float(a[1]) < float(b[1])
