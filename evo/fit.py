"""Constant fitting: a float64 minimax fit of a program's constants, then a float32 polish.

1. ``minimax_fit``: Levenberg-Marquardt steps on a weighted least-squares problem whose weights
   follow Lawson's rule (w_i <- w_i |r_i|), which drives the weighted L2 fit towards the minimax
   (smallest max error) solution. Residuals are the errors in the run's unit (ULPs against
   ulp32(RN32(f)), or relative), computed from a float64 evaluation with exact forward-mode
   derivatives (``primitives.gradient``). This is the smooth surrogate of the true objective.
2. Round the constants to the program's format.
3. ``polish``: coordinate search over neighbouring floats of each constant (±1, ±2, ±4, ... ordinal
   steps) on the true objective, the float32 max error on the search points, with the mean error as
   tie-break; it stops when a full pass finds nothing better or the evaluation budget is spent.

Everything runs inside numba (no Python per iteration), so a fit costs about a millisecond.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from primitives.gradient import value_and_jacobian
from primitives.interp import score_kernel

_KERNEL = {"nogil": True, "error_model": "numpy", "cache": True}


@dataclass(frozen=True, slots=True)
class FitSettings:
    """Knobs of the fit (all have sensible defaults; see ``RunConfig``)."""

    iterations: int = 40
    fit_points: int = 512
    polish_budget: int = 96
    polish_below: float = 16.0  # polish only programs this close (ULPs): it refines, it cannot rescue


@njit(**_KERNEL)
def _residuals(opcodes, args, consts, out, x, hi, lo, inv, y, jac, r):
    value_and_jacobian(opcodes, args, consts, out, x, y, jac)
    ok = True
    for j in range(x.shape[0]):
        r[j] = ((y[j] - hi[j]) - lo[j]) * inv[j]
        if not (abs(r[j]) < np.inf):
            ok = False
        for k in range(consts.shape[0]):
            jac[j, k] *= inv[j]
            if not (abs(jac[j, k]) < np.inf):
                ok = False
    return ok


@njit(**_KERNEL)
def _solve(a, b):
    """Solve a x = b by Gaussian elimination with partial pivoting; (x, False) if singular."""
    n = b.shape[0]
    m = a.copy()
    x = b.copy()
    for col in range(n):
        pivot = col
        for row in range(col + 1, n):
            if abs(m[row, col]) > abs(m[pivot, col]):
                pivot = row
        if not (abs(m[pivot, col]) > np.float64(0)) or not (abs(m[pivot, col]) < np.inf):
            return x, False
        if pivot != col:
            for k in range(n):
                m[col, k], m[pivot, k] = m[pivot, k], m[col, k]
            x[col], x[pivot] = x[pivot], x[col]
        for row in range(col + 1, n):
            factor = m[row, col] / m[col, col]
            for k in range(col, n):
                m[row, k] -= factor * m[col, k]
            x[row] -= factor * x[col]
    for col in range(n - 1, -1, -1):
        total = x[col]
        for k in range(col + 1, n):
            total -= m[col, k] * x[k]
        x[col] = total / m[col, col]
    for k in range(n):
        if not (abs(x[k]) < np.inf):
            return x, False
    return x, True


@njit(**_KERNEL)
def _normal_equations(jac, r, w):
    n, k = jac.shape
    a = np.zeros((k, k), np.float64)
    g = np.zeros(k, np.float64)
    s = np.float64(0)
    for j in range(n):
        wj = w[j]
        s += wj * r[j] * r[j]
        for p in range(k):
            g[p] += wj * jac[j, p] * r[j]
            for q in range(p + 1):
                a[p, q] += wj * jac[j, p] * jac[j, q]
    for p in range(k):
        for q in range(p):
            a[q, p] = a[p, q]
    return a, g, s


@njit(**_KERNEL)
def minimax_fit(opcodes, args, consts0, out, x, hi, lo, inv, iterations):
    """Fit float64 constants; returns (constants, max |error| of the float64 model, evaluations).

    Phase 1 is a plain least-squares fit (uniform weights) that finds the basin; phase 2 switches
    on Lawson's weights to move from the L2 to the minimax solution. Each phase runs at most
    ``iterations`` Levenberg-Marquardt steps; phase 2 stops once the max error stalls.
    """
    n = x.shape[0]
    k = consts0.shape[0]
    y = np.empty(n, np.float64)
    jac = np.empty((n, k), np.float64)
    r = np.empty(n, np.float64)
    y_try = np.empty(n, np.float64)
    jac_try = np.empty((n, k), np.float64)
    r_try = np.empty(n, np.float64)
    c = consts0.copy()
    evaluations = 1
    if not _residuals(opcodes, args, c, out, x, hi, lo, inv, y, jac, r):
        return c, np.float64(np.inf), evaluations
    w = np.full(n, np.float64(1) / n)
    best_c = c.copy()
    best = np.max(np.abs(r))
    lam = np.float64(1e-3)
    stall = 0
    lawson = False
    steps = 0
    while True:
        if steps >= iterations:
            if lawson:
                break
            lawson = True
            steps = 0
        steps += 1
        a, g, s = _normal_equations(jac, r, w)
        accepted = False
        s_try = s
        for _attempt in range(12):
            m = a.copy()
            for p in range(k):
                m[p, p] += lam * (a[p, p] + np.float64(1e-300))
            delta, solved = _solve(m, -g)
            if solved:
                c_try = c + delta
                evaluations += 1
                if _residuals(opcodes, args, c_try, out, x, hi, lo, inv, y_try, jac_try, r_try):
                    s_try = np.float64(0)
                    for j in range(n):
                        s_try += w[j] * r_try[j] * r_try[j]
                    if s_try < s:
                        accepted = True
                        lam = max(lam / np.float64(3), np.float64(1e-15))
                        break
            lam *= np.float64(8)
        if not accepted:
            if lawson:
                break
            lawson = True  # least squares has converged as far as it can: go for the minimax
            steps = 0
            continue
        c = c_try
        r[:] = r_try
        jac[:, :] = jac_try
        current = np.max(np.abs(r))
        if current < best:
            best = current
            best_c[:] = c
        if not lawson:
            if s - s_try <= np.float64(1e-9) * s:
                lawson = True
                steps = 0
            continue
        if current < best * np.float64(0.999) or current <= best:
            stall = 0 if current < best * np.float64(0.999) else stall + 1
        else:
            stall += 1
        if stall >= 6:
            break
        total = np.float64(0)  # Lawson's update pulls the weighted L2 fit towards the minimax fit
        for j in range(n):
            w[j] = w[j] * abs(r[j]) + np.float64(1e-300)
            total += w[j]
        for j in range(n):
            w[j] /= total
    return best_c, best, evaluations


@njit(**_KERNEL)
def _step_float32(value, steps):
    """The float32 ``steps`` ordinals away from ``value`` (-0 and +0 share ordinal 0)."""
    cell = np.empty(1, np.float32)
    cell[0] = value
    bits = cell.view(np.uint32)
    magnitude = np.int64(bits[0] & np.uint32(0x7FFFFFFF))
    o = -magnitude if bits[0] & np.uint32(0x80000000) else magnitude
    o += steps
    bits[0] = np.uint32(o) if o >= 0 else (np.uint32(0x80000000) | np.uint32(-o))
    return cell[0]


@njit(**_KERNEL)
def polish(opcodes, args, consts, out, x, hi, lo, inv, rounded, budget):
    """Ordinal coordinate search on (max error, mean error); returns (constants, max, mean, evals)."""
    c = consts.copy()
    m, total, _, _, _, _ = score_kernel(opcodes, args, c, out, x, hi, lo, inv, rounded)
    mean = total / x.shape[0]
    evaluations = 1
    steps = np.array([1, -1, 2, -2, 4, -4, 8, -8, 16, -16], np.int64)
    improved = True
    while improved and evaluations < budget:
        improved = False
        for k in range(c.shape[0]):
            for step in steps:
                if evaluations >= budget:
                    break
                trial = c.copy()
                trial[k] = _step_float32(c[k], step)
                tm, tt, _, _, _, _ = score_kernel(opcodes, args, trial, out, x, hi, lo, inv, rounded)
                evaluations += 1
                t_mean = tt / x.shape[0]
                if tm < m or (tm == m and t_mean < mean):
                    c = trial
                    m = tm
                    mean = t_mean
                    improved = True
                    break
    return c, m, mean, evaluations
