"""Classical seeds for any target: minimax polynomials and rationals of every degree the op bound allows.

``classical_seeds`` fits, on a run's search set, weighted minimax polynomials (Lawson's iteration on
a Chebyshev basis, float64, in the run's error unit) in a few classical forms and evaluates them by
Horner's rule (one fma per degree when fma is allowed, else a mul and an add):

  variable v   x, or t = x - lo (exact near lo by Sterbenz's lemma) when 0 is not in the domain
  variable u   v, v*v (odd and even functions) or v - mid (the domain's middle)
  outer step   p = P(u), v*P(u), v + v*P(u) (one fma), v + (v*u)*P(u) (u = v*v)

When div is allowed, the same forms with P(u) replaced by a rational P(u)/Q(u) (one div; both
Horner) are fitted too, by Sanathanan-Koerner iteration (the linearised error N - f*D reweighted
by 1/D of the previous step) with Lawson's weights on top. Per op count a rational costs one op
more than a polynomial with as many coefficients, and wins where f has poles or a branch point
near the domain (tanh, log2 near 1, erf): there it reaches fewer ops under 1 ULP than fpminimax.

When div is allowed, reciprocal forms A + K*w/Q(u) (A = f(0) or v, w = v, u or v*u, Q monic) are
fitted too: R = Q/K is a polynomial fit to w/(f - A) (``_reciprocal_seeds``). The monic Q and the
scale K folded into the last fma save the ops of leading coefficients; with Horner's first step
u*u + q, Q of degree n costs n - 1 ops when the u^(n-1) term is not needed. e^x = 1 + x/R(x) with
R ~ x/(e^x - 1) = 1 - x/2 + x^2/12 - x^4/720 + ... (no x^3 term) is the example: 5 ops under 1 ULP
on exp and on 2^x on [-1/2, 1/2], where the polynomials need 6. Each is evaluated both as
A + K*(w/Q) and as A + w*(K/Q): the same ops, but the quotient sits elsewhere in its binade (K/Q
of 2^x on [0, 1] is just below 1 near x = 1, where half an ulp is the smallest relative error).
Where the model error is of the size of the roundings, the fit also leaves room for them
(``_rounding_aware_fit``): the weighted minimax fit of |w/R - rest| <= T - rho(x), rho the
program's rounding budget (``evo.roundingbudget``: each op's half ulp carried to the output), T
as small as reachable; the constants are then moved among floats to the lowest worst case
max(|model - f| + rho). On 2^x over [0, 1] this takes the 5-op 1 + x*(K/Q(x)) from 1.7 to
1.33-1.35 ULP on every float (depending on the fit points).

Per op count the forms with the smallest error as evaluated (rounding included) are kept
(``per_cost``), so the population starts with the classical answer at every op count and the search
only has to beat it.
Everything is a pure function of the search set: seeding is deterministic. The evaluator then
refits each seed's constants in the run's format like any child (``seed`` is a fit kind).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np

from evo.progbuild import ProgramBuilder
from evo.roundingbudget import rounding_budget, settled_constants
from primitives.floatbits import get_format
from primitives.interp import evaluate
from primitives.program import Const, Operand, Program, Ref

VARIABLES = ("v", "v2", "v-mid")
OUTERS = ("none", "mul_v", "v_plus_vr", "v_plus_v3r")
LAWSON_STEPS = 24
MAX_DEGREE = 16
MAX_DENOMINATOR = 4  # degree of Q in P(u)/Q(u)
RATIONAL_STEPS = 30
QUOTIENT_TOP = 1.999
POLE_PROBES = 1024  # points of the domain of u where Q must keep one sign (no pole in the domain)
FIT_POINTS = 512  # evenly spaced (by rank of x) among the search points, both ends included
SATURATED = 1e-3  # a model error (in the run's unit) past which a form's degree stops growing


@dataclass(frozen=True, slots=True)
class ClassicalSeed:
    """One fitted classical polynomial: its form, degree, float64 model error and program."""

    shift: bool  # v = x - lo instead of x
    variable: str
    outer: str
    degree: int  # of P
    model_error: float  # max error of the float64 model on the fit points, in the run's unit
    program: Program
    error: float  # max error of the program itself (constants rounded, arithmetic in its format)
    denominator: int = 0  # degree of Q in P(u)/Q(u); 0: a polynomial
    offset: bool = False  # the rational evaluated as c + u*(P'(u)/Q(u))
    # a reciprocal form A + K*w/Q(u) (outer "reciprocal", ``denominator`` the degree of Q): A, w and
    # whether Horner's first step u*u + q skips the u^(n-1) term
    addend: str = ""  # "v", or the constant f(0) as text
    numerator: str = ""  # "v", "u" or "v*u"
    skip: bool = False
    order: str = "w/Q"  # the reciprocal evaluated as A + K*(w/Q) ("w/Q") or A + w*(K/Q) ("k/Q")
    rounding_aware: bool = False  # fitted leaving room for the program's rounding (``_rounding_aware_fit``)

    @property
    def kind(self) -> int:
        """0 a polynomial, 1 a rational, 2 a reciprocal (``_reciprocal_seeds``)."""
        return 2 if self.outer == "reciprocal" else int(self.denominator > 0)

    @property
    def label(self) -> str:
        if self.outer == "reciprocal":
            v = "(x-lo)" if self.shift else "x"
            u = v if self.variable == "v" else f"{v}^2"
            n = self.denominator
            q = f"Q monic of degree {n}" + (f" without u^{n - 1}" if self.skip else "")
            body = f"K*({self.numerator}/Q)" if self.order == "w/Q" else f"{self.numerator}*(K/Q)"
            aware = ", rounding-aware fit" if self.rounding_aware else ""
            return f"{self.addend}+{body}, v={v}, u={u}, {q}{aware}"
        v = "(x-lo)" if self.shift else "x"
        u = {"v": v, "v2": f"{v}^2", "v-mid": "(x-mid)"}[self.variable]
        r = ("(c+u*P'(u)/Q(u))" if self.offset else "P(u)/Q(u)") if self.denominator else "P(u)"
        body = {"none": r, "mul_v": f"v*{r}", "v_plus_vr": f"v+v*{r}", "v_plus_v3r": f"v+v*u*{r}"}[self.outer]
        degrees = f"degrees {self.degree}/{self.denominator}" if self.denominator else f"degree {self.degree}"
        return f"{body}, u={u}, {degrees}"


def form_op_count(
    shift: bool, variable: str, outer: str, degree: int, fused: bool, denominator: int = 0
) -> int:
    """Instructions of a form's Horner evaluation (before pruning); a rational adds Q and a div."""
    step = 1 if fused else 2
    count = int(shift) + (1 if variable in ("v2", "v-mid") else 0) + degree * step  # v-mid is x - mid_x
    count += denominator * step + 1 if denominator else 0
    count += {"none": 0, "mul_v": 1, "v_plus_vr": step, "v_plus_v3r": 1 + step}[outer]
    return count


def _allowed(shift: bool, variable: str, outer: str, ops: tuple[str, ...]) -> bool:
    """Whether the form can be written with the allowed ops (Horner needs fma, or mul and add)."""
    needs = {"fma"} if "fma" in ops else {"mul", "add"}
    if variable == "v2" or outer in ("mul_v", "v_plus_v3r"):
        needs.add("mul")
    if shift or variable == "v-mid":
        needs.add("sub")
    return needs <= set(ops) and not (outer == "v_plus_v3r" and variable != "v2")


def _lawson(basis: np.ndarray, target: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, float]:
    """Weighted minimax coefficients of ``basis @ c ~ target`` in units of 1/scale (Lawson's rule)."""
    a, b = basis * scale[:, None], target * scale
    weights = np.full(len(b), 1.0 / len(b))
    best, best_err, stale = None, math.inf, 0
    for _ in range(LAWSON_STEPS):
        root = np.sqrt(weights)
        coef, *_ = np.linalg.lstsq(a * root[:, None], b * root, rcond=None)
        residual = np.abs(a @ coef - b)
        err = float(residual.max())
        if not math.isfinite(err):
            break
        stale = 0 if err < 0.999 * best_err else stale + 1
        if err < best_err:
            best, best_err = coef, err
        if stale >= 3:
            break
        weights = weights * residual
        total = weights.sum()
        if not total > 0:
            break
        weights /= total
    return (np.zeros(basis.shape[1]) if best is None else best), best_err


def _sk_lawson(
    numerator: np.ndarray, denominator: np.ndarray, target: np.ndarray, scale: np.ndarray, probes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Weighted minimax rational ``(numerator @ a) / (denominator @ [1, b]) ~ target`` in units of
    1/scale: Sanathanan-Koerner steps (the linear error N - f*D divided by the previous D) with
    Lawson's weights. ``probes`` is the denominator basis on a dense grid: a step whose Q changes
    sign there (a pole in the domain) is never kept."""
    n, split = len(target), numerator.shape[1]
    weights = np.full(n, 1.0 / n)
    previous = np.ones(n)
    best, best_err, stale = None, math.inf, 0
    for _ in range(RATIONAL_STEPS):
        row = scale / previous
        a = np.hstack([numerator, -target[:, None] * denominator[:, 1:]]) * row[:, None]
        root = np.sqrt(weights)
        coef, *_ = np.linalg.lstsq(a * root[:, None], target * row * root, rcond=None)
        if not np.all(np.isfinite(coef)):
            break
        den_coef = np.concatenate([[1.0], coef[split:]])
        den = denominator @ den_coef
        if not (np.all(den > 0) and np.all(probes @ den_coef > 0)):
            break
        residual = np.abs((numerator @ coef[:split]) / den - target) * scale
        err = float(residual.max())
        if not math.isfinite(err):
            break
        stale = 0 if err < 0.999 * best_err else stale + 1
        if err < best_err:
            best, best_err = (coef[:split], den_coef), err
        if stale >= 4:
            break
        weights = weights * residual
        total = weights.sum()
        if not total > 0:
            break
        weights /= total
        previous = den
    if best is None:
        return np.zeros(split), np.zeros(denominator.shape[1]), math.inf
    return best[0], best[1], best_err


def _domain_of_u(x, lo, hi, shift, variable):
    """v and u at the points, the domains of v and u, and the middle of v's domain."""
    v = x - lo if shift else x
    vlo, vhi = (0.0, hi - lo) if shift else (lo, hi)
    mid = 0.5 * (vlo + vhi)
    if variable == "v":
        return v, v, vlo, vhi, mid
    if variable == "v2":
        ulo = 0.0 if vlo <= 0 <= vhi else min(vlo * vlo, vhi * vhi)
        return v, v * v, ulo, max(vlo * vlo, vhi * vhi), mid
    return v, v - mid, vlo - mid, vhi - mid, mid


def _power(cheb: np.ndarray, ulo: float, uhi: float) -> np.ndarray:
    power = np.polynomial.Chebyshev(cheb, domain=[ulo, uhi]).convert(kind=np.polynomial.Polynomial).coef
    return np.concatenate([power, np.zeros(len(cheb) - len(power))])


def _fit_rational(x, ref, scale, lo, hi, shift, variable, outer, degree, denominator):
    """Power-basis coefficients of P and Q in u (lowest first) and the float64 model's max error."""
    v, u, ulo, uhi, mid = _domain_of_u(x, lo, hi, shift, variable)
    if not uhi > ulo:
        return None
    factor = {"none": np.ones_like(v), "mul_v": v, "v_plus_vr": v, "v_plus_v3r": v * u}[outer]
    rest = ref - v if outer in ("v_plus_vr", "v_plus_v3r") else ref
    t = (2 * u - (uhi + ulo)) / (uhi - ulo)
    numerator = np.polynomial.chebyshev.chebvander(t, degree) * factor[:, None]
    den_basis = np.polynomial.chebyshev.chebvander(t, denominator)
    probes = np.polynomial.chebyshev.chebvander(np.linspace(-1.0, 1.0, POLE_PROBES), denominator)
    num_cheb, den_cheb, err = _sk_lawson(numerator, den_basis, rest, scale, probes)
    if not math.isfinite(err):
        return None
    num, den = _power(num_cheb, ulo, uhi), _power(den_cheb, ulo, uhi)
    # Q scaled to just below 2 at its largest: its values sit high in their binades, where a
    # rounding is the smallest relative error (Q > 0 on the domain)
    norm = float((probes @ den_cheb).max()) / QUOTIENT_TOP
    return (float(mid), num / norm, den / norm), err


def _fit_form(x, ref, scale, lo, hi, shift, variable, outer, degree):
    """Power-basis coefficients of P in u (lowest first) and the float64 model's max error."""
    v = x - lo if shift else x
    vlo, vhi = (0.0, hi - lo) if shift else (lo, hi)
    mid = 0.5 * (vlo + vhi)
    if variable == "v":
        u, ulo, uhi = v, vlo, vhi
    elif variable == "v2":
        u, ulo, uhi = (
            v * v,
            (0.0 if vlo <= 0 <= vhi else min(vlo * vlo, vhi * vhi)),
            max(vlo * vlo, vhi * vhi),
        )
    else:
        u, ulo, uhi = v - mid, vlo - mid, vhi - mid
    if not uhi > ulo:
        return None
    factor = {"none": np.ones_like(v), "mul_v": v, "v_plus_vr": v, "v_plus_v3r": v * u}[outer]
    rest = ref - v if outer in ("v_plus_vr", "v_plus_v3r") else ref
    t = (2 * u - (uhi + ulo)) / (uhi - ulo)
    basis = np.polynomial.chebyshev.chebvander(t, degree) * factor[:, None]
    cheb, err = _lawson(basis, rest, scale)
    if not math.isfinite(err):
        return None
    series = np.polynomial.Chebyshev(cheb, domain=[ulo, uhi])
    power = series.convert(kind=np.polynomial.Polynomial).coef
    power = np.concatenate([power, np.zeros(degree + 1 - len(power))])
    return (float(mid), power), err


def _program(
    shift, variable, outer, coefficients, mid, lo, fused, dtype, denominator=(), offset=None
) -> Program | None:
    """The Horner evaluation of a fitted form (``mid`` is the middle of the domain of v), with
    ``denominator`` the coefficients of Q for a rational P(u)/Q(u), evaluated as
    ``offset + u*(P(u)/Q(u))`` when an offset is given."""
    build = ProgramBuilder(dtype)
    body, const, emit = build.body, build.const, build.emit

    consts = [const(c) for c in coefficients]
    den_consts = [const(c) for c in denominator]
    lo_c, mid_c = const(lo), const(mid + lo if shift else mid)  # u = v - mid is computed as x - mid_x
    offset_c = None if offset is None else const(offset)
    if any(c is None for c in consts + den_consts) or lo_c is None or mid_c is None:
        return None
    if offset is not None and offset_c is None:
        return None
    v: Operand = emit("sub", Ref(0), lo_c) if shift else Ref(0)
    u: Operand = (
        v if variable == "v" else emit("mul", v, v) if variable == "v2" else emit("sub", Ref(0), mid_c)
    )

    def horner(cs: list) -> Operand:
        r: Operand = cs[-1]
        for c in reversed(cs[:-1]):
            r = emit("fma", r, u, c) if fused else emit("add", emit("mul", r, u), c)
        return r

    r = horner(consts)
    if den_consts:
        r = emit("div", r, horner(den_consts))
        if offset_c is not None:
            r = emit("fma", u, r, offset_c)
    if outer == "none":
        p = r
    elif outer == "mul_v":
        p = emit("mul", v, r)
    else:
        w = v if outer == "v_plus_vr" else emit("mul", v, u)
        p = emit("fma", w, r, v) if fused else emit("add", v, emit("mul", w, r))
    if isinstance(p, Const):
        return None
    return Program(tuple(body), p, dtype).pruned()


def _program_error(program: Program, x: np.ndarray, ref: np.ndarray, scale: np.ndarray) -> float:
    """Max error of the program as it runs (rounding included): forms of equal model error differ
    here, e.g. v + v*P(u) rounds less than v*P(u) when P is near 1."""
    with np.errstate(all="ignore"):
        y = evaluate(program, x.astype(get_format(program.dtype).dtype)).astype(np.float64)
        err = np.abs(y - ref) * scale
    return float(err.max()) if np.all(np.isfinite(err)) else math.inf


def _rational_seeds(
    x, ref, scale, lo, hi, shift, variable, outer, fused, max_ops, dtype, judge
) -> list[ClassicalSeed]:
    """The rational forms P(u)/Q(u) of one (shift, variable, outer) within ``max_ops``."""
    seeds = []
    for denominator in range(1, MAX_DENOMINATOR + 1):
        for degree in range(MAX_DEGREE + 1):
            count = form_op_count(shift, variable, outer, degree, fused, denominator)
            if count > max_ops or len(x) <= 2 * (degree + denominator + 1):
                break
            fitted = _fit_rational(x, ref, scale, lo, hi, shift, variable, outer, degree, denominator)
            if fitted is None:
                continue
            (mid, numerator, den), err = fitted
            offsets = fused and variable != "v-mid" and degree >= max(1, denominator) and den[0] > 0
            for offset in (False, True) if offsets else (False,):
                if offset:  # N/Q = c + u*P/Q with c = N(0)/Q(0): the same rational, the same op
                    # count, rounding less where the constant dominates
                    c = numerator[0] / den[0]
                    numerator_of_p, c_value = (numerator - c * np.pad(den, (0, degree - denominator)))[1:], c
                else:
                    numerator_of_p, c_value = numerator, None
                program = _program(
                    shift, variable, outer, numerator_of_p, mid, lo, fused, dtype, den, c_value
                )
                if program is None or program.op_count() > max_ops or not program.body:
                    continue
                error = judge(program)
                seeds.append(
                    ClassicalSeed(shift, variable, outer, degree, err, program, error, denominator, offset)
                )
            if err < SATURATED:
                break
    return seeds


def _value_at_zero(v: np.ndarray, ref: np.ndarray) -> float:
    """f where v = 0: the point's own reference, else a local cubic through the nearest points."""
    nearest = np.argsort(np.abs(v), kind="stable")[:8]
    if v[nearest[0]] == 0.0:
        return float(ref[nearest[0]])
    if len(nearest) < 4:
        return math.nan
    return float(np.polyval(np.polyfit(v[nearest], ref[nearest], 3), 0.0))


def _fit_reciprocal(
    u: np.ndarray,
    w: np.ndarray,
    rest: np.ndarray,
    scale: np.ndarray,
    ulo: float,
    uhi: float,
    powers,
    fixed: tuple[tuple[int, float], ...] = (),
) -> tuple[np.ndarray, float] | None:
    """Coefficients (power basis in u, over ``powers``) of R with w/R(u) ~ rest in units of 1/scale,
    and the model's max error: Sanathanan-Koerner steps on the linear error (w - rest*R)/R_prev
    with Lawson's weights; a step where R changes sign in [ulo, uhi] (a pole) is never kept.
    ``fixed`` holds (power, coefficient) pairs that are not fitted (already made floats)."""
    span = max(abs(ulo), abs(uhi))
    held = dict(fixed)
    free = [j for j in powers if j not in held]
    if not free:
        return None
    exponents = np.asarray(free)
    basis = (u / span)[:, None] ** exponents[None, :]
    grid = np.linspace(ulo, uhi, POLE_PROBES)
    probes = (grid / span)[:, None] ** exponents[None, :]
    r_held = sum((value * u**j for j, value in held.items()), np.zeros_like(u))
    probes_held = sum((value * grid**j for j, value in held.items()), np.zeros_like(grid))
    n = len(rest)
    weights, previous = np.full(n, 1.0 / n), np.ones(n)
    best, best_err, stale = None, math.inf, 0
    for _ in range(RATIONAL_STEPS):
        row = scale / np.abs(previous)
        root = np.sqrt(weights)
        coef, *_ = np.linalg.lstsq(
            basis * (rest * row * root)[:, None], (w - rest * r_held) * row * root, rcond=None
        )
        if not np.all(np.isfinite(coef)):
            break
        r, at_probes = basis @ coef + r_held, probes @ coef + probes_held
        sign = np.sign(at_probes[0])
        if not (sign != 0 and np.all(r * sign > 0) and np.all(at_probes * sign > 0)):
            break
        residual = np.abs(w / r - rest) * scale
        err = float(residual.max())
        if not math.isfinite(err):
            break
        stale = 0 if err < 0.999 * best_err else stale + 1
        if err < best_err:
            best, best_err = coef / span**exponents, err
        if stale >= 4:
            break
        weights = weights * residual
        total = weights.sum()
        if not total > 0:
            break
        weights /= total
        previous = r
    if best is None:
        return None
    values = dict(zip(free, best, strict=True)) | held
    return np.array([values[j] for j in powers]), best_err


def _reciprocal_error(coef, powers, u, w, rest, scale) -> float:
    """Max error of the model w/R(u) ~ rest (R over ``powers``, power basis) in units of 1/scale."""
    r = (u[:, None] ** np.asarray(powers)[None, :]) @ coef
    with np.errstate(all="ignore"):
        err = float((np.abs(w / r - rest) * scale).max())
    return err if math.isfinite(err) else math.inf


def _rounding_aware_fit(u, w, rest, scale, ulo, uhi, powers, budget, err):
    """Reciprocal fits that leave room for the program's rounding: the weighted minimax fit of
    |w/R - rest| <= T - budget(x) with the smallest bound T (bisection on T: the weighted error is
    at most 1 exactly when T is reachable), then a few looser bounds (``AWARE_SLACK``; the budget
    is a worst case that the roundings together rarely reach). ``budget`` is the rounding budget
    of the plainly fitted program at the points (``evo.roundingbudget``), ``err`` its model error:
    the plain fit reaches T = max budget + err, so the bisection runs between max budget and that.
    The coefficients of each reachable bound, tightest first."""
    low = float(budget.max())
    high = top = low + err
    tightest = None
    for _ in range(BISECTIONS):
        bound = 0.5 * (low + high)
        fitted = _fit_reciprocal(u, w, rest, scale / (bound - budget), ulo, uhi, powers)
        if fitted is not None and fitted[1] <= 1.0:
            high, tightest = bound, fitted[0]
        else:
            low = bound
    if tightest is None:
        return []
    found = [tightest]
    for slack in AWARE_SLACK:
        fitted = _fit_reciprocal(u, w, rest, scale / (high + slack * (top - high) - budget), ulo, uhi, powers)
        if fitted is not None:
            found.append(fitted[0])
    return found


def _reciprocal_of(n, powers, form, c, lo, skip, fused, dtype, order, coef) -> Program | None:
    """The program of R's coefficients ``coef`` (over ``powers``): Q = R/R_n monic, K = 1/R_n."""
    full = np.zeros(n + 1)
    full[powers] = coef
    top = full[n]
    if not (math.isfinite(top) and top != 0.0):
        return None
    shift, variable, numer, addend = form
    return _reciprocal_program(
        shift, variable, numer, addend, full / top, 1.0 / top, c, lo, skip, fused, dtype, order
    )


def _reciprocal_program(
    shift, variable, numer, addend, monic, k, c, lo, skip, fused, dtype, order="w/Q"
) -> Program | None:
    """``addend + k * (w / Q(u))`` (``order`` "w/Q") or ``addend + w * (k / Q(u))`` ("k/Q") with Q
    monic (``monic`` lowest first, top coefficient 1) by Horner's rule from ``u + q[n-1]``, or from
    ``u*u + q[n-2]`` when ``skip`` (no u^(n-1) term)."""
    build = ProgramBuilder(dtype)
    body, const, emit = build.body, build.const, build.emit

    def madd(a: Operand, b: Operand, addend: Operand) -> Ref:
        return emit("fma", a, b, addend) if fused else emit("add", emit("mul", a, b), addend)

    n = len(monic) - 1
    consts = [const(q) for q in monic[:-1]]
    lo_c, k_c, c_c = const(lo), const(k), const(c)
    if any(q is None for q in consts) or lo_c is None or k_c is None or c_c is None:
        return None
    v: Operand = emit("sub", Ref(0), lo_c) if shift else Ref(0)
    u: Operand = v if variable == "v" else emit("mul", v, v)
    w: Operand = {"v": v, "u": u}.get(numer) or emit("mul", v, u)
    if skip:
        q: Operand = madd(u, u, consts[n - 2])
        rest = consts[: n - 2]
    else:
        q = emit("add", u, consts[n - 1])
        rest = consts[: n - 1]
    for coefficient in reversed(rest):
        q = madd(q, u, coefficient)
    # the same op count either way; they differ in where the quotient sits in its binade
    quotient, factor = (emit("div", w, q), k_c) if order == "w/Q" else (emit("div", k_c, q), w)
    if addend == "v":
        out = madd(quotient, factor, v)
    elif c == 0.0:
        out = emit("mul", quotient, factor)
    else:
        out = madd(quotient, factor, c_c)
    return Program(tuple(body), out, dtype).pruned()


# A + K*(w/Q) or A + w*(K/Q): the same ops, a quotient in another binade (and so another rounding)
RECIPROCAL_ORDERS = ("w/Q", "k/Q")
ROUNDING_ROOM = 4.0  # a fit's model error below this many rounding budgets: it refits leaving them room
BISECTIONS = 8  # steps of the search for the smallest reachable bound of a rounding-aware fit
AWARE_SLACK = (0.125, 0.25, 0.5)  # looser bounds tried too, as fractions of the way to the plain fit's
SETTLE_BUDGET = 400  # worst-case evaluations per program to move its constants among floats
RECIPROCAL_FORMS = (  # (variable, numerator w, addend A) of A + K*w/Q(u)
    ("v", "v", "c"),
    ("v", "v", "v"),
    ("v2", "v", "c"),
    ("v2", "u", "c"),
    ("v2", "vu", "c"),
    ("v2", "v", "v"),
    ("v2", "vu", "v"),
)


def _reciprocal_seeds(x, ref, scale, lo, hi, shift, fused, ops, max_ops, dtype, judge) -> list[ClassicalSeed]:
    """The reciprocal forms A + K*w/Q(u), Q monic: R = Q/K is a polynomial fit to w/(f - A).

    A is f(v = 0) (a constant) or v, w one of v, u, v*u. The monic Q and the final fma's K cost
    one op less than a rational with its leading coefficient, and Horner's first step u*u + q
    drops the u^(n-1) term for free: where w/(f - A) has no such term, Q of degree n costs n - 1
    ops. 2^x = 1 + x/R(x) with R ~ x/(2^x - 1), which is even but for its linear term
    (x/(e^x - 1) + x/2 is even), is the example: R of degree 4 without x^3 in 3 ops, 5 ops in all
    (one fewer than the polynomial under 1 ULP on [-1/2, 1/2]).
    """
    if "div" not in ops or not ({"fma"} <= set(ops) or {"mul", "add"} <= set(ops)):
        return []
    seeds = []
    for variable, numer, addend in RECIPROCAL_FORMS:
        needs = {"add"} | ({"mul"} if variable == "v2" or numer == "vu" else set())
        if shift:
            needs.add("sub")
        if not needs <= set(ops):
            continue
        v, u, ulo, uhi, _ = _domain_of_u(x, lo, hi, shift, variable)
        vlo, vhi = (0.0, hi - lo) if shift else (lo, hi)
        if not (uhi > ulo and vlo <= 0.0 <= vhi):
            continue
        c = _value_at_zero(v, ref) if addend == "c" else 0.0
        if not math.isfinite(c):
            continue
        c = float(get_format(dtype).dtype.type(c))
        base = v if addend == "v" else np.full_like(v, c)
        w = {"v": v, "u": u, "vu": v * u}[numer]
        rest = ref - base
        for skip in (False, True):
            for n in range(2 if skip else 1, MAX_DEGREE + 1):
                powers = [j for j in range(n + 1) if not (skip and j == n - 1)]
                if len(x) <= 2 * len(powers):
                    break
                fitted = _fit_reciprocal(u, w, rest, scale, ulo, uhi, powers)
                if fitted is None:
                    continue
                coef, err = fitted
                a = "v" if addend == "v" else f"{c:.9g}"
                w_label = {"v": "v", "u": "u", "vu": "v*u"}[numer]
                too_long = False
                for order in RECIPROCAL_ORDERS:
                    build = partial(
                        _reciprocal_of,
                        n,
                        powers,
                        (shift, variable, numer, addend),
                        c,
                        lo,
                        skip,
                        fused,
                        dtype,
                        order,
                    )
                    program = build(coef)
                    if program is None or not program.body:
                        continue
                    if program.op_count() > max_ops:
                        too_long = True
                        break
                    found = [(program, err, False)]
                    budget = rounding_budget(program, x, scale)
                    if err < ROUNDING_ROOM * float(budget.max()):
                        # the model error is of the size of the roundings: fit leaving them room,
                        # move the constants among floats, keep the lowest worst case
                        aware = [(program, coef)] + [
                            (build(c_), c_)
                            for c_ in _rounding_aware_fit(u, w, rest, scale, ulo, uhi, powers, budget, err)
                        ]
                        settled = [
                            (*settled_constants(p_, x, ref, scale, budget=SETTLE_BUDGET), c_)
                            for p_, c_ in aware
                            if p_ is not None and p_.body
                        ]
                        if settled:
                            best_p, _, best_c = min(settled, key=lambda t: t[1])
                            model_error = _reciprocal_error(best_c, powers, u, w, rest, scale)
                            found.append((best_p, model_error, True))
                    for program, model_error, aware in found:
                        seeds.append(
                            ClassicalSeed(
                                shift,
                                variable,
                                "reciprocal",
                                0,
                                model_error,
                                program,
                                judge(program),
                                n,
                                False,
                                a,
                                w_label,
                                skip,
                                order,
                                aware,
                            )
                        )
                if too_long:
                    break
                if err < SATURATED:
                    break
    return seeds


def classical_seeds(
    x: np.ndarray,
    ref: np.ndarray,
    scale: np.ndarray,
    ops: tuple[str, ...],
    max_ops: int,
    dtype: str = "float32",
    per_cost: int = 2,
) -> list[ClassicalSeed]:
    """The best ``per_cost`` classical polynomials and rationals of every op count up to ``max_ops``.

    ``x`` are the search points, ``ref`` f(x) in float64 and ``scale`` the inverse error unit at
    each point (1/ulp or 1/|f|). Seeds are ordered by op count, then model error.
    """
    x = np.asarray(x, dtype=np.float64)
    ref, scale = np.asarray(ref, dtype=np.float64), np.asarray(scale, dtype=np.float64)
    keep = np.isfinite(ref) & np.isfinite(scale) & np.isfinite(x)
    x, ref, scale = x[keep], ref[keep], scale[keep]
    if len(x) < 2:
        return []
    order = np.argsort(x, kind="stable")

    every = (x, ref, scale)

    def judge(program: Program) -> float:  # on every search point: rounding shows in the tail
        return _program_error(program, *every)

    if len(x) > FIT_POINTS:
        order = order[np.unique(np.linspace(0, len(x) - 1, FIT_POINTS).round().astype(np.int64))]
    x, ref, scale = x[order], ref[order], scale[order]
    lo, hi = float(x[0]), float(x[-1])
    fused = "fma" in ops
    shifts = (False,) if lo <= 0.0 <= hi else (False, True)
    by_cost: dict[int, list[ClassicalSeed]] = {}
    for shift in shifts:
        for seed in _reciprocal_seeds(x, ref, scale, lo, hi, shift, fused, ops, max_ops, dtype, judge):
            by_cost.setdefault(seed.program.op_count(), []).append(seed)
        for variable in VARIABLES:
            for outer in OUTERS:
                if not _allowed(shift, variable, outer, ops):
                    continue
                for degree in range(0 if outer != "none" and variable == "v" else 1, MAX_DEGREE + 1):
                    count = form_op_count(shift, variable, outer, degree, fused)
                    if count > max_ops:
                        break
                    if len(x) <= degree + 1:
                        break
                    fitted = _fit_form(x, ref, scale, lo, hi, shift, variable, outer, degree)
                    if fitted is None:
                        continue
                    (mid, coefficients), err = fitted
                    program = _program(shift, variable, outer, coefficients, mid, lo, fused, dtype)
                    if program is None or program.op_count() > max_ops or not program.body:
                        continue
                    seed = ClassicalSeed(shift, variable, outer, degree, err, program, judge(program))
                    by_cost.setdefault(program.op_count(), []).append(seed)
                    if err < SATURATED:  # far below float rounding: higher degrees add nothing
                        break
                if "div" in ops:
                    for seed in _rational_seeds(
                        x, ref, scale, lo, hi, shift, variable, outer, fused, max_ops, dtype, judge
                    ):
                        by_cost.setdefault(seed.program.op_count(), []).append(seed)
    seeds: list[ClassicalSeed] = []
    for count in sorted(by_cost):
        kept: list[ClassicalSeed] = []
        for kind in (0, 1, 2):  # ``per_cost`` of each kind (polynomial, rational, reciprocal): the
            # best as evaluated need not be the best on every float (rounding), so all start the search
            ranked = sorted(
                (s for s in by_cost[count] if s.kind == kind),
                key=lambda s: (s.error, s.model_error, s.label),
            )
            hashes: set[str] = set()
            for seed in ranked:
                h = seed.program.canonical_hash()
                if h not in hashes and len(hashes) < per_cost:
                    hashes.add(h)
                    kept.append(seed)
        seeds.extend(sorted(kept, key=lambda s: (s.error, s.model_error, s.label)))
    return seeds
