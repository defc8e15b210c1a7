"""Programs as flat arrays (opcodes, operand registers, constant pool) for the numba kernels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from primitives.ops import MAX_ARITY, get_op
from primitives.program import Const, Operand, Program


@dataclass(frozen=True, slots=True)
class Encoded:
    """A pruned program laid out for the interpreter.

    Register file: row 0 is x, rows 1..k hold the distinct constants (``consts``), and row
    ``first + i`` holds instruction i's result. Unused operand slots point at row 0.

    Attributes:
        opcodes: int32[n] op codes from the op table.
        args: int32[n, MAX_ARITY] operand registers.
        consts: the constant pool in the program's format (float32 or float64).
        first: register of the first instruction (1 + number of constants).
        out: register holding the result.
    """

    opcodes: np.ndarray
    args: np.ndarray
    consts: np.ndarray
    first: int
    out: int


def encode(program: Program, share_constants: bool = True) -> Encoded:
    """Encode the live part of ``program`` (dead code never reaches the interpreter).

    Equal constants share one register unless ``share_constants`` is False; then every constant
    operand gets its own register, in ``program.constants()`` order (what constant fitting needs).
    """
    program = program.pruned()
    fmt = program.format
    constants = program.constants()
    if share_constants:
        pool: dict[int, int] = {}
        for bits in constants:
            pool.setdefault(bits, 1 + len(pool))
        values = list(pool)
    else:
        values = list(constants)
    first = 1 + len(values)
    next_constant = iter(range(1, first))

    def register(a: Operand) -> int:
        if type(a) is Const:
            return pool[a.bits] if share_constants else next(next_constant)
        return 0 if a.index == 0 else first + a.index - 1

    # build Python lists and convert once: element-wise numpy stores cost more than the rest of encode
    width = MAX_ARITY
    opcode_list = [get_op(ins.op).opcode for ins in program.body]
    arg_rows = [[register(a) for a in ins.args] + [0] * (width - len(ins.args)) for ins in program.body]
    opcodes = np.array(opcode_list, dtype=np.int32)
    args = np.array(arg_rows, dtype=np.int32).reshape(len(arg_rows), width)
    consts = np.array(values, dtype=fmt.uint_dtype).view(fmt.dtype)  # bit patterns, reinterpreted exactly
    out = register(program.out)
    for array in (opcodes, args, consts):
        array.setflags(write=False)
    return Encoded(opcodes, args, consts, first, out)
