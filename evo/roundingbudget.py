"""The rounding budget of a program: per point, every op's worst rounding error carried to its output."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from primitives.floatbits import FloatFormat, bits_to_float, get_format
from primitives.program import Program, Ref


@dataclass(frozen=True, slots=True)
class _Plan:
    """A program's instructions with each operand as (is a register, register or constant slot)."""

    ops: tuple[str, ...]
    args: tuple[tuple[tuple[bool, int], ...], ...]
    out: int  # register of the output, -1 for a constant


def _plan(program: Program) -> _Plan:
    slots, args = 0, []
    for instr in program.body:
        row = []
        for arg in instr.args:
            if isinstance(arg, Ref):
                row.append((True, arg.index))
            else:
                row.append((False, slots))
                slots += 1
        args.append(tuple(row))
    out = program.out.index if isinstance(program.out, Ref) else -1
    return _Plan(tuple(i.op for i in program.body), tuple(args), out)


def rounding_budget(program: Program, x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Per point, the rounding budget of ``program`` in units of 1/scale (see ``model_and_budget``)."""
    return model_and_budget(program, x, scale)[1]


def model_and_budget(program: Program, x: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The program run in float64 (its constants as they are, no op rounding), and per point the sum
    over the instructions of ulp(t_i)/2 * |d out / d t_i|, in units of 1/scale.

    Each op rounds its exact result t_i by at most half an ulp of t_i in the program's format;
    carried to the output through the rest of the program (to first order) that is
    ulp(t_i)/2 * |d out / d t_i|. The values and derivatives are those of the program run in float64
    (the model the fit sees). A bound, not an estimate: the roundings of different ops rarely
    reach their worst at the same point. Where it is large compared with the target's error unit,
    a fit must leave that much room for rounding, and a form whose intermediate values sit low in
    their binades (where half an ulp is the largest relative error) pays more than one whose values
    sit just below a power of two."""
    fmt = get_format(program.dtype)
    consts = [bits_to_float(b, fmt) for b in program.constants()]
    return _model_and_budget(_plan(program), consts, np.asarray(x, dtype=np.float64), scale, fmt)


def _model_and_budget(
    plan: _Plan, consts: list, x: np.ndarray, scale: np.ndarray, fmt: FloatFormat
) -> tuple[np.ndarray, np.ndarray]:
    """As ``model_and_budget``; a constant may be a column of values (one row of results each)."""
    shape = np.broadcast_shapes(x.shape, *(np.shape(c) for c in consts))
    values: list[np.ndarray] = [np.broadcast_to(x, shape)]

    def operands(row):
        return [values[i] if is_ref else consts[i] for is_ref, i in row]

    with np.errstate(all="ignore"):
        for op, row in zip(plan.ops, plan.args, strict=True):
            values.append(np.broadcast_to(_apply(op, operands(row)), shape))
        if plan.out < 0:
            return np.broadcast_to(consts[-1] if consts else np.nan, shape), np.zeros(shape)
        adjoint = [np.zeros(shape) for _ in values]
        adjoint[plan.out] = np.ones(shape)
        for index in range(len(plan.ops), 0, -1):
            op, row, g = plan.ops[index - 1], plan.args[index - 1], adjoint[index]
            for (is_ref, i), partial in zip(row, _partials(op, operands(row), values[index]), strict=True):
                if is_ref:
                    adjoint[i] = adjoint[i] + g * partial
        total = np.zeros(shape)
        for index in range(1, len(values)):
            total += _ulp(values[index], fmt) * np.abs(adjoint[index])
        return values[plan.out], 0.5 * total * np.asarray(scale, dtype=np.float64)


def _ulp(v: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """ulp of float64 values in the format: 2^(max(exponent, emin) - (precision - 1)), read off the
    float64 exponent field (zero gets emin's; a non-finite value an enormous one)."""
    biased = (np.ascontiguousarray(v, dtype=np.float64).view(np.int64) >> 52) & 0x7FF
    exponent = np.maximum(biased - 1023, fmt.emin) - (fmt.precision - 1)
    return (np.minimum(exponent + 1023, 2046) << 52).view(np.float64)


def _apply(op: str, a: list[np.ndarray]) -> np.ndarray:
    if op == "add":
        return a[0] + a[1]
    if op == "sub":
        return a[0] - a[1]
    if op == "mul":
        return a[0] * a[1]
    if op == "div":
        return a[0] / a[1]
    if op == "fma":
        return a[0] * a[1] + a[2]
    if op == "neg":
        return -a[0]
    if op == "sqrt":
        return np.sqrt(a[0])
    raise ValueError(f"no rounding budget for op {op!r}")


def _partials(op: str, a: list[np.ndarray], result: np.ndarray) -> tuple[np.ndarray, ...]:
    """d result / d operand, per operand."""
    one = np.ones_like(result)
    if op == "add":
        return one, one
    if op == "sub":
        return one, -one
    if op == "mul":
        return a[1], a[0]
    if op == "div":
        return 1.0 / a[1], -result / a[1]
    if op == "fma":
        return a[1], a[0], one
    if op == "neg":
        return (-one,)
    if op == "sqrt":
        return (0.5 / result,)
    raise ValueError(f"no rounding budget for op {op!r}")


def budgeted_error(program: Program, x: np.ndarray, ref: np.ndarray, scale: np.ndarray) -> float:
    """max over the points of |model - f| + rounding budget, in units of 1/scale: what the program
    may be off by at worst (to first order), its constants as they are. Unlike the error as
    evaluated on a sample it does not depend on which points the sample holds: an ill-placed
    constant shows here as model error at every point near it."""
    fmt = get_format(program.dtype)
    consts = [bits_to_float(b, fmt) for b in program.constants()]
    return _budgeted(_plan(program), consts, np.asarray(x, dtype=np.float64), ref, scale, fmt)


def _budgeted(plan: _Plan, consts: list, x, ref, scale, fmt: FloatFormat):
    """``budgeted_error`` of the constants (a column of values in one slot: one error per row)."""
    y, budget = _model_and_budget(plan, consts, x, scale, fmt)
    with np.errstate(all="ignore"):
        total = np.abs(y - ref) * scale + budget
        worst = total.max(axis=-1) if total.shape[-1] else np.full(total.shape[:-1], np.inf)
    worst = np.where(np.isfinite(worst), worst, np.inf)
    return float(worst) if worst.ndim == 0 else worst


def settled_constants(
    program: Program, x: np.ndarray, ref: np.ndarray, scale: np.ndarray, radius: int = 64, budget: int = 800
) -> tuple[Program, float]:
    """The program with its constants moved among neighbouring floats (steps of 1, 2, 4, ... up to
    ``radius`` ulps, one constant at a time, the best step of each, until a pass finds nothing or
    ``budget`` evaluations are spent) to the lowest ``budgeted_error``, and that error. Rounding
    each fitted constant to nearest can cost more than the op roundings (a constant of 2^11 is off
    by up to 2^-13); moved together the floats compensate each other, which a continuous fit
    cannot see."""
    fmt = get_format(program.dtype)
    plan, x = _plan(program), np.asarray(x, dtype=np.float64)
    bits = list(program.constants())
    values: list = [bits_to_float(b, fmt) for b in bits]
    best = _budgeted(plan, values, x, ref, scale, fmt)
    steps = [s for k in range(radius.bit_length()) for s in (1 << k, -(1 << k))]
    spent, moved = 0, True
    while moved and spent < budget:
        moved = False
        for slot in range(len(bits)):
            candidates = [b for b in (_stepped(bits[slot], step, fmt) for step in steps) if b is not None]
            if not candidates or spent >= budget:
                continue
            spent += len(candidates)
            column = np.array([[bits_to_float(b, fmt)] for b in candidates])
            errors = _budgeted(plan, values[:slot] + [column] + values[slot + 1 :], x, ref, scale, fmt)
            pick = int(np.argmin(errors))
            if errors[pick] < best:
                best, moved = float(errors[pick]), True
                bits[slot], values[slot] = candidates[pick], float(column[pick, 0])
    return program.with_constants(bits), best


def _stepped(bits: int, step: int, fmt: FloatFormat) -> int | None:
    """The pattern of the float ``step`` places from the one with pattern ``bits`` (by ordinal:
    consecutive floats differ by one), None where that crosses zero or leaves the finite floats."""
    sign = 1 << (fmt.width - 1)
    ordinal = -(bits & (sign - 1)) if bits & sign else bits
    moved = ordinal + step
    if ordinal and (moved == 0 or (moved > 0) != (ordinal > 0)):
        return None
    pattern = (sign | -moved) if moved < 0 else moved
    return pattern if np.isfinite(bits_to_float(pattern, fmt)) else None
