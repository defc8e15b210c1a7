"""Fit escalation: which children are promising enough for the thorough fit, and that fit.

The per-child fit is cheap (tens of milliseconds) and stops short in curved valleys; the
thorough fit (``fit_thorough``: long Levenberg-Marquardt phases, restarts, exchange steps and the
valley search, with double-double residuals) costs about a hundred times more. A structurally new
child gets it when its per-child-fit error is within ``factor`` of what it would have to beat to
enter the front: the best search error on the front among programs with at most its op count
(its cost niche). The front's niche bests travel with the job (``niche_bests``), so the decision
is a function of the job and the child alone: deterministic, cache-safe and the same on any worker.
"""

from __future__ import annotations

import math

import numpy as np

from evo.fit import FitData, FitResult, FitSettings, fit_thorough


def niche_bests(front) -> tuple[float, ...]:
    """Entry i: the smallest error a child with i ops must beat to enter ``front`` (inf: any).

    The error is each entry's ``gate_error`` (its search error, or its final error once signed
    off), taken as a running minimum over op counts; the tuple ends at the front's largest op count
    (larger children compare with its last entry)."""
    entries = [(e.individual.program.op_count(), e.gate_error) for e in front.entries]
    if not entries:
        return ()
    size = max(ops for ops, _ in entries) + 1
    best = [math.inf] * size
    for ops, error in entries:
        best[ops] = min(best[ops], error)
    for i in range(1, size):
        best[i] = min(best[i], best[i - 1])
    return tuple(best)


def should_escalate(error: float, ops: int, niche: tuple[float, ...], factor: float) -> bool:
    """True when ``error`` is finite and within ``factor`` of the niche best of ``ops`` ops (an
    empty niche, no front information, or ``factor`` <= 0 never escalates)."""
    if factor <= 0 or not niche or not math.isfinite(error):
        return False
    bar = niche[min(ops, len(niche) - 1)]
    return error <= factor * bar if math.isfinite(bar) else True


def escalated_fit(free, start: np.ndarray, data: FitData, settings: FitSettings, seed: int) -> FitResult:
    """The thorough fit with a bounded budget (``settings.escalate_restarts`` restarts, no CMA-ES,
    no valley walk: that one costs minutes, and ``settings.escalate_valley_probes`` valley probes),
    started from the per-child fit's constants; seeded by ``seed`` and the start (no clock)."""
    return fit_thorough(
        free,
        start,
        data,
        settings,
        restarts=settings.escalate_restarts,
        use_cma=False,
        seed=seed,
        walk_steps=0,
        valley_probes=settings.escalate_valley_probes,
    )
