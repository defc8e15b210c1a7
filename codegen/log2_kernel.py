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

# The same coefficients as LOG2_KERNEL: y = t + t*(c0 + t*(c1 + t*w)), w = E(t^2) + t*O(t^2) with
# E = c2 + c4 s + c6 s^2 + c8 s^3 and O = c3 + c5 s + c7 s^2 + c9 s^3 (s = t*t).
LOG2_KERNEL_SPLIT_TEXT = """\
# evo program (float32)
t1 = sub(x, 0x1p+0)
t2 = mul(t1, t1)
t3 = fma(0x1.7dab64p-3, t2, 0x1.a2f4d2p-3)
t4 = fma(t3, t2, 0x1.277eb8p-2)
t5 = fma(t4, t2, 0x1.ec708cp-2)
t6 = fma(-0x1.c2ba36p-4, t2, -0x1.875d0ep-3)
t7 = fma(t6, t2, -0x1.eab9fap-3)
t8 = fma(t7, t2, -0x1.715a86p-2)
t9 = fma(t1, t8, t5)
t10 = fma(t1, t9, -0x1.71547p-1)
t11 = fma(t1, t10, 0x1.c551dap-2)
t12 = fma(t1, t11, t1)
return t12
"""

LOG2_KERNEL_SPLIT = parse_text(LOG2_KERNEL_SPLIT_TEXT)

# The same coefficients as LOG2_KERNEL_DEG8: y = t + t*q, q = E(t^2) + t*O(t^2) with
# E = c0 + c2 s + c4 s^2 + c6 s^3 + c8 s^4 and O = c1 + c3 s + c5 s^2 + c7 s^3.
LOG2_KERNEL_DEG8_SPLIT_TEXT = """\
# evo program (float32)
t1 = sub(x, 0x1p+0)
t2 = mul(t1, t1)
t3 = fma(0x1.00aa1cp-3, t2, 0x1.ba269ap-3)
t4 = fma(t3, t2, 0x1.26d02ep-2)
t5 = fma(t4, t2, 0x1.ec73e6p-2)
t6 = fma(t5, t2, 0x1.c551d6p-2)
t7 = fma(-0x1.a89284p-3, t2, -0x1.e95c8ap-3)
t8 = fma(t7, t2, -0x1.715c38p-2)
t9 = fma(t8, t2, -0x1.715472p-1)
t10 = fma(t1, t9, t6)
t11 = fma(t1, t10, t1)
return t11
"""

LOG2_KERNEL_DEG8_SPLIT = parse_text(LOG2_KERNEL_DEG8_SPLIT_TEXT)
