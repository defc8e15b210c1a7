"""Hypothesis strategies shared by the tests: float32 values with the awkward cases, random programs."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from primitives.floatbits import FLOAT32, FLOAT64, FloatFormat, float_to_bits
from primitives.ops import OPS
from primitives.program import Const, Instr, Program, Ref
from primitives.textform import parse_text

SPECIAL32 = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    2.0,
    3.0,
    1.5,
    float(np.finfo(np.float32).max),
    -float(np.finfo(np.float32).max),
    float(np.finfo(np.float32).tiny),
    -float(np.finfo(np.float32).tiny),  # smallest normal
    2.0**-149,
    -(2.0**-149),
    2.0**-148,
    3 * 2.0**-149,  # subnormals
    float(np.float32(1.0) + np.finfo(np.float32).eps),
    1.0 - 2.0**-24,
    2.0**64,
    2.0**-64,
    2.0**127,
    2.0**-126 - 2.0**-149,
]
SPECIAL_INPUTS32 = [*SPECIAL32, float("inf"), float("-inf"), float("nan")]


def _bits_to_value(bits: int, fmt: FloatFormat) -> float:
    dtype = np.uint32 if fmt.width == 32 else np.uint64
    return float(np.array([bits], dtype=dtype).view(fmt.dtype)[0])


def finite_floats(fmt: FloatFormat = FLOAT32) -> st.SearchStrategy[float]:
    """Any finite value of the format, biased towards the special ones (subnormals, extremes)."""
    raw = st.integers(0, (1 << fmt.width) - 1).map(lambda b: _bits_to_value(b, fmt))
    finite = raw.filter(lambda v: np.isfinite(v))
    moderate = st.floats(-4.0, 4.0, width=fmt.width, allow_nan=False, allow_infinity=False)
    return st.one_of(st.sampled_from(SPECIAL32), finite, moderate)


def inputs(fmt: FloatFormat = FLOAT32) -> st.SearchStrategy[float]:
    """Program inputs: finite values plus infinities and NaN."""
    return st.one_of(finite_floats(fmt), st.sampled_from([float("inf"), float("-inf"), float("nan")]))


@st.composite
def programs(draw, max_instructions: int = 10, ops=OPS, dtype: str = "float32") -> Program:
    """Random valid programs: every op, operands from earlier registers or constants."""
    fmt = FLOAT32 if dtype == "float32" else FLOAT64
    n = draw(st.integers(0, max_instructions))
    body = []
    for position in range(n):
        spec = draw(st.sampled_from(list(ops)))
        args = []
        for _ in range(spec.arity):
            if draw(st.integers(0, 3)) == 0:
                args.append(Const(float_to_bits(draw(finite_floats(fmt)), fmt)))
            else:
                args.append(Ref(draw(st.integers(0, position))))
        body.append(Instr(spec.name, tuple(args)))
    out = Ref(n) if n and draw(st.booleans()) else Ref(draw(st.integers(0, n)))
    return Program(tuple(body), out, dtype)


# the shipped Sollya FMA polynomial for 2^x on [0, 1]: the fixed program of the export tests
EXP2_ANCHOR = parse_text("""
t1 = fma(x, 0x1.c4456ep-13, 0x1.47373ap-10)
t2 = fma(t1, x, 0x1.3cfd82p-7)
t3 = fma(t2, x, 0x1.c68af6p-5)
t4 = fma(t3, x, 0x1.ebfd3ap-3)
t5 = fma(t4, x, 0x1.62e42cp-1)
t6 = fma(t5, x, 0x1p+0)
return t6
""")
