"""Exact poles at floats: zeros of polynomial denominators (and log arguments) that are floats of the domain.

Probing a domain at a few dozen points misses a pole at one float (``1/(x - c)`` with ``c`` a
float32). Where it is affordable, the zeros are found exactly instead: every base of a negative
power and every argument of ``log`` that is a polynomial in ``x`` with rational coefficients is
factored over the rationals, and a rational zero that is a float32 or float64 inside the domain is
refused. Other singular points are left to the probes and to the reference pass over the final set
(``targets.dataset.build_sweep``).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import sympy

from primitives.floatbits import FLOAT32, FLOAT64, format_hex
from targets.errors import TargetError
from targets.expr import X

MAX_DEGREE = 32
MAX_COEFFICIENT_BITS = 256


def singular_arguments(expr: sympy.Expr) -> list[sympy.Expr]:
    """Sub-expressions whose zeros make ``expr`` undefined: bases of negative powers, log arguments."""
    found = []
    for node in sympy.preorder_traversal(expr):
        if (
            isinstance(node, sympy.Pow)
            and node.args[1].is_number
            and node.args[1].is_negative
            or isinstance(node, sympy.log | sympy.loggamma | sympy.gamma)
        ):
            found.append(node.args[0])
    return found


def rational_zeros(expr: sympy.Expr) -> list[Fraction]:
    """The rational zeros of ``expr`` when it is a small polynomial in x with rational coefficients
    (or the absolute value of one)."""
    while isinstance(expr, sympy.Abs):
        expr = expr.args[0]
    if not expr.has(X) or not expr.is_polynomial(X):
        return []
    try:
        poly = sympy.Poly(expr, X)
    except sympy.PolynomialError:
        return []
    if poly.degree() > MAX_DEGREE or not poly.domain.is_QQ and not poly.domain.is_ZZ:
        return []
    coefficients = poly.all_coeffs()
    if any(
        max(abs(sympy.Rational(c).p).bit_length(), sympy.Rational(c).q.bit_length()) > MAX_COEFFICIENT_BITS
        for c in coefficients
    ):
        return []
    zeros = []
    for factor, _ in poly.factor_list()[1]:
        if factor.degree() == 1:
            a, b = factor.all_coeffs()
            root = -sympy.Rational(b) / sympy.Rational(a)
            zeros.append(Fraction(int(root.p), int(root.q)))
    return zeros


def _is_float(value: Fraction, dtype) -> bool:
    as_float = float(value)
    return np.isfinite(as_float) and Fraction(float(dtype(as_float))) == value


def check_exact_poles(target, expr: sympy.Expr | None = None) -> None:
    """Refuse (TargetError) a target with an exact rational singular point at a float of its domain."""
    expr = target.sympy_expr() if expr is None else expr
    lo, hi = target.domain(FLOAT64)
    bad = []
    for argument in singular_arguments(expr):
        for zero in rational_zeros(argument):
            if Fraction(lo) <= zero <= Fraction(hi) and _is_float(zero, np.float64):
                bad.append(zero)
    if bad:
        x = float(min(bad))
        fmt = FLOAT32 if _is_float(min(bad), np.float32) else FLOAT64
        raise TargetError(
            f"{target.expr} is not finite at x = {format_hex(x, fmt)} ({x!r}), a {fmt.name} of the domain"
        )
