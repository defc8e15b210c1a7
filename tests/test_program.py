"""primitives.program: validation, liveness, cost, constants, surgery and the canonical hash."""

from __future__ import annotations

import numpy as np
import pytest

from primitives.floatbits import FLOAT64, float_to_bits
from primitives.interp import evaluate
from primitives.program import (
    Const,
    Instr,
    Program,
    ProgramError,
    Ref,
    X,
    const_of,
    instr,
    make_program,
)

POINTS = np.array(
    [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 3.25, -7.5, 1e-3, 123.456, 2.0**-140, 1e30, -1e-30], dtype=np.float32
)


def c(value: float) -> Const:
    return Const(float_to_bits(value))


def same_outputs(p: Program, q: Program, points: np.ndarray = POINTS) -> bool:
    """Bitwise equal outputs (NaNs with equal payloads count as equal)."""
    a, b = evaluate(p, points), evaluate(q, points)
    return a.dtype == b.dtype and np.array_equal(a.view(np.uint32), b.view(np.uint32))


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("body", "out", "dtype", "message"),
    [
        ((Instr("pow", (X, X)),), Ref(1), "float32", "unknown op"),
        ((Instr("add", (X,)),), Ref(1), "float32", "takes 2 operands"),
        ((Instr("neg", (X, X)),), Ref(1), "float32", "takes 1 operands"),
        ((Instr("fma", (X, X)),), Ref(1), "float32", "takes 3 operands"),
        ((Instr("add", (X, Ref(2))), Instr("neg", (X,))), Ref(2), "float32", "not defined before"),
        ((Instr("add", (X, Ref(1))),), Ref(1), "float32", "not defined before"),  # self reference
        ((Instr("neg", (Ref(-1),)),), Ref(1), "float32", "not defined before"),
        ((), Ref(-1), "float32", "not defined before"),
        ((), Ref(1), "float32", "not defined before"),  # output past the end
        ((Instr("neg", (X,)),), Ref(2), "float32", "not defined before"),
        ((Instr("neg", (Const(2**32),)),), Ref(1), "float32", "bit pattern"),
        ((Instr("neg", (Const(-1),)),), Ref(1), "float32", "bit pattern"),
        ((Instr("neg", (Const(2**64),)),), Ref(1), "float64", "bit pattern"),
        ((Instr("neg", (Const(0x7FC00000),)),), Ref(1), "float32", "not finite"),  # NaN
        ((Instr("neg", (Const(0x7F800000),)),), Ref(1), "float32", "not finite"),  # +inf
        ((Instr("neg", (Const(0xFF800000),)),), Ref(1), "float32", "not finite"),  # -inf
        ((), Const(0x7F800001), "float32", "not finite"),  # NaN output constant
        ((Instr("neg", (Const(0x7FF0000000000000),)),), Ref(1), "float64", "not finite"),
        ((), X, "float16", "float16"),
        ((), X, "int32", "int32"),
        ((Instr("neg", (1.0,)),), Ref(1), "float32", "neither a register nor a constant"),
        (("neg(x)",), Ref(1), "float32", "not an Instr"),
        ((Instr("neg", (Ref(1.5),)),), Ref(1), "float32", "integer"),
    ],
)
def test_invalid_programs_raise_program_error(body, out, dtype, message):
    with pytest.raises(ProgramError, match=message):
        Program(body, out, dtype)


def test_program_error_is_a_value_error():
    assert issubclass(ProgramError, ValueError)


def test_valid_float64_constant_that_is_not_a_float32_pattern():
    # 2^32 is not a float32 bit pattern but is a valid float64 one (a tiny subnormal)
    p = Program((Instr("neg", (Const(2**32),)),), Ref(1), "float64")
    assert p.constants() == (2**32,)


def test_list_body_is_stored_as_tuple():
    p = Program([Instr("neg", (X,))], Ref(1))
    assert isinstance(p.body, tuple)


# ----------------------------------------------------------------------------- liveness, pruning
def dead_code_program() -> Program:
    return Program(
        (
            instr("add", X, c(1.0)),  # t1: dead
            instr("mul", X, X),  # t2: live
            instr("sqrt", Ref(1)),  # t3: dead (reads dead t1)
            instr("fma", Ref(2), c(0.5), X),  # t4: live, output
        ),
        Ref(4),
    )


def test_live_mask():
    p = dead_code_program()
    assert p.live == (False, True, False, True)
    assert not p.is_pruned()
    assert p.n_instructions == 4
    assert p.op_count() == 2


def test_pruned_removes_dead_code_and_keeps_semantics():
    p = dead_code_program()
    q = p.pruned()
    expected = Program((instr("mul", X, X), instr("fma", Ref(1), c(0.5), X)), Ref(2))
    assert q == expected
    assert q.is_pruned() and q.live == (True, True)
    assert q.pruned() is q
    assert same_outputs(p, q)
    # expected values by hand: x*x*0.5 + x (fma rounds once; these are exact)
    y = evaluate(q, np.array([2.0, -1.0, 0.5], dtype=np.float32))
    assert y.tolist() == [4.0, -0.5, 0.625]


def test_output_x_makes_everything_dead():
    p = Program((instr("neg", X), instr("mul", Ref(1), Ref(1))), X)
    assert p.live == (False, False)
    assert p.op_count() == 0
    assert p.pruned() == Program.identity()
    assert p.depth() == 0


def test_constant_output_makes_everything_dead():
    p = Program((instr("neg", X),), c(2.5))
    assert p.live == (False,)
    assert p.pruned() == Program((), c(2.5))
    assert evaluate(p, POINTS).tolist() == [2.5] * len(POINTS)


# ----------------------------------------------------------------------------- counts and cost
def test_op_count_depth_cost_and_histogram():
    p = dead_code_program()
    assert p.depth() == 2
    assert p.op_histogram() == {"mul": 1, "fma": 1}
    assert p.cost() == 2.0  # default weights are 1 per op, fma counts as one


def test_cost_with_weights_override():
    # t1 = 1/x; t2 = t1 + x; t3 = x / 3 (dead)
    p = Program((instr("div", c(1.0), X), instr("add", Ref(1), X), instr("div", X, c(3.0))), Ref(2))
    assert p.op_count() == 2
    assert p.cost() == 2.0
    assert p.cost({"div": 10.0}) == 11.0  # the dead div is not counted
    assert p.cost({"div": 10.0, "add": 0.5}) == 10.5
    assert p.cost({"sqrt": 99.0}) == 2.0  # weights for ops that are absent change nothing


def test_depth_of_chains_and_parallel_branches():
    chain = make_program([instr("neg", X), instr("neg", Ref(1)), instr("neg", Ref(2))])
    assert chain.depth() == 3
    wide = make_program([instr("mul", X, X), instr("add", X, c(1.0)), instr("mul", Ref(1), Ref(2))])
    assert wide.depth() == 2
    assert Program((instr("neg", X),), c(1.0)).depth() == 0


def test_make_program_defaults():
    assert make_program([]) == Program.identity()
    p = make_program([instr("neg", X), instr("sqrt", Ref(1))])
    assert p.out == Ref(2)
    assert make_program([instr("neg", X)], out=X).out == X


# ----------------------------------------------------------------------------- constants
def test_constants_are_live_ones_in_operand_order():
    p = Program(
        (
            instr("add", X, c(7.0)),  # dead
            instr("fma", X, c(2.0), c(3.0)),
            instr("mul", Ref(2), c(4.0)),
        ),
        Ref(3),
    )
    assert p.constants() == (float_to_bits(2.0), float_to_bits(3.0), float_to_bits(4.0))
    assert p.constant_values() == (2.0, 3.0, 4.0)
    assert Program((), c(-1.5)).constants() == (float_to_bits(-1.5),)


def test_with_constants_replaces_in_order_and_prunes():
    p = Program(
        (instr("add", X, c(7.0)), instr("fma", X, c(2.0), c(3.0)), instr("mul", Ref(2), c(4.0))),
        Ref(3),
    )
    new_bits = [float_to_bits(v) for v in (0.5, -1.0, 8.0)]
    q = p.with_constants(new_bits)
    assert q == Program((instr("fma", X, c(0.5), c(-1.0)), instr("mul", Ref(1), c(8.0))), Ref(2))
    assert q.constants() == tuple(new_bits)
    # (x*0.5 - 1) * 8 at x = 4: (2 - 1) * 8 = 8
    assert evaluate(q, np.array([4.0], dtype=np.float32)).tolist() == [8.0]
    assert p.with_constants(list(p.constants())) == p.pruned()


def test_with_constants_output_constant_and_wrong_count():
    p = Program((), c(1.0))
    assert p.with_constants([float_to_bits(2.0)]) == Program((), c(2.0))
    with pytest.raises(ProgramError):
        p.with_constants([])
    with pytest.raises(ProgramError):
        dead_code_program().with_constants([1, 2])
    with pytest.raises(ProgramError):  # the new constant must be a finite float32 too
        p.with_constants([0x7F800000])


def test_const_of():
    assert const_of(1.0) == Const(0x3F800000)
    assert const_of(0.1, "float64") == Const(float_to_bits(0.1, FLOAT64))
    with pytest.raises(ValueError):
        const_of(0.1)


# ----------------------------------------------------------------------------- surgery
def base_program() -> Program:
    # t1 = x*x; t2 = t1 + 1; t3 = t2 * x   =>  x^3 + x
    return make_program([instr("mul", X, X), instr("add", Ref(1), c(1.0)), instr("mul", Ref(2), X)])


def test_inserted_keeps_ssa_and_semantics():
    p = base_program()
    for position in range(len(p.body) + 1):
        q = p.inserted(position, instr("neg", X))
        assert len(q.body) == 4
        assert q.body[position] == instr("neg", X)
        assert q.live[position] is False  # nothing reads the new instruction
        assert q.op_count() == p.op_count()
        assert same_outputs(p, q)
        assert q.pruned() == p


def test_inserted_renumbers_later_references():
    p = base_program()
    q = p.inserted(1, instr("add", Ref(1), X))  # reads t1 of p (defined before position 1)
    assert q.body == (
        instr("mul", X, X),
        instr("add", Ref(1), X),
        instr("add", Ref(1), c(1.0)),  # was t2 = t1 + 1: t1 unchanged
        instr("mul", Ref(3), X),  # was t3 = t2 * x: t2 became t3
    )
    assert q.out == Ref(4)
    assert same_outputs(p, q)


def test_inserted_refuses_bad_positions_and_operands():
    p = base_program()
    with pytest.raises(ProgramError):
        p.inserted(-1, instr("neg", X))
    with pytest.raises(ProgramError):
        p.inserted(4, instr("neg", X))
    with pytest.raises(ProgramError):
        p.inserted(0, instr("neg", Ref(1)))  # t1 is not defined before position 0


def test_removed_with_own_first_operand_keeps_semantics():
    # t1 = x * 1.0 is exactly x (also for -0, inf and NaN), so replacing it by x changes nothing
    p = make_program([instr("mul", X, c(1.0)), instr("add", Ref(1), c(0.5)), instr("mul", Ref(2), Ref(1))])
    q = p.removed(0, X)
    assert q == make_program([instr("add", X, c(0.5)), instr("mul", Ref(1), X)])
    assert same_outputs(p, q)
    special = np.array([np.inf, -np.inf, np.nan, -0.0], dtype=np.float32)
    assert same_outputs(p, q, special)


def test_removed_output_instruction_and_constant_replacement():
    p = base_program()
    q = p.removed(2, Ref(2))
    assert q == make_program([instr("mul", X, X), instr("add", Ref(1), c(1.0))])
    r = p.removed(0, c(4.0))  # t1 := 4  =>  (4 + 1) * x
    assert r == make_program([instr("add", c(4.0), c(1.0)), instr("mul", Ref(1), X)])
    assert evaluate(r, np.array([3.0], dtype=np.float32)).tolist() == [15.0]


def test_removed_refuses_bad_arguments():
    p = base_program()
    with pytest.raises(ProgramError):
        p.removed(3, X)
    with pytest.raises(ProgramError):
        p.removed(-1, X)
    with pytest.raises(ProgramError):
        p.removed(1, Ref(2))  # the removed result itself
    with pytest.raises(ProgramError):
        p.removed(0, Ref(3))  # a later register


def test_replaced():
    p = base_program()
    q = p.replaced(1, instr("sub", Ref(1), c(1.0)))  # x^3 - x
    assert q.body[1] == instr("sub", Ref(1), c(1.0))
    assert evaluate(q, np.array([3.0], dtype=np.float32)).tolist() == [24.0]
    assert evaluate(p, np.array([3.0], dtype=np.float32)).tolist() == [30.0]
    with pytest.raises(ProgramError):
        p.replaced(0, instr("neg", Ref(1)))  # self reference


def test_with_output():
    p = base_program()
    assert evaluate(p.with_output(Ref(1)), np.array([3.0], dtype=np.float32)).tolist() == [9.0]
    with pytest.raises(ProgramError):
        p.with_output(Ref(4))


# ----------------------------------------------------------------------------- canonical hash
def test_hash_invariant_under_dead_code():
    p = dead_code_program()
    assert p.canonical_hash() == p.pruned().canonical_hash()
    assert base_program().canonical_hash() == base_program().inserted(0, instr("sqrt", X)).canonical_hash()


@pytest.mark.parametrize("op", ["add", "mul"])
def test_hash_invariant_under_commutative_swap(op):
    a = make_program([instr("neg", X), instr(op, Ref(1), c(3.0))])
    b = make_program([instr("neg", X), instr(op, c(3.0), Ref(1))])
    assert a.canonical_hash() == b.canonical_hash()
    assert same_outputs(a, b)


def test_hash_invariant_under_fma_product_swap_only():
    a = make_program([instr("neg", X), instr("fma", Ref(1), X, c(2.0))])
    b = make_program([instr("neg", X), instr("fma", X, Ref(1), c(2.0))])
    swapped_addend = make_program([instr("neg", X), instr("fma", Ref(1), c(2.0), X)])
    assert a.canonical_hash() == b.canonical_hash()
    assert a.canonical_hash() != swapped_addend.canonical_hash()


def test_hash_invariant_under_reordering_independent_instructions():
    a = make_program([instr("mul", X, X), instr("add", X, c(1.0)), instr("div", Ref(1), Ref(2))])
    b = make_program([instr("add", X, c(1.0)), instr("mul", X, X), instr("div", Ref(2), Ref(1))])
    assert a.canonical_hash() == b.canonical_hash()
    assert same_outputs(a, b)


def test_hash_sensitive_to_non_commutative_swap():
    a = make_program([instr("neg", X), instr("sub", Ref(1), X)])
    b = make_program([instr("neg", X), instr("sub", X, Ref(1))])
    assert a.canonical_hash() != b.canonical_hash()
    a = make_program([instr("div", X, c(3.0))])
    b = make_program([instr("div", c(3.0), X)])
    assert a.canonical_hash() != b.canonical_hash()


def test_hash_sensitive_to_one_constant_bit():
    bits = float_to_bits(1.5)
    a = make_program([instr("mul", X, Const(bits))])
    b = make_program([instr("mul", X, Const(bits ^ 1))])
    assert a.canonical_hash() != b.canonical_hash()
    # a sign bit as well (-0 and +0 are different constants)
    assert (
        make_program([instr("add", X, Const(0))]).canonical_hash()
        != make_program([instr("add", X, Const(0x80000000))]).canonical_hash()
    )


def test_hash_sensitive_to_dtype():
    assert Program.identity("float32").canonical_hash() != Program.identity("float64").canonical_hash()
    a = Program((instr("mul", X, Const(0x3F800000)),), Ref(1), "float32")
    b = Program((instr("mul", X, Const(0x3F800000)),), Ref(1), "float64")
    assert a.canonical_hash() != b.canonical_hash()


def test_hash_sensitive_to_materialising_a_shared_subexpression_twice():
    shared = make_program([instr("mul", X, X), instr("add", Ref(1), Ref(1))])
    twice = make_program([instr("mul", X, X), instr("mul", X, X), instr("add", Ref(1), Ref(2))])
    assert same_outputs(shared, twice)
    assert shared.cost() != twice.cost()
    assert shared.canonical_hash() != twice.canonical_hash()


def test_hash_sensitive_to_op_and_output():
    a = make_program([instr("add", X, X)])
    assert a.canonical_hash() != make_program([instr("mul", X, X)]).canonical_hash()
    assert a.canonical_hash() != Program.identity().canonical_hash()
    assert Program((), c(1.0)).canonical_hash() != Program((), c(2.0)).canonical_hash()


def test_hash_is_stable_text():
    h = base_program().canonical_hash()
    assert isinstance(h, str) and h == base_program().canonical_hash()
    assert len(h) == 20 and all(ch in "0123456789abcdef" for ch in h)


# ----------------------------------------------------------------------------- value semantics
def test_programs_are_hashable_and_equal_by_value():
    a, b = base_program(), base_program()
    assert a == b and a is not b
    assert hash(a) == hash(b)
    assert len({a, b, dead_code_program()}) == 2
    assert {a: 1}[b] == 1
    assert a != a.replaced(0, instr("add", X, X))
    assert Program.identity("float32") != Program.identity("float64")


def test_programs_are_immutable():
    p = base_program()
    with pytest.raises((AttributeError, TypeError)):
        p.out = X  # type: ignore[misc]


def test_identity():
    p = Program.identity()
    assert p.body == () and p.out == X and p.dtype == "float32"
    assert p.op_count() == 0 and p.depth() == 0 and p.cost() == 0.0
    assert p.constants() == ()
    y = evaluate(p, POINTS)
    assert np.array_equal(y.view(np.uint32), POINTS.view(np.uint32))
    q = Program.identity("float64")
    assert q.dtype == "float64" and q.format is FLOAT64
