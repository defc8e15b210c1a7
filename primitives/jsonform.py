"""The JSON form of a program: exact (constants as bit patterns) and readable (hex beside them)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from primitives.floatbits import bits_to_float, float_to_bits, format_hex, get_format, parse_hex
from primitives.program import Const, Instr, Operand, Program, ProgramError, Ref, register_name

SCHEMA = "evo.program/1"


def to_dict(program: Program) -> dict[str, Any]:
    """A JSON-ready dict; ``from_dict(to_dict(p)) == p`` for every program."""
    fmt = program.format

    def operand(a: Operand) -> Any:
        if isinstance(a, Ref):
            return register_name(a.index)
        return {"bits": a.bits, "hex": format_hex(bits_to_float(a.bits, fmt), fmt)}

    return {
        "schema": SCHEMA,
        "dtype": program.dtype,
        "body": [{"op": i.op, "args": [operand(a) for a in i.args]} for i in program.body],
        "out": operand(program.out),
    }


def from_dict(data: Mapping[str, Any]) -> Program:
    """Build a program from its dict form, with a clear ProgramError for anything malformed.

    Operands may be register names (``"x"``, ``"t3"``), ``{"bits": N}`` (optionally with a
    matching ``"hex"``), or, for hand-written files, exact hex/decimal constant strings.
    """
    if not isinstance(data, Mapping):
        raise ProgramError("a program must be a JSON object")
    schema = data.get("schema", SCHEMA)
    if schema != SCHEMA:
        raise ProgramError(f"unsupported program schema {schema!r} (expected {SCHEMA!r})")
    dtype = data.get("dtype", "float32")
    try:
        fmt = get_format(dtype)
    except ValueError as exc:
        raise ProgramError(str(exc)) from None
    body_data = data.get("body")
    if not isinstance(body_data, list):
        raise ProgramError("program 'body' must be a list of instructions")
    if "out" not in data:
        raise ProgramError("program has no 'out'")

    def operand(raw: Any, where: str) -> Operand:
        if isinstance(raw, str):
            name = raw.strip()
            if name == "x":
                return Ref(0)
            if name.startswith("t") and name[1:].isdigit():
                return Ref(int(name[1:]))
            try:
                return Const(float_to_bits(parse_hex(name, fmt), fmt))
            except ValueError as exc:
                raise ProgramError(f"{where}: {exc}") from None
        if isinstance(raw, Mapping) and "bits" in raw:
            bits = raw["bits"]
            if not isinstance(bits, int) or isinstance(bits, bool):
                raise ProgramError(f"{where}: 'bits' must be an integer")
            if "hex" in raw:
                try:
                    same = float_to_bits(parse_hex(str(raw["hex"]), fmt), fmt) == bits
                except ValueError as exc:
                    raise ProgramError(f"{where}: {exc}") from None
                if not same:
                    raise ProgramError(f"{where}: 'hex' {raw['hex']!r} does not match bits {bits}")
            return Const(bits)
        raise ProgramError(f"{where}: cannot read operand {raw!r}")

    body = []
    for position, item in enumerate(body_data):
        where = f"instruction {register_name(position + 1)}"
        if not isinstance(item, Mapping) or "op" not in item or "args" not in item:
            raise ProgramError(f"{where}: needs 'op' and 'args'")
        if not isinstance(item["args"], list):
            raise ProgramError(f"{where}: 'args' must be a list")
        body.append(Instr(str(item["op"]), tuple(operand(a, where) for a in item["args"])))
    return Program(tuple(body), operand(data["out"], "output"), dtype)


def dumps(program: Program, indent: int | None = 1) -> str:
    return json.dumps(to_dict(program), indent=indent)


def loads(text: str) -> Program:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProgramError(f"not valid JSON: {exc.msg} at line {exc.lineno}") from None
    return from_dict(data)


def constant_hex(bits: int, dtype: str = "float32") -> str:
    """Hex text of a constant given by bits (a convenience for reports)."""
    fmt = get_format(dtype)
    return format_hex(bits_to_float(bits, fmt), fmt)
