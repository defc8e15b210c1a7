"""The reduced-domain kernels of the shipped full-range functions, one per accuracy tier, with provenance.

A tier is a bound on the full-range error (1, 2 or 4 ULP, the tiers of SLEEF u10/u35 and MKL HA/LA);
its kernel is the cheapest one whose full-range function stays within the bound over all 2^32
float32 inputs (``evo fullrange FUNCTION --tier N`` re-checks it). Where a lower-degree kernel
cannot reach a looser bound, the looser tier ships the same kernel as the tighter one.

- exp2f, 2^x on [-1/2, 1/2]: the classical FMA Horner polynomials of the anchors (Sollya
  fpminimax), degree 6 for 1 ULP and degree 5 with c0 = 1 for 2 and 4 ULP (degree 4 is 42 ULP).
- expf, e^x on [-ln2/2, ln2/2]: the anchors' degree-6 and degree-5 FMA Horner polynomials with
  c0 = 1 (1 ULP; 2 and 4 ULP, at 1.981 ULP over the full range).
- log2f, log2 on [sqrt(2)/2, sqrt(2)]: evo's own fits (``codegen.log2_kernel``), degree 9 for
  1 ULP and degree 8 for 2 and 4 ULP (degree 7 is 5.0 ULP), evaluated in a split order whose
  dependency chain is shorter than Horner's (0.982 and 1.744 ULP over all 2^32 inputs).
"""

from __future__ import annotations

from dataclasses import dataclass

from codegen.log2_kernel import LOG2_KERNEL_DEG8_SPLIT, LOG2_KERNEL_SPLIT
from primitives.program import Program
from primitives.textform import parse_text

TIERS = (1, 2, 4)

EXP2_DEG6 = parse_text("""\
# evo program (float32)
t1 = fma(0x1.3f9068p-13, x, 0x1.5f0a66p-10)
t2 = fma(t1, x, 0x1.3b30bp-7)
t3 = fma(t2, x, 0x1.c6af78p-5)
t4 = fma(t3, x, 0x1.ebfbd8p-3)
t5 = fma(t4, x, 0x1.62e43p-1)
t6 = fma(t5, x, 0x1p+0)
return t6
""")  # anchor exp2_m05_05:horner:6:fma, 0.7996 ULP on its domain

EXP2_DEG5 = parse_text("""\
# evo program (float32)
t1 = fma(0x1.5bfd58p-10, x, 0x1.3ceaf8p-7)
t2 = fma(t1, x, 0x1.c6b69ap-5)
t3 = fma(t2, x, 0x1.ebf9bap-3)
t4 = fma(t3, x, 0x1.62e42ap-1)
t5 = fma(t4, x, 0x1p+0)
return t5
""")  # anchor exp2_m05_05:horner_c0=1:5:fma, 1.9680 ULP on its domain

EXP_DEG6 = parse_text("""\
# evo program (float32)
t1 = fma(0x1.686a4p-10, x, 0x1.123cf6p-7)
t2 = fma(t1, x, 0x1.555b82p-5)
t3 = fma(t2, x, 0x1.55548cp-3)
t4 = fma(t3, x, 0x1.fffff8p-2)
t5 = fma(t4, x, 0x1p+0)
t6 = fma(t5, x, 0x1p+0)
return t6
""")  # anchor exp_ln2h:horner_c0=1:6:fma, 0.7269 ULP on its domain

EXP_DEG5 = parse_text("""\
# evo program (float32)
t1 = fma(0x1.0f9f9cp-7, x, 0x1.573a1ap-5)
t2 = fma(t1, x, 0x1.555a8p-3)
t3 = fma(t2, x, 0x1.fffdc6p-2)
t4 = fma(t3, x, 0x1.fffff6p-1)
t5 = fma(t4, x, 0x1p+0)
return t5
""")  # anchor exp_ln2h:horner_c0=1:5:fma, 1.8784 ULP on its domain


@dataclass(frozen=True, slots=True)
class Tier:
    """A shipped full-range function: its error bound in ULPs, its kernel, and where the kernel comes from."""

    function: str
    bound: int
    kernel: Program
    provenance: str


_TABLE = {
    "exp2f": {
        1: (EXP2_DEG6, "anchor exp2_m05_05:horner:6:fma"),
        2: (EXP2_DEG5, "anchor exp2_m05_05:horner_c0=1:5:fma"),
        4: (EXP2_DEG5, "anchor exp2_m05_05:horner_c0=1:5:fma"),
    },
    "expf": {
        1: (EXP_DEG6, "anchor exp_ln2h:horner_c0=1:6:fma"),
        2: (EXP_DEG5, "anchor exp_ln2h:horner_c0=1:5:fma"),
        4: (EXP_DEG5, "anchor exp_ln2h:horner_c0=1:5:fma"),
    },
    "log2f": {
        1: (LOG2_KERNEL_SPLIT, "evo fit, degree 9, split evaluation"),
        2: (LOG2_KERNEL_DEG8_SPLIT, "evo fit, degree 8, even/odd evaluation"),
        4: (LOG2_KERNEL_DEG8_SPLIT, "evo fit, degree 8, even/odd evaluation"),
    },
}


def tier(function: str, bound: int = 1) -> Tier:
    """The shipped kernel of ``function`` ("exp2f", "expf", "log2f") for a ``bound``-ULP tier (1, 2 or 4)."""
    if function not in _TABLE:
        raise ValueError(f"unknown full-range function {function!r} (exp2f, expf, log2f)")
    if bound not in TIERS:
        raise ValueError(f"unknown accuracy tier {bound!r} (1, 2 or 4 ULP)")
    kernel, provenance = _TABLE[function][bound]
    return Tier(function, bound, kernel, provenance)
