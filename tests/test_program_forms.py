"""The JSON, text and math forms of programs: exact round trips, hand-written input, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from primitives.floatbits import FLOAT32, FLOAT64, bits_to_float, float_to_bits
from primitives.jsonform import SCHEMA, constant_hex, dumps, from_dict, loads, to_dict
from primitives.mathform import to_latex, to_pretty, to_sympy
from primitives.ops import OPS
from primitives.program import Const, Instr, Program, ProgramError, Ref, X, instr, make_program
from primitives.textform import parse_text, to_text

SETTINGS = settings(max_examples=300, deadline=None)


def _finite(bits: int, width: int) -> bool:
    if width == 32:
        return (bits >> 23) & 0xFF != 0xFF
    return (bits >> 52) & 0x7FF != 0x7FF


def constant_bits(width: int) -> st.SearchStrategy[int]:
    special32 = [0, 0x80000000, 0x3F800000, 1, 0x80000001, 0x7F7FFFFF, 0xFF7FFFFF, 0x00800000]
    special64 = [0, 1 << 63, 0x3FF0000000000000, 1, 0x7FEFFFFFFFFFFFFF]
    anything = st.integers(0, 2**width - 1).filter(lambda b: _finite(b, width))
    return st.one_of(st.sampled_from(special32 if width == 32 else special64), anything)


@st.composite
def programs(draw, dtype: str = "float32", max_instructions: int = 10) -> Program:
    """Random valid programs: 0..max_instructions ops with the right arity, operands earlier
    registers or finite constants, output any register or a constant."""
    width = 32 if dtype == "float32" else 64
    n = draw(st.integers(0, max_instructions))
    body = []
    for position in range(n):  # instruction t{position+1} may read x .. t{position}
        spec = draw(st.sampled_from(OPS))
        args = tuple(
            Const(draw(constant_bits(width)))
            if draw(st.integers(0, 3)) == 0
            else Ref(draw(st.integers(0, position)))
            for _ in range(spec.arity)
        )
        body.append(Instr(spec.name, args))
    out = draw(
        st.one_of(
            st.integers(0, n).map(Ref),
            constant_bits(width).map(Const),
            st.just(Ref(n)),
        )
    )
    return Program(tuple(body), out, dtype)


any_program = st.one_of(programs("float32"), programs("float64"))


# ----------------------------------------------------------------------------- JSON round trip
@SETTINGS
@given(any_program)
def test_json_dict_round_trip(program):
    data = to_dict(program)
    assert data["schema"] == SCHEMA and data["dtype"] == program.dtype
    assert from_dict(data) == program


@SETTINGS
@given(any_program)
def test_json_text_round_trip(program):
    text = dumps(program)
    json.loads(text)  # real JSON
    back = loads(text)
    assert back == program
    assert back.canonical_hash() == program.canonical_hash()
    assert loads(dumps(program, indent=None)) == program


@SETTINGS
@given(any_program)
def test_text_form_round_trip(program):
    text = to_text(program)
    assert parse_text(text) == program
    assert parse_text(to_text(program, mark_dead=False)) == program
    assert str(program) == text


def test_json_constants_carry_exact_bits_and_matching_hex():
    p = make_program([instr("add", X, Const(0x80000000)), instr("mul", Ref(1), Const(1))])
    data = to_dict(p)
    assert data["body"][0]["args"] == ["x", {"bits": 0x80000000, "hex": "-0x0p+0"}]
    assert data["body"][1]["args"] == ["t1", {"bits": 1, "hex": "0x1p-149"}]
    assert data["out"] == "t2"
    assert from_dict(data) == p


def test_text_form_layout():
    p = Program((instr("neg", X), instr("fma", X, Const(0x3FC00000), X)), Ref(2))
    assert to_text(p) == (
        "# evo program (float32)\nt1 = neg(x)  # dead\nt2 = fma(x, 0x1.8p+0, x)\nreturn t2\n"
    )


def test_constant_hex():
    assert constant_hex(0x3F800000) == "0x1p+0"
    assert constant_hex(float_to_bits(0.1, FLOAT64), "float64") == "0x1.999999999999ap-4"


# ----------------------------------------------------------------------------- hand-written JSON
def test_hand_written_json_forms_are_accepted():
    text = json.dumps(
        {
            "body": [
                {"op": "mul", "args": ["x", "x"]},
                {"op": "fma", "args": ["t1", "0x1.8p+0", {"bits": 1065353216}]},
                {"op": "add", "args": ["t2", "0.25"]},
                {"op": "sub", "args": [" t3 ", {"bits": 3212836864, "hex": "-0x1p+0"}]},
            ],
            "out": "t4",
        }
    )
    p = loads(text)
    assert p.dtype == "float32"  # the default
    assert p == make_program(
        [
            instr("mul", X, X),
            instr("fma", Ref(1), Const(float_to_bits(1.5)), Const(float_to_bits(1.0))),
            instr("add", Ref(2), Const(float_to_bits(0.25))),
            instr("sub", Ref(3), Const(float_to_bits(-1.0))),
        ]
    )


def test_hand_written_float64_json_accepts_decimal_that_is_a_double():
    p = from_dict({"dtype": "float64", "body": [{"op": "mul", "args": ["x", "0.1"]}], "out": "t1"})
    assert p.dtype == "float64"
    assert p.constants() == (float_to_bits(0.1, FLOAT64),)
    assert bits_to_float(p.constants()[0], FLOAT64) == 0.1


def test_constant_output_in_json():
    assert from_dict({"body": [], "out": "0x1p-1"}) == Program((), Const(float_to_bits(0.5)))
    assert from_dict({"body": [], "out": {"bits": 0}}) == Program((), Const(0))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"body": []}, "no 'out'"),
        ({"out": "x"}, "'body' must be a list"),
        ({"body": {}, "out": "x"}, "'body' must be a list"),
        ({"body": [{"op": "pow", "args": ["x", "x"]}], "out": "t1"}, "unknown op 'pow'"),
        ({"body": [{"op": "add", "args": ["x"]}], "out": "t1"}, "takes 2 operands"),
        ({"body": [{"op": "add"}], "out": "t1"}, "needs 'op' and 'args'"),
        ({"body": [{"op": "add", "args": "x,x"}], "out": "t1"}, "'args' must be a list"),
        ({"body": ["add(x, x)"], "out": "t1"}, "needs 'op' and 'args'"),
        (
            {"body": [{"op": "add", "args": ["x", {"bits": 1065353216, "hex": "0x1p+1"}]}], "out": "t1"},
            "does not match bits",
        ),
        ({"body": [{"op": "add", "args": ["x", {"bits": 1.0}]}], "out": "t1"}, "'bits' must be an integer"),
        ({"body": [{"op": "add", "args": ["x", {"bits": True}]}], "out": "t1"}, "'bits' must be an integer"),
        ({"body": [{"op": "add", "args": ["x", {"bits": 2**32}]}], "out": "t1"}, "bit pattern"),
        ({"body": [{"op": "add", "args": ["x", {"bits": 0x7FC00000}]}], "out": "t1"}, "not finite"),
        ({"body": [{"op": "add", "args": ["x", "0.1"]}], "out": "t1"}, "'0.1' is not exactly representable"),
        ({"body": [{"op": "add", "args": ["x", "inf"]}], "out": "t1"}, "not finite"),
        ({"body": [{"op": "add", "args": ["x", "banana"]}], "out": "t1"}, "cannot parse 'banana'"),
        ({"body": [{"op": "add", "args": ["x", 1.5]}], "out": "t1"}, "cannot read operand"),
        ({"body": [{"op": "add", "args": ["x", "t2"]}, {"op": "neg", "args": ["x"]}], "out": "t2"}, "t2"),
        ({"body": [{"op": "add", "args": ["x", "t1"]}], "out": "t1"}, "not defined before"),
        ({"body": [], "out": "t1"}, "not defined before"),
        ({"schema": "evo.program/99", "body": [], "out": "x"}, "unsupported program schema"),
        ({"dtype": "float16", "body": [], "out": "x"}, "float16"),
        ({"dtype": ["float32"], "body": [], "out": "x"}, "format"),
        ({"dtype": {"name": "float32"}, "body": [], "out": "x"}, "format"),
    ],
)
def test_malformed_json_programs(data, message):
    with pytest.raises(ProgramError, match=message):
        from_dict(data)
    with pytest.raises(ProgramError, match=message):
        loads(json.dumps(data))


def test_forward_reference_message_names_the_instruction():
    data = {"body": [{"op": "add", "args": ["x", "t2"]}, {"op": "neg", "args": ["x"]}], "out": "t2"}
    with pytest.raises(ProgramError) as info:
        from_dict(data)
    text = str(info.value)
    assert "t1" in text and "t2" in text


@pytest.mark.parametrize("text", ["", "{", "{'body': []}", "[1, 2", '{"body": [], "out": }'])
def test_invalid_json_text(text):
    with pytest.raises(ProgramError, match="not valid JSON"):
        loads(text)


@pytest.mark.parametrize("text", ["[]", "3", '"x"', "null"])
def test_json_that_is_not_an_object(text):
    with pytest.raises(ProgramError, match="JSON object"):
        loads(text)


# ----------------------------------------------------------------------------- text form input
def test_hand_written_text_is_accepted():
    text = """
    # a comment line
    t1 = mul(x, x)        # square
    t2 = fma(t1, 0x1.8p+0f, -0.5)

    return t2
    """
    p = parse_text(text)
    assert p == make_program(
        [instr("mul", X, X), instr("fma", Ref(1), Const(float_to_bits(1.5)), Const(float_to_bits(-0.5)))]
    )


def test_text_header_selects_float64():
    p = parse_text("# evo program (float64)\nt1 = mul(x, 0.1)\nreturn t1\n")
    assert p.dtype == "float64"
    assert p.constants() == (float_to_bits(0.1, FLOAT64),)


def test_text_returning_a_constant():
    assert parse_text("return -0x0p+0") == Program((), Const(0x80000000))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("t1 = mul(x, x)\n", "no 'return'"),
        ("", "no 'return'"),
        ("t1 = pow(x, x)\nreturn t1\n", "unknown op 'pow'"),
        ("t1 = add(x, t2)\nt2 = neg(x)\nreturn t2\n", "not defined before"),
        ("t2 = neg(x)\nreturn t2\n", "expected t1"),
        ("t1 = neg(x)\nt3 = neg(t1)\nreturn t3\n", "line 2: expected t2"),
        ("t1 = add(x, 0.1)\nreturn t1\n", "line 1: .*'0.1' is not exactly representable"),
        ("t1 = add(x, inf)\nreturn t1\n", "not finite"),
        ("t1 = add(x)\nreturn t1\n", "takes 2 operands"),
        ("t1 = neg(x)\nreturn t1\nt2 = neg(x)\n", "line 3: nothing may follow 'return'"),
        ("t1 == neg(x)\nreturn t1\n", "line 1: cannot parse"),
        ("return t1 t2\n", "cannot parse"),
        ("return t5\n", "not defined before"),
    ],
)
def test_malformed_text_programs(text, message):
    with pytest.raises(ProgramError, match=message):
        parse_text(text)


# ----------------------------------------------------------------------------- math form
XS = sympy.Symbol("x", real=True)


def _rational(expr):
    return sympy.nsimplify(expr, rational=True)


def test_to_sympy_of_fma():
    p = make_program([instr("fma", X, X, Const(float_to_bits(1.0)))])
    expr = to_sympy(p, XS)
    assert sympy.simplify(_rational(expr) - (XS**2 + 1)) == 0
    assert expr.free_symbols == {XS}


def test_to_sympy_of_every_op():
    # t1 = x - 2; t2 = t1 / x; t3 = -t2; t4 = sqrt(x); t5 = t3 * t4; t6 = t5 + 0.5
    p = make_program(
        [
            instr("sub", X, Const(float_to_bits(2.0))),
            instr("div", Ref(1), X),
            instr("neg", Ref(2)),
            instr("sqrt", X),
            instr("mul", Ref(3), Ref(4)),
            instr("add", Ref(5), Const(float_to_bits(0.5))),
        ]
    )
    expected = -((XS - 2) / XS) * sympy.sqrt(XS) + sympy.Rational(1, 2)
    expr = to_sympy(p, XS)
    assert sympy.simplify(_rational(expr) - expected) == 0
    # and numerically, at a few points
    for value in (0.25, 1.0, 3.0):
        assert float(expr.subs(XS, value)) == pytest.approx(float(expected.subs(XS, value)), rel=1e-12)


def test_to_sympy_ignores_dead_code_and_handles_constant_output():
    p = Program((instr("sqrt", X), instr("mul", X, X)), Ref(2))
    assert sympy.simplify(to_sympy(p, XS) - XS**2) == 0
    const = to_sympy(Program((instr("neg", X),), Const(float_to_bits(0.75))))
    assert const.free_symbols == set() and float(const) == 0.75
    assert to_sympy(Program.identity(), XS) == XS


def test_to_sympy_default_symbol_is_x():
    expr = to_sympy(make_program([instr("mul", X, X)]))
    assert {s.name for s in expr.free_symbols} == {"x"}


def test_to_latex_and_pretty():
    p = make_program([instr("fma", X, X, Const(float_to_bits(1.0)))])
    latex = to_latex(p)
    assert isinstance(latex, str) and "x" in latex and "^{2}" in latex
    pretty = to_pretty(p)
    assert isinstance(pretty, str) and "x" in pretty


def test_math_form_constants_identify_the_float32():
    value = bits_to_float(0x3F317218, FLOAT32)  # float32 ln 2 = 0x1.62e43p-1
    expr = to_sympy(Program((), Const(0x3F317218)))
    assert float(np.float32(float(expr))) == value
