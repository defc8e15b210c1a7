"""The built-in targets: the reduced domains of the classical anchors, with short aliases."""

from __future__ import annotations

from targets.expr import parse_expression
from targets.poles import check_exact_poles
from targets.reference import check_real_and_finite
from targets.target import Target, TargetError, make_target, parse_domain

BUILTIN_TARGETS: tuple[Target, ...] = (
    Target("exp2_0_1", "2**x", "0", "1", "2^x on [0, 1]", "exp2", "exp2_0_1"),
    Target("exp2_m05_05", "2**x", "-1/2", "1/2", "2^x on [-0.5, 0.5]", "exp2", "exp2_m05_05"),
    Target("exp_ln2h", "exp(x)", "-log(2)/2", "log(2)/2", "e^x on [-ln2/2, ln2/2]", "exp", "exp_ln2h"),
    Target("log2_1_2", "log(x)/log(2)", "1", "2", "log2(x) on [1, 2]", "log2", "log2_1_2"),
    Target("sin_pi4", "sin(x)", "-pi/4", "pi/4", "sin(x) on [-pi/4, pi/4]", "sin", "sin_pi4"),
    Target("cos_pi4", "cos(x)", "-pi/4", "pi/4", "cos(x) on [-pi/4, pi/4]", "cos", "cos_pi4"),
    Target("erf_0_1", "erf(x)", "0", "1", "erf(x) on [0, 1]", "erf", "erf_0_1"),
    Target("tanh_0_1", "tanh(x)", "0", "1", "tanh(x) on [0, 1]", "tanh", "tanh_0_1"),
)

ALIASES: dict[str, str] = {
    "exp2": "exp2_0_1",
    "exp": "exp_ln2h",
    "log2": "log2_1_2",
    "sin": "sin_pi4",
    "cos": "cos_pi4",
    "erf": "erf_0_1",
    "tanh": "tanh_0_1",
}

_BY_NAME = {t.name: t for t in BUILTIN_TARGETS}


def target_names() -> list[str]:
    return [t.name for t in BUILTIN_TARGETS]


def get_target(name: str, domain: str | None = None) -> Target:
    """A built-in target by name or alias, optionally moved to another domain (``"lo,hi"``)."""
    key = ALIASES.get(name, name)
    if key not in _BY_NAME:
        known = ", ".join(sorted([*_BY_NAME, *ALIASES]))
        raise TargetError(f"unknown target {name!r} (known: {known}; or use an expression)")
    target = _BY_NAME[key]
    if domain is not None:
        lo, hi = parse_domain(domain)
        target = checked_target(target.expr, lo, hi, name=f"{key}_custom", fast_ref=target.fast_ref)
    return target


def expression_target(expr: str, domain: str, name: str | None = None) -> Target:
    """A user target: an expression in x on ``"lo,hi"`` (validated: see ``checked_target``)."""
    lo, hi = parse_domain(domain)
    return checked_target(expr, lo, hi, name=name)


def checked_target(
    expr: str, lo_text: str, hi_text: str, name: str | None = None, fast_ref: str | None = None
) -> Target:
    """A target built by ``make_target`` whose function is also real and finite on a probe set of
    the domain and has no exact rational pole at a float of it (else a TargetError)."""
    target = make_target(expr, lo_text, hi_text, name=name, fast_ref=fast_ref)
    check_real_and_finite(target)
    check_exact_poles(target, parse_expression(expr))
    return target
