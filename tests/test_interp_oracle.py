"""The numba interpreter agrees with the exact rational oracle bit for bit (NaN payloads aside)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from primitives.floatbits import FLOAT32, FLOAT64, float_to_bits
from primitives.interp import evaluate
from primitives.ops import OPS, get_op
from primitives.oracle import EXACT_OPS, oracle_evaluate, same_float
from primitives.program import Const, Instr, Program, Ref, X, const_of
from tests.strategies import SPECIAL_INPUTS32, finite_floats, inputs, programs

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_same(program: Program, xs: list[float], dtype: str | None = None) -> None:
    fmt = FLOAT64 if (dtype or program.dtype) == "float64" else FLOAT32
    fast = evaluate(program, np.array(xs, dtype=fmt.dtype), dtype)
    exact = oracle_evaluate(program, xs, fmt)
    for x, got, want in zip(xs, fast.tolist(), exact, strict=True):
        assert same_float(got, want, fmt), (
            f"x={x!r}: interpreter {got!r} ({got.hex() if math.isfinite(got) else got}) != "
            f"oracle {want!r} ({want.hex() if math.isfinite(want) else want})\n{program}"
        )


@SETTINGS
@given(programs(), st.lists(inputs(), min_size=1, max_size=20))
def test_random_programs_match_the_oracle(program, xs):
    assert_same(program, xs)


@SETTINGS
@given(programs(dtype="float32"), st.lists(inputs(), min_size=1, max_size=10))
def test_float32_programs_in_float64_match_the_oracle(program, xs):
    assert_same(program, xs, dtype="float64")


@SETTINGS
@given(programs(dtype="float64"), st.lists(inputs(FLOAT64), min_size=1, max_size=10))
def test_float64_programs_match_the_oracle(program, xs):
    assert_same(program, xs)


@pytest.mark.parametrize("op", [op.name for op in OPS])
def test_every_op_on_special_operands(op):
    """All operand combinations from the special values: zeros, subnormals, extremes, inf, NaN."""
    spec = get_op(op)
    specials = [v for v in SPECIAL_INPUTS32 if not math.isnan(v)] + [math.nan]
    # x supplies the first operand; the others are constants (finite only) or x itself.
    constants = [v for v in specials if math.isfinite(v)]
    for others in _combos(constants, spec.arity - 1):
        args = (X, *(Const(float_to_bits(v)) for v in others))
        assert_same(Program((Instr(op, args),), Ref(1)), specials)
    if spec.arity >= 2:  # x in the second slot too
        for others in _combos(constants, spec.arity - 1):
            args = (Const(float_to_bits(others[0])), X, *(Const(float_to_bits(v)) for v in others[1:]))
            assert_same(Program((Instr(op, args),), Ref(1)), specials)


def _combos(values, k):
    if k == 0:
        return [()]
    if k == 1:
        return [(v,) for v in values]
    thin = values[::3] + [0.0, -0.0, 2.0**-149]  # pairs from a thinned list keep this fast
    return [(a, b) for a in thin for b in thin]


@SETTINGS
@given(finite_floats(), finite_floats(), finite_floats())
def test_fma_is_fused_single_rounding(a, b, c):
    program = Program((Instr("fma", (X, Const(float_to_bits(b)), Const(float_to_bits(c)))),), Ref(1))
    assert_same(program, [a])


def test_fma_differs_from_multiply_then_add():
    """A case where one rounding and two roundings differ: (1 + 2^-12)^2 - (1 + 2^-11)."""
    a = 1.0 + 2.0**-12
    fused = Program((Instr("fma", (X, X, const_of(-(1.0 + 2.0**-11)))),), Ref(1))
    unfused = Program((Instr("mul", (X, X)), Instr("sub", (Ref(1), const_of(1.0 + 2.0**-11)))), Ref(2))
    got_fused = float(evaluate(fused, np.array([a], np.float32))[0])
    got_unfused = float(evaluate(unfused, np.array([a], np.float32))[0])
    assert got_fused == 2.0**-24  # exact: a*a = 1 + 2^-11 + 2^-24
    assert got_unfused == 0.0  # a*a rounds to 1 + 2^-11 first


def test_division_and_sqrt_special_cases():
    program = Program(
        (Instr("div", (const_of(1.0), X)), Instr("sqrt", (X,)), Instr("add", (Ref(1), Ref(2)))), Ref(3)
    )
    assert_same(program, [0.0, -0.0, -1.0, 4.0, 2.0**-149, math.inf, -math.inf, math.nan])
    y = evaluate(Program((Instr("div", (const_of(1.0), X)),), Ref(1)), np.array([0.0, -0.0], np.float32))
    assert y[0] == np.inf and y[1] == -np.inf


def test_overflow_and_underflow():
    big = float(np.finfo(np.float32).max)
    program = Program((Instr("mul", (X, X)),), Ref(1))
    y = evaluate(program, np.array([big, 2.0**-100, -(2.0**-100)], np.float32))
    assert y[0] == np.inf
    assert y[1] == 0.0 and not np.signbit(y[1])
    assert y[2] == 0.0 and not np.signbit(y[2])
    assert_same(program, [big, 2.0**-75, 2.0**-74, 2.0**-63 * 1.5])


def test_oracle_covers_every_op():
    assert set(EXACT_OPS) == {op.name for op in OPS}


def test_constant_output_and_identity():
    assert_same(Program((), X), [1.5, -0.0, math.nan])
    assert_same(Program((), const_of(0.75)), [1.5, -0.0, math.nan])
    assert_same(Program((Instr("neg", (X,)),), const_of(-2.0)), [1.0])
