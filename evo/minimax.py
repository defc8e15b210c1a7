"""Minimax polynomials in the run's unit, float coefficients fixed one at a time (fpminimax-style)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

from evo.classical import (
    OUTERS,
    VARIABLES,
    _allowed,
    _domain_of_u,
    _fit_form,
    _program,
    _program_error,
    form_op_count,
)
from primitives.floatbits import get_format
from primitives.program import Program

# Why: Sollya's fpminimax, the classical answer a user compares with, is a minimax polynomial whose
# coefficients are floats of the format, found by lattice reduction (Brisebarre-Chevillard). Here
# the minimax problem is solved exactly on a discrete set (a linear program, its points exchanged
# with the worst of a dense set, as Remez does), in the run's own unit (ULP of f, or relative), and
# the coefficients are made floats one at a time: round the lowest-order one, solve again for the
# others, and so on. Each step is the best the remaining coefficients can do given the rounded
# ones, which is what the lattice step buys over rounding every coefficient to nearest.

ACTIVE = 6  # points per unknown of the first linear program (nearest to Chebyshev nodes)
EXCHANGE_ROUNDS = 12  # linear programs per fit, each adding the worst points of the whole set
EXCHANGE_ADD = 2  # points per unknown added per round
LP_PASSES = 2  # linear programs per solve: the second corrects the first's tolerance
MAX_DEGREE = 16
SATURATED = 1e-3  # model error (run's unit) past which a form's degree stops growing
RANKING_POINTS = 512  # points of the fast fits that rank the forms (evenly spaced by rank)
ROUNDED_PER_COUNT = 2  # forms per op count whose coefficients are made floats


@dataclass(frozen=True, slots=True)
class MinimaxFit:
    """One form's minimax fit: power-basis coefficients of P in u (lowest first) and its max error."""

    shift: bool
    variable: str
    outer: str
    degree: int
    mid: float
    coefficients: tuple[float, ...]
    model_error: float  # on every given point, float64 arithmetic, coefficients as given


@dataclass(frozen=True, slots=True)
class MinimaxSeed:
    """A minimax polynomial with float coefficients, as a program, and its error as evaluated."""

    fit: MinimaxFit
    program: Program
    error: float  # on every given point, rounding of the format included
    naive_error: float  # the same fit with every coefficient rounded to nearest


def _columns(x, lo, hi, shift, variable, outer, degree):
    """The form's basis (P's monomials in u, times the outer factor), what it approximates, and mid."""
    v, u, ulo, uhi, mid = _domain_of_u(x, lo, hi, shift, variable)
    if not uhi > ulo:
        return None
    factor = {"none": np.ones_like(v), "mul_v": v, "v_plus_vr": v, "v_plus_v3r": v * u}[outer]
    basis = np.vander(u, degree + 1, increasing=True) * factor[:, None]
    return basis, v, mid


def _lp_minimax(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """Coefficients c minimising max |a @ c - b|: a least-squares start, then linear programs for
    the correction on the residual scaled to 1 (the solver's tolerances are absolute: solved on
    the raw values, an error of 1e-6 of the values would be lost in them)."""
    m, n = a.shape
    norms = np.abs(a).max(axis=0)
    norms[norms == 0] = 1.0
    a = a / norms
    c, *_ = np.linalg.lstsq(a, b, rcond=None)
    ones = np.ones((m, 1))
    a_ub = np.vstack([np.hstack([a, -ones]), np.hstack([-a, -ones])])
    cost = np.zeros(n + 1)
    cost[-1] = 1.0
    bounds = [(None, None)] * n + [(0, None)]
    for _ in range(LP_PASSES):
        residual = b - a @ c
        size = float(np.abs(residual).max())
        if not size > 0 or not math.isfinite(size):
            break
        rhs = residual / size
        result = linprog(cost, A_ub=a_ub, b_ub=np.concatenate([rhs, -rhs]), bounds=bounds, method="highs")
        if result.status != 0:
            return None if _ == 0 else c / norms
        c = c + size * result.x[:n]
    return c / norms


def _initial_active(position: np.ndarray, n: int) -> np.ndarray:
    """Rows nearest to ``ACTIVE * n`` Chebyshev nodes of ``position``'s range (the first column that
    varies), and both ends: where a minimax error equioscillates, whatever the points' spacing."""
    lo, hi = float(position.min()), float(position.max())
    k = ACTIVE * n
    nodes = lo + (hi - lo) * (1 - np.cos(np.pi * np.arange(k) / (k - 1))) / 2
    order = np.argsort(position, kind="stable")
    sorted_position = position[order]
    at = np.clip(np.searchsorted(sorted_position, nodes), 0, len(order) - 1)
    below = np.clip(at - 1, 0, len(order) - 1)
    nearer = np.where(np.abs(sorted_position[below] - nodes) < np.abs(sorted_position[at] - nodes), below, at)
    return np.unique(order[nearer])


def discrete_minimax(
    basis: np.ndarray,
    target: np.ndarray,
    scale: np.ndarray,
    fixed: dict[int, float] | None = None,
    position: np.ndarray | None = None,
) -> tuple[np.ndarray, float] | None:
    """Weighted minimax ``basis @ c ~ target`` on every row, and its error (see ``_solve``)."""
    solved = _solve(basis, target, scale, fixed or {}, position, None)
    return None if solved is None else solved[:2]


def _solve(basis, target, scale, fixed: dict[int, float], position, start):
    """Weighted minimax ``basis @ c ~ target`` (error ``|basis @ c - target| * scale``) on every row,
    by linear programs on an active set grown with the worst rows (Remez's exchange, started from
    the rows nearest to Chebyshev nodes of ``position``, by default the row index); ``fixed`` pins
    coefficients. ``start``: rows to start from instead (warm start; the exchange adds to them).
    Returns the coefficients, the error and the last active rows."""
    n = basis.shape[1]
    free = [j for j in range(n) if j not in fixed]
    rest = target - sum((basis[:, j] * value for j, value in fixed.items()), np.zeros_like(target))
    a_all, b_all = basis[:, free] * scale[:, None], rest * scale
    where = np.arange(len(target), dtype=np.float64) if position is None else np.asarray(position, np.float64)
    active = _initial_active(where, len(free) + 1) if start is None else start
    best, best_err = None, math.inf
    for _ in range(EXCHANGE_ROUNDS):
        c = _lp_minimax(a_all[active], b_all[active]) if free else np.zeros(0)
        if c is None:
            break
        residual = np.abs(a_all @ c - b_all)
        err = float(residual.max())
        if not math.isfinite(err):
            break
        if err < best_err:
            best, best_err = c, err
        on_active = float(residual[active].max())
        if err <= on_active * (1 + 1e-9):
            break  # the active set holds the worst row: the discrete minimax of every row
        worst = np.argsort(-residual)[: EXCHANGE_ADD * (len(free) + 1)]
        active = np.union1d(active, worst)
    if best is None:
        return None
    full = np.zeros(n)
    full[free] = best
    for j, value in fixed.items():
        full[j] = value
    return full, best_err, active


def fit_form(x, ref, scale, lo, hi, shift, variable, outer, degree) -> MinimaxFit | None:
    """The float64 minimax polynomial of one form and degree on the points."""
    columns = _columns(x, lo, hi, shift, variable, outer, degree)
    if columns is None:
        return None
    basis, v, mid = columns
    rest = ref - v if outer in ("v_plus_vr", "v_plus_v3r") else ref
    solved = discrete_minimax(basis, rest, scale, position=x)
    if solved is None:
        return None
    coef, err = solved
    return MinimaxFit(shift, variable, outer, degree, float(mid), tuple(float(c) for c in coef), err)


def float_coefficients(fit: MinimaxFit, x, ref, scale, lo, hi, dtype: str = "float32") -> tuple[float, ...]:
    """The fit's coefficients made floats of ``dtype`` one at a time, lowest order first, the
    others solved again for the minimax error after each rounding."""
    fmt = get_format(dtype)
    columns = _columns(x, lo, hi, fit.shift, fit.variable, fit.outer, fit.degree)
    assert columns is not None
    basis, v, _ = columns
    rest = ref - v if fit.outer in ("v_plus_vr", "v_plus_v3r") else ref
    coef = np.array(fit.coefficients)
    fixed: dict[int, float] = {}
    active = None  # each solve starts from the last one's rows: the extrema move little
    for j in range(len(coef)):
        fixed[j] = float(fmt.dtype.type(coef[j]))
        if len(fixed) == len(coef):
            break
        solved = _solve(basis, rest, scale, fixed, x, active)
        if solved is None:
            break
        coef, _, active = solved
    return tuple(float(fmt.dtype.type(fixed.get(j, coef[j]))) for j in range(len(coef)))


def _lawson_form(x, ref, scale, lo, hi, shift, variable, outer, degree) -> MinimaxFit | None:
    fitted = _fit_form(x, ref, scale, lo, hi, shift, variable, outer, degree)
    if fitted is None:
        return None
    (mid, power), err = fitted
    return MinimaxFit(shift, variable, outer, degree, float(mid), tuple(float(c) for c in power), err)


def _build(fit: MinimaxFit, coefficients, lo, fused, dtype) -> Program | None:
    return _program(fit.shift, fit.variable, fit.outer, list(coefficients), fit.mid, lo, fused, dtype)


def minimax_fits(x, ref, scale, ops: tuple[str, ...], max_ops: int, exact: bool = True) -> list[MinimaxFit]:
    """Float64 minimax fits of every classical form and degree within ``max_ops`` (at least 1 op):
    exact (linear programs), or Lawson's iteration (``evo.classical``: near minimax, fast)."""
    lo, hi = float(x.min()), float(x.max())
    fused = "fma" in ops
    shifts = (False,) if lo <= 0.0 <= hi else (False, True)
    fits = []
    for shift in shifts:
        for variable in VARIABLES:
            for outer in OUTERS:
                if not _allowed(shift, variable, outer, ops):
                    continue
                for degree in range(0 if outer != "none" and variable == "v" else 1, MAX_DEGREE + 1):
                    if form_op_count(shift, variable, outer, degree, fused) > max_ops or len(x) <= degree + 2:
                        break
                    fit = (fit_form if exact else _lawson_form)(
                        x, ref, scale, lo, hi, shift, variable, outer, degree
                    )
                    if fit is None:
                        continue
                    fits.append(fit)
                    if fit.model_error < SATURATED:
                        break
    return fits


def minimax_seeds(
    x: np.ndarray,
    ref: np.ndarray,
    scale: np.ndarray,
    ops: tuple[str, ...],
    max_ops: int,
    dtype: str = "float32",
    per_count: int = ROUNDED_PER_COUNT,
) -> list[MinimaxSeed]:
    """Per op count, the ``per_count`` forms whose near-minimax polynomial (Lawson), rounded to
    nearest, has the lowest error as evaluated, fitted again exactly (linear programs), with their
    coefficients made floats one at a time (the better of that and rounding the exact fit to
    nearest). Ordered by op count, then error. Deterministic."""
    x = np.asarray(x, dtype=np.float64)
    ref, scale = np.asarray(ref, dtype=np.float64), np.asarray(scale, dtype=np.float64)
    keep = np.isfinite(ref) & np.isfinite(scale) & np.isfinite(x)
    x, ref, scale = x[keep], ref[keep], scale[keep]
    if len(x) < 4:
        return []
    order = np.argsort(x, kind="stable")
    x, ref, scale = x[order], ref[order], scale[order]
    lo, hi = float(x[0]), float(x[-1])
    fused = "fma" in ops
    by_count: dict[int, list[tuple[float, MinimaxFit]]] = {}
    pick = np.unique(np.linspace(0, len(x) - 1, min(len(x), RANKING_POINTS)).round().astype(np.int64))
    for fit in minimax_fits(x[pick], ref[pick], scale[pick], ops, max_ops, exact=False):
        program = _build(fit, fit.coefficients, lo, fused, dtype)
        if program is None or not program.body or program.op_count() > max_ops:
            continue
        by_count.setdefault(program.op_count(), []).append((_program_error(program, x, ref, scale), fit))
    seeds = []
    for count in sorted(by_count):
        found = []
        for _, near in sorted(by_count[count], key=lambda item: item[0])[:per_count]:
            f = near
            fit = fit_form(x, ref, scale, lo, hi, f.shift, f.variable, f.outer, f.degree) or near
            naive = _build(fit, fit.coefficients, lo, fused, dtype)
            naive_error = _program_error(naive, x, ref, scale) if naive is not None else math.inf
            program = _build(fit, float_coefficients(fit, x, ref, scale, lo, hi, dtype), lo, fused, dtype)
            error = _program_error(program, x, ref, scale) if program is not None else math.inf
            if program is None or not error < naive_error:
                program, error = naive, naive_error
            if program is not None and program.body and program.op_count() <= max_ops:
                found.append(MinimaxSeed(fit, program, error, naive_error))
        seeds.extend(sorted(found, key=lambda s: s.error))
    return seeds


def with_minimax_seeds(
    classical: list, data, ops: tuple[str, ...], max_ops: int, dtype: str
) -> list[Program]:
    """The programs of ``classical`` (seeds ordered by op count, then ``error`` on ``data``'s
    points) with the minimax seeds of ``data`` merged in, in the same order (the first of an op
    count is the one the exchange refines: the better of the two kinds on these points)."""
    fitted = minimax_seeds(data.x, data.ref_hi + data.ref_lo, data.inv_scale, ops, max_ops, dtype)
    ranked = [(s.program.op_count(), s.error, 0, i, s.program) for i, s in enumerate(classical)]
    ranked += [(s.program.op_count(), s.error, 1, i, s.program) for i, s in enumerate(fitted)]
    return [item[-1] for item in sorted(ranked, key=lambda item: item[:4])]
