"""What we approximate: a real function of x (a sympy expression) on an interval of floats."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import sympy

from primitives.floatbits import FloatFormat, format_hex, get_format
from primitives.rounding import round_mpf
from targets import expr as expr_language
from targets.errors import TargetError
from targets.expr import X

__all__ = [
    "REFERENCE_BITS",
    "X",
    "Target",
    "TargetError",
    "make_target",
    "parse_constant",
    "parse_domain",
    "parse_expression",
]
REFERENCE_BITS = 128  # working precision of the mpmath references (raised where needed)


@dataclass(frozen=True, slots=True)
class Target:
    """A function to approximate on the floats of [lo, hi].

    Attributes:
        name: registry name (built-ins) or a user-chosen / derived name.
        expr: the function as sympy text in ``x`` (e.g. ``2**x``, ``erf(x)``).
        lo_text, hi_text: the domain endpoints as given (e.g. ``-pi/4``); the domain in a format is
            every float between the correctly rounded endpoints, both included.
        description: one line for listings.
        fast_ref: name of a float64 libm reference (``targets.fastref``) used for exhaustive sweeps,
            or None to derive one from the expression.
        anchor: key of the classical anchors measured for this target, if any.
    """

    name: str
    expr: str
    lo_text: str
    hi_text: str
    description: str = ""
    fast_ref: str | None = None
    anchor: str | None = None

    def sympy_expr(self) -> sympy.Expr:
        return parse_expression(self.expr)

    def domain(self, fmt: FloatFormat | str = "float32") -> tuple[float, float]:
        """The endpoints rounded to nearest in ``fmt``: every float between them is in the domain."""
        fmt = get_format(fmt) if isinstance(fmt, str) else fmt
        lo, hi = (round_mpf(parse_constant(t), fmt) for t in (self.lo_text, self.hi_text))
        return lo, hi

    def domain_text(self, fmt: FloatFormat | str = "float32") -> str:
        fmt = get_format(fmt) if isinstance(fmt, str) else fmt
        lo, hi = self.domain(fmt)
        return f"[{format_hex(lo, fmt)}, {format_hex(hi, fmt)}]"

    @property
    def key(self) -> str:
        """Identity of the mathematical problem (expression and domain), for caches and digests."""
        return f"{self.expr}|{self.lo_text}|{self.hi_text}"

    def mp_function(self) -> Callable:
        """f as an mpmath function of one mpf (evaluate inside ``mpmath.workprec``)."""
        return expr_language.mp_function(self.sympy_expr())


_ALLOWED_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")


def parse_expression(text: str) -> sympy.Expr:
    """Parse ``text`` as a real expression in ``x`` (the safe language of ``targets.expr``);
    TargetError with the reason otherwise."""
    return expr_language.parse_expression(text)


def parse_constant(text: str):
    """A domain endpoint (``0.5``, ``-pi/4``, ``ln(2)/2``) as an mpf, correctly rounded in float32
    and float64 (the language of ``targets.expr``, without ``x``)."""
    value = expr_language.parse_constant_expression(text)
    try:
        return expr_language.constant_value(value)
    except TargetError:
        raise TargetError(f"domain endpoint {str(text)!r} is not a finite real number") from None


def parse_domain(text: str) -> tuple[str, str]:
    """Split ``"a,b"`` into endpoint texts (``"-pi/4,pi/4"``, ``"[0, 1]"``)."""
    body = text.strip()
    if len(body) >= 2 and body[0] in "[(" and body[-1] in "])" and body.count(",") == 1:
        inner = body[1:-1]
        if inner.count("(") == inner.count(")"):  # "[a, b]" but not "sqrt(2)/2,sqrt(2)"
            body = inner
    parts = [p.strip() for p in _split_top_level(body)]
    if len(parts) != 2 or not all(parts):
        raise TargetError(f"domain {expr_language.show(text)} must be two endpoints 'lo,hi'")
    return parts[0], parts[1]


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses (so endpoints may call functions)."""
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        depth += (ch == "(") - (ch == ")")
        current.append(ch)
    parts.append("".join(current))
    return parts


def make_target(
    expr: str,
    lo_text: str,
    hi_text: str,
    name: str | None = None,
    description: str = "",
    fast_ref: str | None = None,
    anchor: str | None = None,
) -> Target:
    """A target whose expression parses and whose domain is non-empty and ordered in float32 and
    float64 (``targets.registry.checked_target`` adds the checks that need references).
    """
    parsed = parse_expression(expr)
    canonical = str(parsed)
    try:
        same = parse_expression(canonical) == parsed
    except TargetError:
        same = False
    if not same:  # Target.expr stores the canonical text: it must mean the same expression
        raise TargetError(
            f"expression {expr_language.show(expr)} simplifies to a form that cannot be stored "
            f"({expr_language.show(canonical)})"
        )
    for fmt_name in ("float32", "float64"):
        fmt = get_format(fmt_name)
        lo, hi = (round_mpf(parse_constant(t), fmt) for t in (lo_text, hi_text))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise TargetError(f"domain [{lo_text}, {hi_text}] is outside the {fmt_name} range")
        if lo > hi:
            raise TargetError(f"domain [{lo_text}, {hi_text}] is reversed (lo > hi)")
        if lo == hi:
            raise TargetError(f"domain [{lo_text}, {hi_text}] is empty (a single point in {fmt_name})")
    if name is None:
        import hashlib

        name = (
            "expr_" + hashlib.blake2b(f"{canonical}|{lo_text}|{hi_text}".encode(), digest_size=4).hexdigest()
        )
    if not _ALLOWED_NAME.match(name):
        raise TargetError(f"target name {name!r} may only use letters, digits and _ . + -")
    description = description or f"{canonical} on [{lo_text}, {hi_text}]"
    return Target(name, canonical, str(lo_text), str(hi_text), description, fast_ref, anchor)
