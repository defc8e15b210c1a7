"""The readable text form of a program (``t3 = fma(t1, t2, 0x1.62e42ep-1)``) and its parser."""

from __future__ import annotations

import re

from primitives.floatbits import float_to_bits, parse_hex
from primitives.program import (
    Const,
    Instr,
    Operand,
    Program,
    ProgramError,
    Ref,
    describe_operand,
    register_name,
)

_HEADER = "# evo program"
_ASSIGN = re.compile(r"^t(\d+)\s*=\s*([a-z_][a-z0-9_]*)\s*\((.*)\)\s*$")
_RETURN = re.compile(r"^return\s+(\S+)\s*$")
_REGISTER = re.compile(r"^(x|t(\d+))$")


def to_text(program: Program, mark_dead: bool = True) -> str:
    """One line per instruction, in order, then ``return <operand>``; dead lines are marked."""
    fmt = program.format
    lines = [f"{_HEADER} ({program.dtype})"]
    for position, (ins, alive) in enumerate(zip(program.body, program.live, strict=True)):
        operands = ", ".join(describe_operand(a, fmt) for a in ins.args)
        line = f"{register_name(position + 1)} = {ins.op}({operands})"
        if mark_dead and not alive:
            line += "  # dead"
        lines.append(line)
    lines.append(f"return {describe_operand(program.out, fmt)}")
    return "\n".join(lines) + "\n"


def parse_text(text: str) -> Program:
    """Parse the text form. Comments (``#``) and blank lines are ignored, except the header,
    which may name the format (``# evo program (float64)``); the default is float32.
    """
    dtype = "float32"
    body: list[Instr] = []
    out: Operand | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        header = re.match(r"^#\s*evo program\s*\((float32|float64)\)", raw.strip())
        if header:
            if body:
                raise ProgramError(f"line {number}: the format header must come before the instructions")
            dtype = header.group(1)
            continue
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if out is not None:
            raise ProgramError(f"line {number}: nothing may follow 'return'")
        match = _ASSIGN.match(line)
        if match:
            target, op, operand_text = int(match.group(1)), match.group(2), match.group(3)
            if target != len(body) + 1:
                raise ProgramError(f"line {number}: expected t{len(body) + 1} =, got t{target} =")
            operands = [p.strip() for p in operand_text.split(",")] if operand_text.strip() else []
            body.append(Instr(op, tuple(_operand(p, dtype, number) for p in operands)))
            continue
        match = _RETURN.match(line)
        if match:
            out = _operand(match.group(1), dtype, number)
            continue
        raise ProgramError(f"line {number}: cannot parse {raw.strip()!r}")
    if out is None:
        raise ProgramError("program text has no 'return' line")
    return Program(tuple(body), out, dtype)


def _operand(text: str, dtype: str, number: int) -> Operand:
    match = _REGISTER.match(text)
    if match:
        return Ref(0 if match.group(1) == "x" else int(match.group(2)))
    from primitives.floatbits import get_format

    fmt = get_format(dtype)
    try:
        return Const(float_to_bits(parse_hex(text, fmt), fmt))
    except ValueError as exc:
        raise ProgramError(f"line {number}: {exc}") from None
