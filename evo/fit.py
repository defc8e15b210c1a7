"""Constant fitting: a float64 minimax fit of a program's constants, then a float32 polish.

1. ``minimax_fit``: Levenberg-Marquardt steps on a weighted least-squares problem whose weights
   follow Lawson's rule (w_i <- w_i |r_i|), which drives the weighted L2 fit towards the minimax
   (smallest max error) solution. Residuals are the errors in the run's unit (ULPs against
   ulp32(RN32(f)), or relative), computed from a float64 evaluation with exact forward-mode
   derivatives (``primitives.gradient``) against the double-double reference (``hi + lo``), so
   the residual keeps its accuracy far below float64 rounding of f. Each step is solved by QR on
   Jacobian columns scaled to unit norm (Marquardt's diagonal scaling), so constants of very
   different magnitudes (1 next to 1e4) are as easy to move as each other, and the least-squares
   problem is never squared into normal equations.
   Points where an intermediate is non-finite but the output is finite (``c/x`` at x = 0 feeding
   a reciprocal) stay in the fit; their non-finite Jacobian entries are taken in the limit (0: the
   output no longer depends on that constant there). Points whose output is non-finite are left
   out of the step, and a step may not add new ones.
2. ``fit_constants``: when Levenberg-Marquardt stalls (no step accepted, or nothing gained), it is
   restarted from jittered copies of the start (seeded by the start itself: deterministic).
   ``fit_thorough`` (for ``evo fit`` and benchmarks, not for every child) adds more restarts and a
   CMA-ES search in relative steps on the true max error, each result re-polished by Levenberg-Marquardt.
3. Round the constants to the program's format.
4. ``polish``: coordinate search over neighbouring floats of each constant (±1, ±2, ±4, ... ordinal
   steps) on the true objective, the float32 max error on the search points, with the mean error as
   tie-break; it stops when a full pass finds nothing better or the evaluation budget is spent.

The inner loops run inside numba (no Python per iteration), so a fit costs about a millisecond.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from numba import njit

from primitives.gradient import value_and_jacobian, value_double_double
from primitives.interp import score_kernel

_KERNEL = {"nogil": True, "error_model": "numpy", "cache": True}


@dataclass(frozen=True, slots=True)
class FitSettings:
    """Knobs of the fit (all have sensible defaults; see ``RunConfig``)."""

    iterations: int = 40
    patience: int = 6  # minimax steps without a 0.1% gain before a fit stops
    fit_points: int = 512
    polish_budget: int = 96
    polish_below: float = 16.0  # polish only programs this close (ULPs): it refines, it cannot rescue
    restarts: int = 2  # jittered restarts, only when Levenberg-Marquardt stalls
    # extra starts for a structurally new child (``fit_constants(..., explore=True)``): constants
    # redrawn with random signs and magnitudes, so a fit can land in another basin (a pole moved
    # across the domain); 0 keeps one start
    explore_starts: int = 0
    # fit escalation (``evo.escalate``): a structurally new child whose fitted error is within this
    # factor of its cost niche's best on the front gets the thorough fit; 0 turns it off
    escalate: float = 0.0
    escalate_restarts: int = 2
    # probes of the valley search in an escalated fit (each is 30 double-double exchange steps: the
    # bulk of its cost); 16 keeps what 40 finds on f10-type children at a third of the time
    escalate_valley_probes: int = 16


@dataclass(frozen=True, slots=True)
class FitData:
    """The points a fit sees: x with the double-double reference and the inverse error unit;
    ``precise`` (the real-number setting) evaluates the program in double-double for the residuals."""

    x: np.ndarray
    hi: np.ndarray
    lo: np.ndarray
    inv: np.ndarray
    precise: bool = False

    @property
    def size(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True, slots=True)
class FitResult:
    """The fitted float64 constants, the model's max error on the finite outputs, its count of
    non-finite outputs, the evaluations spent and the Levenberg-Marquardt steps accepted."""

    constants: np.ndarray
    max_error: float
    n_bad: int
    evaluations: int
    steps: int

    def better_than(self, other: FitResult) -> bool:
        return (self.n_bad, self.max_error) < (other.n_bad, other.max_error)


@njit(**_KERNEL)
def _residuals(opcodes, args, consts, out, x, hi, lo, inv, y, jac, r, y_lo, precise):
    """Residuals and their Jacobian; returns how many outputs were non-finite (left out: r = 0).
    With ``precise``, the residuals come from the double-double value of the program."""
    value_and_jacobian(opcodes, args, consts, out, x, y, jac)
    if precise:
        value_double_double(opcodes, args, consts, out, x, y, y_lo)
    bad = 0
    for j in range(x.shape[0]):
        if precise:
            r[j] = ((y[j] - hi[j]) + (y_lo[j] - lo[j])) * inv[j]
        else:
            r[j] = ((y[j] - hi[j]) - lo[j]) * inv[j]
        if not (abs(r[j]) < np.inf):
            bad += 1
            r[j] = np.float64(0)
            for k in range(consts.shape[0]):
                jac[j, k] = np.float64(0)
            continue
        for k in range(consts.shape[0]):
            jac[j, k] *= inv[j]
            if not (abs(jac[j, k]) < np.inf):
                jac[j, k] = np.float64(0)  # the limit: a finite output no longer depends on c_k here
    return bad


@njit(**_KERNEL)
def _householder(a, b):
    """In place: the top rows of ``a`` (m x k) become R of a = QR, and b becomes Q^T b."""
    m, k = a.shape
    for col in range(k):
        norm2 = np.float64(0)
        for i in range(col, m):
            norm2 += a[i, col] * a[i, col]
        if not (norm2 > np.float64(0)):
            continue
        norm = np.sqrt(norm2)
        alpha = -norm if a[col, col] >= 0 else norm
        head = a[col, col]
        a[col, col] = head - alpha  # the column from the diagonal down is now the Householder vector v
        vnorm2 = norm2 - head * head + a[col, col] * a[col, col]
        for p in range(col + 1, k):
            dot = np.float64(0)
            for i in range(col, m):
                dot += a[i, col] * a[i, p]
            f = 2 * dot / vnorm2
            for i in range(col, m):
                a[i, p] -= f * a[i, col]
        dot = np.float64(0)
        for i in range(col, m):
            dot += a[i, col] * b[i]
        f = 2 * dot / vnorm2
        for i in range(col, m):
            b[i] -= f * a[i, col]
        a[col, col] = alpha
        for i in range(col + 1, m):
            a[i, col] = np.float64(0)


@njit(**_KERNEL)
def _damped_step(rr, qtb, lam):
    """Solve min |[R; sqrt(lam) I] z - [Q^T b; 0]| (the Levenberg-Marquardt step); (z, solved)."""
    k = qtb.shape[0]
    m = np.zeros((2 * k, k), np.float64)
    rhs = np.zeros(2 * k, np.float64)
    root = np.sqrt(lam)
    for p in range(k):
        for q in range(k):
            m[p, q] = rr[p, q]
        m[k + p, p] = root
        rhs[p] = qtb[p]
    _householder(m, rhs)
    z = np.zeros(k, np.float64)
    for p in range(k - 1, -1, -1):
        total = rhs[p]
        for q in range(p + 1, k):
            total -= m[p, q] * z[q]
        if not (abs(m[p, p]) > np.float64(0)):
            return z, False
        z[p] = total / m[p, p]
        if not (abs(z[p]) < np.inf):
            return z, False
    return z, True


@njit(**_KERNEL)
def _step_system(jac, r, w):
    """R and Q^T b of the scaled weighted system sqrt(w) J D^-1 z = -sqrt(w) r, and the scales D."""
    n, k = jac.shape
    scale = np.ones(k, np.float64)
    for p in range(k):
        total = np.float64(0)
        for j in range(n):
            total += w[j] * jac[j, p] * jac[j, p]
        if total > np.float64(0) and total < np.inf:
            scale[p] = np.sqrt(total)
    a = np.empty((n, k), np.float64)
    b = np.empty(n, np.float64)
    for j in range(n):
        root = np.sqrt(w[j])
        b[j] = -root * r[j]
        for p in range(k):
            a[j, p] = root * jac[j, p] / scale[p]
    _householder(a, b)
    return a[:k, :].copy(), b[:k].copy(), scale


@njit(**_KERNEL)
def _weighted_sum(w, r):
    s = np.float64(0)
    for j in range(r.shape[0]):
        s += w[j] * r[j] * r[j]
    return s


@njit(**_KERNEL)
def _lawson_update(w, r):
    """Lawson's rule w <- w |r| (normalised): it pulls the weighted L2 fit towards the minimax fit."""
    total = np.float64(0)
    for j in range(r.shape[0]):
        w[j] = w[j] * abs(r[j]) + np.float64(1e-300)
        total += w[j]
    for j in range(r.shape[0]):
        w[j] /= total


@njit(**_KERNEL)
def minimax_fit(opcodes, args, consts0, out, x, hi, lo, inv, iterations, patience, relative, precise):
    """Fit float64 constants; returns (constants, max |error| over the finite outputs, number of
    non-finite outputs, evaluations, accepted steps).

    Phase 1 is a plain least-squares fit (uniform weights) that finds the basin; phase 2 switches
    on Lawson's weights to move from the L2 to the minimax solution. Each phase runs at most
    ``iterations`` Levenberg-Marquardt steps; phase 2 stops once the max error has not improved
    by 0.1% for ``patience`` steps. With ``relative``, non-zero constants move in relative steps
    (c <- c exp(z), a fit in log |c|): the valleys of forms such as c4 / (c3/x + c2 + c1 x/c3)
    (c1 ~ c3^2, c2 ~ c3, c4 ~ c3) are straight lines there, and signs are kept.
    """
    n = x.shape[0]
    k = consts0.shape[0]
    y = np.empty(n, np.float64)
    jac = np.empty((n, k), np.float64)
    r = np.empty(n, np.float64)
    y_try = np.empty(n, np.float64)
    jac_try = np.empty((n, k), np.float64)
    r_try = np.empty(n, np.float64)
    jac_rel = np.empty((n, k), np.float64)
    y_lo = np.empty(n, np.float64)
    c = consts0.copy()
    c_try = c.copy()
    evaluations = 1
    bad = _residuals(opcodes, args, c, out, x, hi, lo, inv, y, jac, r, y_lo, precise)
    if bad == n:
        return c, np.float64(np.inf), bad, evaluations, 0
    w = np.full(n, np.float64(1) / n)
    best_c = c.copy()
    best = np.max(np.abs(r))
    best_bad = bad
    lam = np.float64(1e-3)
    stall = 0
    lawson = False
    steps = 0
    accepted_steps = 0
    while True:
        if steps >= iterations:
            if lawson:
                break
            lawson = True
            steps = 0
            _lawson_update(w, r)
        steps += 1
        s = _weighted_sum(w, r)
        if relative:
            for p in range(k):
                factor = c[p] if c[p] != 0 else np.float64(1)
                for j in range(n):
                    jac_rel[j, p] = jac[j, p] * factor
            rr, qtb, scale = _step_system(jac_rel, r, w)
        else:
            rr, qtb, scale = _step_system(jac, r, w)
        accepted = False
        s_try = s
        for _attempt in range(12):
            z, solved = _damped_step(rr, qtb, lam)
            if solved:
                for p in range(k):
                    if relative and c[p] != 0:
                        c_try[p] = c[p] * np.exp(z[p] / scale[p])
                    else:
                        c_try[p] = c[p] + z[p] / scale[p]
                evaluations += 1
                bad_try = _residuals(
                    opcodes, args, c_try, out, x, hi, lo, inv, y_try, jac_try, r_try, y_lo, precise
                )
                if bad_try <= bad:
                    s_try = _weighted_sum(w, r_try)
                    if bad_try < bad or s_try < s:
                        accepted = True
                        lam = max(lam / np.float64(3), np.float64(1e-12))
                        break
            lam *= np.float64(8)
        if not accepted:
            if lawson:
                break
            lawson = True  # least squares has converged as far as it can: go for the minimax
            steps = 0
            lam = np.float64(1e-3)
            _lawson_update(w, r)
            continue
        accepted_steps += 1
        improved_bad = bad_try < bad
        bad = bad_try
        c[:] = c_try
        r[:] = r_try
        jac[:, :] = jac_try
        current = np.max(np.abs(r))
        if bad < best_bad or (bad == best_bad and current < best):
            previous = best
            best = current
            best_bad = bad
            best_c[:] = c
            stall = 0 if current < previous * np.float64(0.999) else stall + 1
        else:
            stall += 1
        if not lawson:
            if not improved_bad and s - s_try <= np.float64(1e-9) * s:
                lawson = True
                steps = 0
                stall = 0
                _lawson_update(w, r)
            continue
        if stall >= patience:
            break
        _lawson_update(w, r)
    return best_c, best, best_bad, evaluations, accepted_steps


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


def polish(opcodes, args, consts, out, x, hi, lo, inv, rounded, budget, frozen=()):
    """Ordinal coordinate search on (max error, mean error); returns (constants, max, mean, evals).
    The constants at the indices ``frozen`` (``evo.compensated.frozen_slots``) are not moved."""
    movable = np.ones(consts.shape[0], np.bool_)
    movable[list(frozen)] = False
    return _polish(opcodes, args, consts, out, x, hi, lo, inv, rounded, budget, movable)


@njit(**_KERNEL)
def _polish(opcodes, args, consts, out, x, hi, lo, inv, rounded, budget, movable):
    c = consts.copy()
    m, total, _, _, _, _ = score_kernel(opcodes, args, c, out, x, hi, lo, inv, rounded)
    mean = total / x.shape[0]
    evaluations = 1
    steps = np.array([1, -1, 2, -2, 4, -4, 8, -8, 16, -16], np.int64)
    improved = True
    while improved and evaluations < budget:
        improved = False
        for k in range(c.shape[0]):
            if not movable[k]:
                continue
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


def fit_data(
    x: np.ndarray, hi: np.ndarray, lo: np.ndarray, inv: np.ndarray, precise: bool = False
) -> FitData:
    """Contiguous float64 copies of a point subset, as the kernels want them."""
    return FitData(*(np.ascontiguousarray(a, dtype=np.float64) for a in (x, hi, lo, inv)), precise=precise)


def _levenberg_marquardt(
    free, start: np.ndarray, data: FitData, iterations: int, patience: int, relative: bool = False
) -> FitResult:
    c, error, bad, evals, steps = minimax_fit(
        free.opcodes,
        free.args,
        np.ascontiguousarray(start, dtype=np.float64),
        free.out,
        data.x,
        data.hi,
        data.lo,
        data.inv,
        iterations,
        patience,
        relative,
        data.precise,
    )
    return FitResult(c, float(error), int(bad), int(evals), int(steps))


def _start_rng(start: np.ndarray, salt: int) -> np.random.Generator:
    """An RNG seeded by the starting constants: the same child always gets the same restarts."""
    digest = hashlib.blake2b(np.ascontiguousarray(start, dtype=np.float64).tobytes(), digest_size=8).digest()
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([int.from_bytes(digest, "little"), salt]))
    )


def _jittered(center: np.ndarray, rng: np.random.Generator, spread: float) -> np.ndarray:
    """Relative jitter (scale-free), with an absolute part so zero constants move too."""
    noise = rng.standard_normal(center.shape[0])
    return center * (1.0 + spread * noise) + spread * 0.1 * rng.standard_normal(center.shape[0])


def _combine(best: FitResult, other: FitResult, spent: int) -> FitResult:
    chosen = other if other.better_than(best) else best
    return FitResult(chosen.constants, chosen.max_error, chosen.n_bad, spent, chosen.steps)


_RESTART_SPREADS = (0.1, 0.3, 0.03, 1.0)


def _broad_start(center: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A start in possibly another basin (a pole on the other side of the domain): every constant
    gets a random sign, and with even odds keeps its magnitude (jittered) or draws a log-uniform
    one in [1e-2, 1e2]."""
    k = center.shape[0]
    redraw = (rng.random(k) < 0.5) | (center == 0)
    kept = np.abs(center) * np.exp(0.3 * rng.standard_normal(k))
    magnitude = np.where(redraw, 10.0 ** rng.uniform(-2.0, 2.0, k), kept)
    return rng.choice((-1.0, 1.0), k) * magnitude


SCALE_ABOVE = 4.0  # constants this large (in magnitude) move together in ``scale_scan``
SCALE_GRID = tuple(k / 16 for k in range(-32, 33))  # log2 of the common factor, coarse pass
SCALE_REFINE = 6  # golden-section probes around the best coarse factor


def _scaled(start: np.ndarray, log2_factor: float) -> np.ndarray:
    large = np.abs(start) >= SCALE_ABOVE
    return np.where(large, start * 2.0**log2_factor, start)


def scale_scan(free, start: np.ndarray, data: FitData, settings: FitSettings) -> FitResult:
    """The best short fit over starts whose large constants (|c| >= ``SCALE_ABOVE``) are scaled by
    one common factor: a grid of 2^-2 .. 2^2 in sixteenth octaves (the dip is a few percent wide),
    then golden-section probes in the best bracket (65 + 6 short fits).

    A continued-fraction form has a flat direction along the joint scale of its large constants,
    and the optimum of a form with one more level (``evo.mutate.level``) lies elsewhere along it,
    in a dip a few percent wide that Levenberg-Marquardt does not walk to: the error after a short
    fit is a profile over the scale that this scan minimises (f5^8 -> f10's structure: 1e-10 at the
    parent's scale, 2e-12 at 3.6 times it). Deterministic: no random draws."""

    def probe(log2_factor: float) -> FitResult:
        return _levenberg_marquardt(
            free, _scaled(start, log2_factor), data, settings.iterations, settings.patience
        )

    def key(result: FitResult) -> tuple:
        return (result.n_bad, result.max_error if np.isfinite(result.max_error) else np.inf)

    tried = [(g, probe(g)) for g in SCALE_GRID]
    spent = sum(r.evaluations for _, r in tried)
    index = min(range(len(tried)), key=lambda i: key(tried[i][1]))
    best = tried[index][1]
    step = SCALE_GRID[1] - SCALE_GRID[0]
    lo, hi = tried[index][0] - step, tried[index][0] + step
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    ra, rb = probe(a), probe(b)
    spent += ra.evaluations + rb.evaluations
    for _ in range(SCALE_REFINE - 2):
        if key(ra) <= key(rb):
            hi, b, rb = b, a, ra
            a = hi - ratio * (hi - lo)
            ra = probe(a)
            spent += ra.evaluations
        else:
            lo, a, ra = a, b, rb
            b = lo + ratio * (hi - lo)
            rb = probe(b)
            spent += rb.evaluations
    for trial in (ra, rb):
        best = _combine(best, trial, spent)
    return FitResult(best.constants, best.max_error, best.n_bad, spent, best.steps)


def fit_constants(
    free,
    start: np.ndarray,
    data: FitData,
    settings: FitSettings,
    explore: bool = False,
    scale: bool = False,
) -> FitResult:
    """Levenberg-Marquardt from ``start``; jittered restarts only when it stalls (no step taken).
    With ``explore`` (a structurally new child), ``settings.explore_starts`` more fits from broad
    starts (``_broad_start``), seeded by the start itself; with ``scale`` (a child that gained a
    continued-fraction level) also ``scale_scan``; the best of all is kept."""
    result = _levenberg_marquardt(free, start, data, settings.iterations, settings.patience)
    spent = result.evaluations
    if scale and np.any(np.abs(start) >= SCALE_ABOVE):
        trial = scale_scan(free, start, data, settings)
        spent += trial.evaluations
        result = _combine(result, trial, spent)
    if explore and settings.explore_starts > 0 and start.shape[0] > 0:
        rng = _start_rng(start, 3)
        for _ in range(settings.explore_starts):
            trial = _levenberg_marquardt(
                free, _broad_start(start, rng), data, settings.iterations, settings.patience
            )
            spent += trial.evaluations
            result = _combine(result, trial, spent)
    if result.steps > 0 and result.n_bad < data.size:
        return FitResult(result.constants, result.max_error, result.n_bad, spent, result.steps)
    rng = _start_rng(start, 1)
    for attempt in range(settings.restarts):
        trial = _levenberg_marquardt(
            free,
            _jittered(start, rng, _RESTART_SPREADS[attempt % len(_RESTART_SPREADS)]),
            data,
            settings.iterations,
            settings.patience,
        )
        spent += trial.evaluations
        result = _combine(result, trial, spent)
        if trial.steps > 0 and trial.n_bad < data.size:
            break
    return FitResult(result.constants, result.max_error, result.n_bad, spent, result.steps)


@njit(**_KERNEL)
def _model_max_error(opcodes, args, consts, out, x, hi, lo, inv):
    """Max error of the float64 model (inf if any output is non-finite)."""
    return score_kernel(opcodes, args, consts, out, x, hi, lo, inv, hi)[0]


def _cma_search(
    free, center: np.ndarray, data: FitData, seed: int, spread: float, max_evals: int
) -> tuple[np.ndarray, float, int]:
    """CMA-ES on the true float64 max error, in relative steps around ``center`` (scale-free)."""
    import cma

    scale = np.where(center != 0, np.abs(center), 1.0)

    def objective(z) -> float:
        value = _model_max_error(
            free.opcodes,
            free.args,
            center + scale * np.asarray(z),
            free.out,
            data.x,
            data.hi,
            data.lo,
            data.inv,
        )
        return float(value) if np.isfinite(value) else 1e300

    options = {
        "seed": seed + 1,
        "maxfevals": max_evals,
        "verbose": -9,
        "tolfun": 0.0,
        "tolx": 1e-18,
        "tolflatfitness": 50,
    }
    es = cma.CMAEvolutionStrategy(np.zeros(center.shape[0]), spread, options)
    es.optimize(objective)
    z = np.asarray(es.result.xbest if es.result.xbest is not None else np.zeros(center.shape[0]))
    return center + scale * z, float(es.result.fbest), int(es.result.evaluations)


def fit_thorough(
    free,
    start: np.ndarray,
    data: FitData,
    settings: FitSettings,
    restarts: int = 12,
    use_cma: bool = True,
    seed: int = 0,
    walk_steps: int = 80,
    valley_probes: int = 40,
) -> FitResult:
    """A fit for one program a user cares about: Levenberg-Marquardt with long phases, jittered
    restarts around the best so far, then CMA-ES (relative steps) re-polished by Levenberg-Marquardt,
    and with double-double residuals (the real-number setting) a search along the flattest valley,
    then up to ``walk_steps`` predictor-corrector steps along it (``valley_walk``; 0: none).
    """
    long, patient = max(settings.iterations, 2000), max(settings.patience, 200)
    best = _levenberg_marquardt(free, start, data, long, patient)
    spent = best.evaluations
    rng = _start_rng(start, 2 + seed)
    for attempt in range(restarts):
        center = best.constants if attempt % 2 else np.asarray(start, dtype=np.float64)
        trial = _levenberg_marquardt(
            free,
            _jittered(center, rng, _RESTART_SPREADS[attempt % len(_RESTART_SPREADS)]),
            data,
            long,
            patient,
        )
        spent += trial.evaluations
        best = _combine(best, trial, spent)
    if use_cma and free.consts.shape[0] > 0:
        for spread in (0.3, 0.01):
            found, _, evals = _cma_search(free, best.constants, data, seed, spread, 3000)
            trial = _levenberg_marquardt(free, found, data, long, patient)
            spent += evals + trial.evaluations
            best = _combine(best, trial, spent)
    if data.precise and free.consts.shape[0] > 1 and np.isfinite(best.max_error):
        trial = valley_search(free, best.constants, data, valley_probes)
        spent += trial.evaluations
        best = _combine(best, trial, spent)
        if walk_steps > 0 and np.isfinite(best.max_error):
            trial = valley_walk(free, best.constants, data, walk_steps)
            spent += trial.evaluations
            best = _combine(best, trial, spent)
    return FitResult(best.constants, best.max_error, best.n_bad, spent, best.steps)


def _alternating_extrema(r: np.ndarray) -> np.ndarray:
    """Indices (into x-sorted residuals) of the largest |r| in each run of one sign: the error
    curve's alternating extrema, the reference set of an exchange step."""
    signs = np.sign(r)
    keep = signs != 0
    index = np.flatnonzero(keep)
    if index.size == 0:
        return index
    s = signs[index]
    starts = np.flatnonzero(np.concatenate([[True], s[1:] != s[:-1]]))
    ends = np.concatenate([starts[1:], [index.size]])
    peaks = [index[a + int(np.argmax(np.abs(r[index[a:b]])))] for a, b in zip(starts, ends, strict=True)]
    return np.array(peaks)


def _exchange_reference(extrema: np.ndarray, r: np.ndarray, size: int) -> np.ndarray:
    """``size`` consecutive alternating extrema containing the largest one, with the largest
    smallest |r| (all of them when there are fewer)."""
    if extrema.size <= size:
        return extrema
    magnitude = np.abs(r[extrema])
    top = int(np.argmax(magnitude))
    best, best_low = 0, -1.0
    for first in range(max(0, top - size + 1), min(top, extrema.size - size) + 1):
        low = float(magnitude[first : first + size].min())
        if low > best_low:
            best, best_low = first, low
    return extrema[best : best + size]


def _relative(c: np.ndarray, dz: np.ndarray) -> np.ndarray:
    """c moved by dz in relative coordinates (log |c| for non-zero constants, plain for zeros)."""
    with np.errstate(over="ignore"):  # an overflowing trial is scored as non-finite and rejected
        return np.where(c != 0, c * np.exp(dz), c + dz)


def exchange_polish(
    free, start: np.ndarray, data: FitData, iterations: int = 60, basis: np.ndarray | None = None
) -> FitResult:
    """Remez-type exchange steps on the minimax problem, for a fit that is already in its basin.

    Each step takes the alternating extrema of the error curve as the reference and solves the
    linearised leveling equations r_i + J_i dc = s_i E there (s_i the extremum's sign): with
    m free directions and at least m + 1 extrema, a square system that levels the error (Newton's
    step of the nonlinear Remez algorithm); with fewer, the least-norm step that brings every
    extremum down to half its size. Steps are taken in relative coordinates (``_relative``) along
    the columns of ``basis`` (k x m; default every constant), damped and halved until the max error
    over all points drops. Residuals come from the double-double value of the program."""
    order = np.argsort(data.x, kind="stable")
    x, hi, lo, inv = (np.ascontiguousarray(a[order]) for a in (data.x, data.hi, data.lo, data.inv))
    n, k = x.shape[0], start.shape[0]
    basis = np.eye(k) if basis is None else basis
    m = basis.shape[1]
    y, y_lo, r = np.empty(n), np.empty(n), np.empty(n)
    jac = np.empty((n, k))

    def evaluate(c: np.ndarray) -> tuple[float, int]:
        bad = _residuals(free.opcodes, free.args, c, free.out, x, hi, lo, inv, y, jac, r, y_lo, True)
        return (float(np.max(np.abs(r))) if bad < n else np.inf), int(bad)

    c = np.asarray(start, dtype=np.float64).copy()
    best, bad = evaluate(c)
    evaluations, steps = 1, 0
    if k == 0 or m == 0 or not np.isfinite(best):
        return FitResult(c, best, bad, evaluations, 0)
    for _ in range(iterations):
        reference = _exchange_reference(_alternating_extrema(r), r, m + 1)
        if reference.size < 2:
            break
        a = (jac[reference] * np.where(c != 0, c, 1.0)) @ basis
        scale = np.linalg.norm(a, axis=0)
        scale[~(scale > 0)] = 1.0
        s = np.sign(r[reference])
        if reference.size >= m + 1:
            system, rhs, free_e = np.column_stack([a / scale, -s]), -r[reference], 1
        else:
            system, rhs, free_e = a / scale, 0.5 * s * np.abs(r[reference]) - r[reference], 0
        saved = (r.copy(), jac.copy())
        improved = False
        # damping: in a curved valley the full step of a near-singular system overshoots
        for damping in (0.0, 1e-12, 1e-9, 1e-6, 1e-4, 1e-2, 1.0):
            penalty = np.sqrt(damping) * np.eye(m, m + free_e)
            stacked, padded = np.vstack([system, penalty]), np.concatenate([rhs, np.zeros(m)])
            solution = np.linalg.lstsq(stacked, padded, rcond=None)[0]
            dz = basis @ (solution[:m] / scale)
            if not np.all(np.isfinite(dz)):
                continue
            for halving in range(4):
                trial = _relative(c, dz * 0.5**halving)
                error, trial_bad = evaluate(trial)
                evaluations += 1
                if trial_bad <= bad and error < best:
                    c, best, bad, improved = trial, error, trial_bad, True
                    break
                r[:], jac[:, :] = saved
            if improved:
                break
        if not improved:
            break
        steps += 1
    return FitResult(c, best, bad, evaluations, steps)


FLAT = 1e-6  # a singular value this far below the largest marks a valley (f10: 4e-10)


def valley_search(free, start: np.ndarray, data: FitData, probes: int = 40) -> FitResult:
    """The minimax along the flattest direction of the fit (a near-symmetry of the form, such as
    f10's joint scaling of its large constants, where the error changes only at second order).

    The direction is the smallest right singular vector of the Jacobian in relative coordinates;
    for each position t along it, the error is levelled in the other directions by exchange steps
    (``exchange_polish``), and t is chosen by bracketing and golden-section search on that levelled
    error. Straight steps of Levenberg-Marquardt leave such a curved valley at once; this follows it."""
    c0 = np.asarray(start, dtype=np.float64)
    k = c0.shape[0]
    if k < 2:
        return exchange_polish(free, c0, data)
    n = data.size
    y, y_lo, r = np.empty(n), np.empty(n), np.empty(n)
    jac = np.empty((n, k))
    _residuals(
        free.opcodes, free.args, c0, free.out, data.x, data.hi, data.lo, data.inv, y, jac, r, y_lo, True
    )
    a = jac * np.where(c0 != 0, c0, 1.0)
    scale = np.linalg.norm(a, axis=0)
    scale[~(scale > 0)] = 1.0
    _, singular, vt = np.linalg.svd(a / scale, full_matrices=False)
    if not singular[-1] < FLAT * singular[0]:  # no flat valley: plain exchange steps
        return exchange_polish(free, c0, data)
    valley = vt[-1] / scale
    valley /= np.max(np.abs(valley))
    basis = (vt[:-1] / scale).T
    spent = [0]
    memo: dict[float, FitResult] = {}

    def levelled(t: float) -> FitResult:
        if t not in memo:
            memo[t] = exchange_polish(free, _relative(c0, t * valley), data, 30, basis)
            spent[0] += memo[t].evaluations
        return memo[t]

    def error(t: float) -> float:
        return levelled(t).max_error

    # bracket: grow the step in the downhill direction until the levelled error rises
    step = 1e-6
    best_t = 0.0
    if error(step) > error(-step):
        step = -step
    if error(step) < error(0.0):
        lo_t, mid_t, hi_t = 0.0, step, 2 * step
        while error(hi_t) < error(mid_t) and len(memo) < probes:
            lo_t, mid_t, hi_t = mid_t, hi_t, 2 * hi_t
        ratio = (np.sqrt(5.0) - 1) / 2
        a_t, b_t = lo_t, hi_t
        while len(memo) < probes:
            left, right = b_t - ratio * (b_t - a_t), a_t + ratio * (b_t - a_t)
            if error(left) < error(right):
                b_t = right
            else:
                a_t = left
        best_t = min(memo, key=error)
    best = levelled(best_t)
    return FitResult(best.constants, best.max_error, best.n_bad, spent[0], best.steps)


def _valley_frame(free, c: np.ndarray, data: FitData) -> tuple[np.ndarray, np.ndarray, bool]:
    """The flattest direction at ``c`` (relative coordinates, max-normalised), a basis of the
    others, and whether it is a valley (smallest singular value below ``FLAT`` of the largest)."""
    n, k = data.size, c.shape[0]
    y, y_lo, r = np.empty(n), np.empty(n), np.empty(n)
    jac = np.empty((n, k))
    _residuals(
        free.opcodes, free.args, c, free.out, data.x, data.hi, data.lo, data.inv, y, jac, r, y_lo, True
    )
    a = jac * np.where(c != 0, c, 1.0)
    scale = np.linalg.norm(a, axis=0)
    scale[~(scale > 0)] = 1.0
    _, singular, vt = np.linalg.svd(a / scale, full_matrices=False)
    valley = vt[-1] / scale
    return valley / np.max(np.abs(valley)), (vt[:-1] / scale).T, bool(singular[-1] < FLAT * singular[0])


def _log_step(c: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """The step from ``previous`` to ``c`` in the coordinates of ``_relative``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((c != 0) & (previous != 0), c / previous, 1.0)
        return np.where(c != 0, np.log(np.abs(ratio)), c - previous)


def valley_walk(free, start: np.ndarray, data: FitData, max_steps: int = 80) -> FitResult:
    """Predictor-corrector continuation along a curved valley (double-double residuals).

    Where the error falls only slowly along the flattest direction while the valley bends away
    from any straight line (f10: c1 ~ c3^2.4, so a straight step of 0.2% leaves the floor by 100x
    the error), one line search cannot reach the far end. Each step here predicts the next point
    from the last accepted step (the secant, which carries the valley's bend), or along the
    flattest direction at first, then levels the error in the other directions (``exchange_polish``
    on the complement of the re-estimated flattest direction). An accepted step doubles the next
    one; a rejected one quarters it."""
    c = np.asarray(start, dtype=np.float64).copy()
    current = exchange_polish(free, c, data, iterations=0)
    spent = current.evaluations
    if c.shape[0] < 2 or not np.isfinite(current.max_error):
        return current
    valley, basis, flat = _valley_frame(free, c, data)
    if not flat:
        return current
    step, previous, last = 1e-5, None, 0.0
    sign = 1.0
    first = [exchange_polish(free, _relative(c, s * step * valley), data, 30, basis) for s in (1.0, -1.0)]
    spent += first[0].evaluations + first[1].evaluations
    if first[1].max_error < first[0].max_error:
        sign = -1.0
    for _ in range(max_steps):
        if step < 1e-9:
            break
        if previous is None:
            predicted = _relative(c, sign * step * valley)
        else:
            predicted = _relative(c, _log_step(c, previous) * (step / last))
        trial = exchange_polish(free, predicted, data, 30, basis)
        spent += trial.evaluations
        if trial.n_bad <= current.n_bad and trial.max_error < current.max_error:
            previous, c, current, last = c, trial.constants, trial, step
            step *= 2.0
            valley, basis, _ = _valley_frame(free, c, data)
        else:
            step /= 4.0
            if previous is not None and step < last / 64:
                previous = None  # the secant has lost the valley: predict along the flat direction
                step = last
    return FitResult(current.constants, current.max_error, current.n_bad, spent, current.steps)
