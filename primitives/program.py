"""The straight-line SSA program: one input x, instructions over earlier values and constants, one output.

Register 0 is the input x; register i >= 1 is the result of ``body[i - 1]`` (named ``t{i}``).
An operand is either a ``Ref`` to an earlier register or a ``Const`` holding the bit pattern of a
constant in the program's format, so every program is a straight line by construction and its
constants survive JSON exactly. Programs are immutable values; every edit returns a new program.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from primitives.floatbits import (
    FloatFormat,
    bits_to_float,
    float_to_bits,
    format_hex,
    get_format,
    is_finite_bits,
)
from primitives.ops import OP_BY_NAME, get_op


class ProgramError(ValueError):
    """A malformed program (unknown op, wrong arity, forward reference, bad constant...)."""


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to register ``index`` (0 is x, i >= 1 is instruction i's result)."""

    index: int

    def __reduce__(self):  # compact pickles: programs travel between processes a lot
        return (Ref, (self.index,))


@dataclass(frozen=True, slots=True)
class Const:
    """A constant, stored as its IEEE bit pattern in the program's format."""

    bits: int

    def __reduce__(self):
        return (Const, (self.bits,))


Operand = Ref | Const

X = Ref(0)


@dataclass(frozen=True, slots=True)
class Instr:
    """One instruction: an op from the op table applied to operands."""

    op: str
    args: tuple[Operand, ...]

    def __reduce__(self):
        return (Instr, (self.op, self.args))


def register_name(index: int) -> str:
    """Human name of a register: ``x`` for 0, ``t{i}`` otherwise."""
    return "x" if index == 0 else f"t{index}"


@dataclass(frozen=True, slots=True)
class Program:
    """An immutable straight-line program in SSA form, validated on construction.

    Attributes:
        body: the instructions, in evaluation order.
        out: the operand returned (a register or a constant).
        dtype: "float32" (the default) or "float64" (the real-number setting); constants are bit
            patterns of this format and every operation rounds to it.
    """

    body: tuple[Instr, ...] = ()
    out: Operand = X
    dtype: str = "float32"
    _live: tuple[bool, ...] = field(default=(), init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.body, tuple):
            object.__setattr__(self, "body", tuple(self.body))
        fmt = _format_or_error(self.dtype)
        for position, instr in enumerate(self.body):
            _check_instr(instr, position + 1, fmt)
        _check_operand(self.out, len(self.body) + 1, fmt, "the output")
        object.__setattr__(self, "_live", _live_mask(self.body, self.out))

    # ----------------------------------------------------------------- structure
    @property
    def format(self) -> FloatFormat:
        return get_format(self.dtype)

    @property
    def n_instructions(self) -> int:
        """Instructions in the body, dead ones included."""
        return len(self.body)

    @property
    def live(self) -> tuple[bool, ...]:
        """For each instruction, whether the output depends on it."""
        return self._live

    def is_pruned(self) -> bool:
        return all(self._live)

    def pruned(self) -> Program:
        """The same program without dead instructions (evaluation order kept)."""
        if self.is_pruned():
            return self
        renumber = {0: 0}
        body: list[Instr] = []
        for position, (instr, alive) in enumerate(zip(self.body, self._live, strict=True)):
            if alive:
                body.append(Instr(instr.op, tuple(_renumbered(a, renumber) for a in instr.args)))
                renumber[position + 1] = len(body)
        return Program(tuple(body), _renumbered(self.out, renumber), self.dtype)

    def op_count(self) -> int:
        """Number of live instructions (an fma counts as one)."""
        return sum(self._live)

    def op_histogram(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for instr, alive in zip(self.body, self._live, strict=True):
            if alive:
                counts[instr.op] = counts.get(instr.op, 0) + 1
        return counts

    def cost(self, weights: Mapping[str, float] | None = None) -> float:
        """Weighted op count of the live instructions; weights default to the op table's costs."""
        total = 0.0
        for name, count in self.op_histogram().items():
            weight = get_op(name).cost if weights is None or name not in weights else weights[name]
            total += weight * count
        return total

    def depth(self) -> int:
        """Length of the longest chain of instructions feeding the output (0 for f(x) = x)."""
        level = [0] * (len(self.body) + 1)
        for position, instr in enumerate(self.body):
            level[position + 1] = 1 + max(
                (level[a.index] for a in instr.args if isinstance(a, Ref)), default=0
            )
        return level[self.out.index] if isinstance(self.out, Ref) else 0

    def constants(self) -> tuple[int, ...]:
        """Bit patterns of the constants in live instructions, in operand order."""
        found = [
            arg.bits
            for instr, alive in zip(self.body, self._live, strict=True)
            if alive
            for arg in instr.args
            if isinstance(arg, Const)
        ]
        if isinstance(self.out, Const):
            found.append(self.out.bits)
        return tuple(found)

    def constant_values(self) -> tuple[float, ...]:
        fmt = self.format
        return tuple(bits_to_float(b, fmt) for b in self.constants())

    def with_constants(self, bits: Sequence[int]) -> Program:
        """The live program with its constants (in ``constants()`` order) replaced by ``bits``."""
        program = self.pruned()
        wanted = len(program.constants())
        if len(bits) != wanted:
            raise ProgramError(f"program has {wanted} constants, got {len(bits)} values")
        supply = iter(bits)
        body = tuple(
            Instr(i.op, tuple(Const(next(supply)) if isinstance(a, Const) else a for a in i.args))
            for i in program.body
        )
        out = Const(next(supply)) if isinstance(program.out, Const) else program.out
        return Program(body, out, self.dtype)

    # ----------------------------------------------------------------- surgery
    def inserted(self, position: int, instr: Instr) -> Program:
        """Insert ``instr`` so that it becomes ``body[position]``; later references shift by one.

        ``instr``'s operands are interpreted in the program *before* insertion and must refer to
        registers < position + 1. The output is unchanged.
        """
        if not 0 <= position <= len(self.body):
            raise ProgramError(f"insert position {position} out of range")
        shift = {i: (i if i <= position else i + 1) for i in range(len(self.body) + 1)}
        body = [Instr(i.op, tuple(_renumbered(a, shift) for a in i.args)) for i in self.body]
        body.insert(position, instr)
        return Program(tuple(body), _renumbered(self.out, shift), self.dtype)

    def removed(self, position: int, replacement: Operand) -> Program:
        """Remove ``body[position]``, replacing every use of its result with ``replacement``.

        ``replacement`` must be a constant or a register defined before the removed instruction.
        """
        if not 0 <= position < len(self.body):
            raise ProgramError(f"remove position {position} out of range")
        removed = position + 1
        if isinstance(replacement, Ref) and replacement.index >= removed:
            raise ProgramError("replacement must be defined before the removed instruction")
        mapping: dict[int, Operand] = {}
        for i in range(len(self.body) + 1):
            if i < removed:
                mapping[i] = Ref(i)
            elif i == removed:
                mapping[i] = replacement
            else:
                mapping[i] = Ref(i - 1)
        body = [
            Instr(ins.op, tuple(mapping[a.index] if isinstance(a, Ref) else a for a in ins.args))
            for k, ins in enumerate(self.body)
            if k != position
        ]
        out = mapping[self.out.index] if isinstance(self.out, Ref) else self.out
        return Program(tuple(body), out, self.dtype)

    def replaced(self, position: int, instr: Instr) -> Program:
        """``body[position]`` replaced by ``instr`` (operands must refer to earlier registers)."""
        if not 0 <= position < len(self.body):
            raise ProgramError(f"replace position {position} out of range")
        body = list(self.body)
        body[position] = instr
        return Program(tuple(body), self.out, self.dtype)

    def with_output(self, out: Operand) -> Program:
        return Program(self.body, out, self.dtype)

    # ----------------------------------------------------------------- identity
    def canonical_hash(self) -> str:
        """A hash of what the program computes, structurally.

        Invariant under dead code, under the order of independent instructions and under swapping
        the operands of commutative ops (the first two operands of add, mul and fma); sensitive to
        everything else, including constants' exact bits, the format and how many times a
        sub-expression is materialised (which changes the cost).
        """
        node: list[str] = ["x"]
        for instr in self.body:
            keys = [_operand_key(a, node) for a in instr.args]
            if get_op(instr.op).commutative:
                keys[:2] = sorted(keys[:2])
            node.append(_digest(instr.op + "(" + ",".join(keys) + ")"))
        live_nodes = sorted(node[i + 1] for i, alive in enumerate(self._live) if alive)
        payload = "|".join([self.dtype, _operand_key(self.out, node), *live_nodes])
        return _digest(payload)[:20]

    def __reduce__(self):
        # A pickled program was validated when it was built; rebuilding it skips the checks.
        return (_restore_program, (self.body, self.out, self.dtype, self._live))

    @staticmethod
    def identity(dtype: str = "float32") -> Program:
        """f(x) = x, the starting point of a search from nothing."""
        return Program((), X, dtype)

    def __str__(self) -> str:
        from primitives.textform import to_text

        return to_text(self)


def _restore_program(body: tuple[Instr, ...], out: Operand, dtype: str, live: tuple[bool, ...]) -> Program:
    program = object.__new__(Program)
    object.__setattr__(program, "body", body)
    object.__setattr__(program, "out", out)
    object.__setattr__(program, "dtype", dtype)
    object.__setattr__(program, "_live", live)
    return program


def const_of(value: float, dtype: str = "float32") -> Const:
    """A ``Const`` for a value exactly representable in ``dtype``."""
    return Const(float_to_bits(value, get_format(dtype)))


def instr(op: str, *args: Operand) -> Instr:
    """Shorthand for ``Instr(op, args)``."""
    return Instr(op, tuple(args))


def make_program(body: Iterable[Instr], out: Operand | None = None, dtype: str = "float32") -> Program:
    """A program whose output defaults to the last instruction (or x when the body is empty)."""
    body = tuple(body)
    return Program(body, Ref(len(body)) if out is None else out, dtype)


def describe_operand(operand: Operand, fmt: FloatFormat) -> str:
    """Text of one operand: a register name or the exact hex constant."""
    if isinstance(operand, Ref):
        return register_name(operand.index)
    return format_hex(bits_to_float(operand.bits, fmt), fmt)


# --------------------------------------------------------------------- helpers
def _format_or_error(dtype: str) -> FloatFormat:
    try:
        return get_format(dtype)
    except ValueError as exc:
        raise ProgramError(str(exc)) from None


def _check_operand(operand: object, defined: int, fmt: FloatFormat, where: str) -> None:
    if isinstance(operand, Ref):
        if not isinstance(operand.index, int) or isinstance(operand.index, bool):
            raise ProgramError(f"{where}: register index must be an integer")
        if not 0 <= operand.index < defined:
            raise ProgramError(
                f"{where} reads {register_name(operand.index) if operand.index >= 0 else operand.index},"
                f" which is not defined before it"
            )
    elif isinstance(operand, Const):
        if not isinstance(operand.bits, int) or not 0 <= operand.bits < (1 << fmt.width):
            raise ProgramError(f"{where}: constant bits {operand.bits!r} are not a {fmt.name} bit pattern")
        if not is_finite_bits(operand.bits, fmt):
            raise ProgramError(f"{where}: constant is not finite")
    else:
        raise ProgramError(f"{where}: operand {operand!r} is neither a register nor a constant")


def _check_instr(instr: object, register: int, fmt: FloatFormat) -> None:
    where = f"instruction {register_name(register)}"
    if not isinstance(instr, Instr):
        raise ProgramError(f"{where} is not an Instr")
    if instr.op not in OP_BY_NAME:
        raise ProgramError(f"{where}: unknown op {instr.op!r} (known: {', '.join(OP_BY_NAME)})")
    arity = OP_BY_NAME[instr.op].arity
    if len(instr.args) != arity:
        raise ProgramError(f"{where}: {instr.op} takes {arity} operands, got {len(instr.args)}")
    for arg in instr.args:
        _check_operand(arg, register, fmt, where)


def _live_mask(body: tuple[Instr, ...], out: Operand) -> tuple[bool, ...]:
    live = [False] * (len(body) + 1)
    if isinstance(out, Ref):
        live[out.index] = True
    for position in range(len(body), 0, -1):
        if live[position]:
            for arg in body[position - 1].args:
                if isinstance(arg, Ref):
                    live[arg.index] = True
    return tuple(live[1:])


def _renumbered(operand: Operand, mapping: Mapping[int, int]) -> Operand:
    return Ref(mapping[operand.index]) if isinstance(operand, Ref) else operand


def _operand_key(operand: Operand, node: list[str]) -> str:
    return node[operand.index] if isinstance(operand, Ref) else f"c{operand.bits:x}"


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
