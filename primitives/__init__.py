"""What a program is: the op table, immutable SSA programs, exact float formats, interpreter, oracle.

No I/O and no search here. Importing this package compiles nothing: the numba kernels compile on
first use (and are cached on disk).
"""

from primitives.ops import OP_NAMES, OPS, OpSpec, get_op
from primitives.program import Const, Instr, Program, ProgramError, Ref, X, const_of, instr, make_program

__all__ = [
    "OPS",
    "OP_NAMES",
    "Const",
    "Instr",
    "OpSpec",
    "Program",
    "ProgramError",
    "Ref",
    "X",
    "const_of",
    "get_op",
    "instr",
    "make_program",
]
