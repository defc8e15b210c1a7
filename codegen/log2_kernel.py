"""The log2 kernel on [sqrt(2)/2, sqrt(2)] that ``log2f`` wraps.

No classical anchor covers this interval (the anchors' log2 is on [1, 2], where a full-range log2f
loses all relative accuracy just below 1), so it was made with evo itself: the form
t + t*q(t), t = x - 1 (exact), q of degree 9 in Horner form with fma, its float32 constants fitted by
the search's constant fitter (float64 minimax, then float32 polish) on the target
``log(x)/log(2)`` on ``sqrt(2)/2, sqrt(2)``. Measured over every float32 of that interval
(8,388,609 points): 0.9704 ULP.

The lower tiers have the same form with q of lower degree, fitted the same way (evo's Evaluator
constant fit, 80 Levenberg-Marquardt iterations on 2,048 points, then a float32 polish, on the
target above), and scored on every float32 of the interval: degree 8, 1.3442 ULP
(``LOG2_KERNEL_DEG8``); degree 7 reaches only 4.9994 ULP and degree 6 18.81, so degree 8 also
serves the 4-ULP tier.

The shipped tiers evaluate the same polynomials in a split order (``LOG2_KERNEL_SPLIT``,
``LOG2_KERNEL_DEG8_SPLIT``): the array loop is bound by the dependency chain of Horner's rule
(eleven fma/sub steps per input), not by the FMA ports, so a shorter chain is faster even with one
more operation (a multiply for t^2). The high-order part is split into its even and odd halves in
t^2, evaluated side by side; the low-order part, whose roundings decide the error, keeps Horner's
order. For the 1-ULP tier the last two Horner steps stay (u = c1 + t*w, q = c0 + t*u): 0.9821 ULP
over all 2^32 inputs of the full-range function (a split after c0 only: 1.343 ULP). The 2- and 4-ULP
tier splits right after c0 (q = E(t^2) + t*O(t^2)), its chain is shortest: 1.744 ULP.
"""

from __future__ import annotations

from primitives.floatbits import bits_to_float, format_hex
from primitives.program import Program
from primitives.textform import parse_text

LOG2_KERNEL_TEXT = """\
# evo program (float32)
t1 = sub(x, 0x1p+0)
t2 = fma(-0x1.c2ba36p-4, t1, 0x1.7dab64p-3)
t3 = fma(t2, t1, -0x1.875d0ep-3)
t4 = fma(t3, t1, 0x1.a2f4d2p-3)
t5 = fma(t4, t1, -0x1.eab9fap-3)
t6 = fma(t5, t1, 0x1.277eb8p-2)
t7 = fma(t6, t1, -0x1.715a86p-2)
t8 = fma(t7, t1, 0x1.ec708cp-2)
t9 = fma(t8, t1, -0x1.71547p-1)
t10 = fma(t9, t1, 0x1.c551dap-2)
t11 = fma(t1, t10, t1)
return t11
"""

LOG2_KERNEL = parse_text(LOG2_KERNEL_TEXT)

LOG2_KERNEL_DEG8_TEXT = """\
# evo program (float32)
t1 = sub(x, 0x1p+0)
t2 = fma(0x1.00aa1cp-3, t1, -0x1.a89284p-3)
t3 = fma(t2, t1, 0x1.ba269ap-3)
t4 = fma(t3, t1, -0x1.e95c8ap-3)
t5 = fma(t4, t1, 0x1.26d02ep-2)
t6 = fma(t5, t1, -0x1.715c38p-2)
t7 = fma(t6, t1, 0x1.ec73e6p-2)
t8 = fma(t7, t1, -0x1.715472p-1)
t9 = fma(t8, t1, 0x1.c551d6p-2)
t10 = fma(t1, t9, t1)
return t10
"""

LOG2_KERNEL_DEG8 = parse_text(LOG2_KERNEL_DEG8_TEXT)


def split_order(horner: Program, horner_tail: int) -> Program:
    """The Horner kernel y = t + t*q(t) (t = x - 1, q = c0 + c1 t + ... + cn t^n) with the same
    constants in a split order: w = c_k + c_{k+1} t + ... + cn t^(n-k) as E(s) + t*O(s) (s = t*t,
    E and O its even and odd halves, each by Horner's rule, side by side), then the last
    ``horner_tail`` = k steps q = c0 + t*(c1 + t*(... + t*w)) in Horner's order, then t + t*q."""
    one, *top_down = (format_hex(bits_to_float(bits)) for bits in horner.constants())
    coefficients = top_down[::-1]  # c0 .. cn
    high = coefficients[horner_tail:]
    even, odd = high[0::2], high[1::2]
    if min(len(even), len(odd)) < 2:
        raise ValueError("split_order needs at least two coefficients in each half")
    lines = ["# evo program (float32)", f"t1 = sub(x, {one})", "t2 = mul(t1, t1)"]

    def emit(expression: str) -> str:
        name = f"t{len(lines)}"  # the header line makes the count the next register's number
        lines.append(f"{name} = {expression}")
        return name

    def horner_in_s(half: list[str]) -> str:
        value = emit(f"fma({half[-1]}, t2, {half[-2]})")
        for c in reversed(half[:-2]):
            value = emit(f"fma({value}, t2, {c})")
        return value

    e, o = horner_in_s(even), horner_in_s(odd)
    value = emit(f"fma(t1, {o}, {e})")
    for c in reversed(coefficients[:horner_tail]):
        value = emit(f"fma(t1, {value}, {c})")
    lines.append(f"return {emit(f'fma(t1, {value}, t1)')}")
    return parse_text("\n".join(lines) + "\n")


# 1-ULP tier: the last two Horner steps stay (their roundings decide the error); 2 and 4 ULP: the
# split right after c0, the shortest chain.
LOG2_KERNEL_SPLIT = split_order(LOG2_KERNEL, horner_tail=2)
LOG2_KERNEL_DEG8_SPLIT = split_order(LOG2_KERNEL_DEG8, horner_tail=0)
