"""Parent selection across cost: NSGA-II ranks and crowding over (error, cost), and cost niches.

Three tournament modes share one contract (``evo.population.Population.tournament``): a winner is
a member of the population, the draw uses only the run's seeded RNG, and ``--max-ops`` stays a
hard bound (it is enforced on children, not here).

  error   the single-objective tournament: the best fitness key of ``size`` random members.
  nsga    the same draw, the winner by NSGA-II order over the whole population: lowest
          non-domination rank over (search max error, cost), then the largest crowding distance,
          then the fitness key. Small programs on the front survive because nothing dominates them.
  niches  (the default) first a cost niche (one distinct cost, uniformly among those present), then the best
          fitness key of ``size`` random members of that niche: every cost keeps its own elite.

With a target error E, errors are clipped at E before ranking, so that programs within the
target are told apart by cost alone ("reach the accuracy, then be cheap"), and niches costlier
than the cheapest program already within E are not drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

SELECTIONS = ("error", "nsga", "niches")
DEFAULT_SELECTION = "niches"  # the winner of bench/vs_classical.py --selection error nsga niches

# errors below this are clipped before taking logs (ULP errors of exact programs are 0)
_ERROR_FLOOR = 2.0**-40


def objective_points(
    errors: Sequence[float], costs: Sequence[float], target_error: float | None
) -> np.ndarray:
    """(n, 2) minimisation objectives: log2 of the error (NaN counts as inf; clipped at the target), cost.

    The log does not change who dominates whom; it makes crowding distances compare error ratios,
    since errors span many decades along one front.
    """
    err = np.asarray(errors, dtype=np.float64).copy()
    err[np.isnan(err)] = math.inf
    floor = _ERROR_FLOOR if target_error is None else max(_ERROR_FLOOR, float(target_error))
    err = np.log2(np.maximum(err, floor))
    return np.column_stack([err, np.asarray(costs, dtype=np.float64)])


def non_dominated_ranks(points: np.ndarray) -> np.ndarray:
    """Front index of every point (0 = non-dominated), by repeated peeling (NSGA-II's sort).

    ``p`` dominates ``q`` when it is no worse in every objective and better in one; equal points
    do not dominate each other and share a rank.
    """
    points = np.asarray(points, dtype=np.float64)
    n = len(points)
    ranks = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return ranks
    no_worse = np.all(points[:, None, :] <= points[None, :, :], axis=2)
    better = np.any(points[:, None, :] < points[None, :, :], axis=2)
    dominates = no_worse & better  # dominates[i, j]: i dominates j
    remaining = np.ones(n, dtype=bool)
    rank = 0
    while remaining.any():
        dominated = (dominates & remaining[:, None]).any(axis=0)
        current = remaining & ~dominated
        ranks[current] = rank
        remaining &= ~current
        rank += 1
    return ranks


def crowding_distances(points: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of every point within its own front.

    Per objective the front is sorted; its two ends get infinity and an interior point the gap
    between its neighbours over the front's span. Objectives with no finite span add nothing.
    Ties in the sort are broken by position, so the result is deterministic.
    """
    points = np.asarray(points, dtype=np.float64)
    distance = np.zeros(len(points), dtype=np.float64)
    for rank in np.unique(ranks):
        members = np.flatnonzero(ranks == rank)
        if len(members) <= 2:
            distance[members] = math.inf
            continue
        for k in range(points.shape[1]):
            values = points[members, k]
            order = members[np.argsort(values, kind="stable")]
            sorted_values = points[order, k]
            distance[order[0]] = distance[order[-1]] = math.inf
            finite = sorted_values[np.isfinite(sorted_values)]
            span = finite[-1] - finite[0] if len(finite) >= 2 else 0.0
            if span <= 0:
                continue
            with np.errstate(invalid="ignore"):
                gaps = (sorted_values[2:] - sorted_values[:-2]) / span
            distance[order[1:-1]] += np.where(np.isfinite(gaps), gaps, 0.0)
    return distance


def nsga_order(
    errors: Sequence[float], costs: Sequence[float], target_error: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """(rank, crowding distance) of every member; a lower rank, then a larger distance, is better."""
    points = objective_points(errors, costs, target_error)
    ranks = non_dominated_ranks(points)
    return ranks, crowding_distances(points, ranks)


def drawable_niches(
    errors: Sequence[float], costs: Sequence[float], target_error: float | None
) -> list[float]:
    """The distinct costs a niche tournament may draw, ascending.

    With a target, costs above the cheapest member already within it are left out: a costlier
    niche cannot give a better answer to "the fewest ops within the target".
    """
    niches = sorted(set(float(c) for c in costs))
    if target_error is not None:
        within = [float(c) for c, e in zip(costs, errors, strict=True) if e <= target_error]
        if within:
            cheapest = min(within)
            niches = [c for c in niches if c <= cheapest]
    return niches
