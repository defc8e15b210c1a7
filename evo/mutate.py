"""Mutations: a closed, named list of pure functions (program, rng, space) -> program or None.

``mutate`` picks a kind by weight and retries until the child differs from the parent (canonical
hash) and respects the op-count bound. Kinds:

- insert: put a new instruction on an existing edge (the old operand becomes one of its inputs),
  so the new instruction is live; other inputs are earlier values or fresh constants.
- remove: delete an instruction, bypassing it through one of its operands.
- rewire: point one operand (or the output) at another earlier value or a fresh constant.
- change_op: swap an instruction's op for another allowed one (operands kept or drawn).
- perturb_const: move one constant a few float steps, or by a small relative factor.
- redraw_const: replace one constant by a fresh draw from the constant prior.
- refit: jitter every constant (no structural change) so the fitter restarts from elsewhere.
- horner_step: one more Horner step at the output, fma(p, v, c) with v = x or an earlier value.
- reciprocal: replace a value t on an edge by t + c/r (r is x or t): the step x -> x + c/x that
  continued-fraction forms are built from.
- fraction: replace a value t by c/(t + c'): one more level of a continued fraction.
- square: replace a value t by t*t (powers by repeated squaring).
- level: one more continued-fraction level under a computed value t (not x): t -> t + c/t with c
  of the size of t's own constants, and every large constant of the program scaled by one common
  factor (the flat direction of continued-fraction forms, along which the deeper form's basin lies;
  f5 to the 8th power becomes f10's structure this way).
  These four weigh 0 by default in float32 mode; real mode turns them on (``evo.config``).

Children of every kind but perturb_const get their constants re-fitted (``FIT_KINDS``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from evo.compensated import frozen_edges, frozen_slots
from evo.fit import SCALE_ABOVE
from primitives.floatbits import bits_to_float, float_to_bits, from_ordinal, get_format, ordinal
from primitives.ops import get_op
from primitives.program import Const, Instr, Operand, Program, Ref, X

NICE_CONSTANTS = (1.0, -1.0, 2.0, 0.5, -0.5)
FIT_KINDS = frozenset(
    {
        "insert",
        "remove",
        "rewire",
        "change_op",
        "redraw_const",
        "refit",
        "horner_step",
        "reciprocal",
        "fraction",
        "square",
        "level",
        "seed",
    }
)


@dataclass(frozen=True, slots=True)
class SearchSpace:
    """What mutations may build: allowed ops, the op-count bound and the constant prior."""

    ops: tuple[str, ...]
    max_ops: int
    weights: tuple[tuple[str, float], ...]
    dtype: str = "float32"
    retries: int = 20
    log10_min: float = -6.0
    log10_max: float = 1.0
    output_insert_rate: float = 0.5

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(k for k, w in self.weights if w > 0)

    @property
    def probabilities(self) -> np.ndarray:
        w = np.array([w for _, w in self.weights if w > 0], dtype=np.float64)
        return w / w.sum()


def draw_constant(rng: np.random.Generator, space: SearchSpace) -> Const:
    """A fresh constant: sometimes a simple one, otherwise a random sign and log-uniform magnitude."""
    fmt = get_format(space.dtype)
    if rng.random() < 0.2:
        value = NICE_CONSTANTS[rng.integers(len(NICE_CONSTANTS))]
    else:
        value = float(rng.choice((-1.0, 1.0))) * 10.0 ** rng.uniform(space.log10_min, space.log10_max)
    return Const(float_to_bits(float(fmt.dtype.type(value)), fmt))


def _random_operand(
    rng: np.random.Generator, space: SearchSpace, defined: int, const_rate: float = 0.3
) -> Operand:
    """An earlier register (index < defined; recent ones and x favoured) or a fresh constant."""
    if rng.random() < const_rate:
        return draw_constant(rng, space)
    if defined == 1 or rng.random() < 0.3:
        return Ref(0)
    if rng.random() < 0.5:
        return Ref(defined - 1)
    return Ref(int(rng.integers(defined)))


def _edges(program: Program) -> list[tuple[int, int]]:
    """Every operand slot (consumer position, slot); position len(body) is the output."""
    edges = [(i, s) for i, ins in enumerate(program.body) for s in range(len(ins.args))]
    edges.append((len(program.body), 0))
    return edges


def _operand_at(program: Program, edge: tuple[int, int]) -> Operand:
    position, slot = edge
    return program.out if position == len(program.body) else program.body[position].args[slot]


def _with_operand(program: Program, edge: tuple[int, int], operand: Operand) -> Program:
    position, slot = edge
    if position == len(program.body):
        return program.with_output(operand)
    ins = program.body[position]
    args = list(ins.args)
    args[slot] = operand
    return program.replaced(position, Instr(ins.op, tuple(args)))


def insert(program: Program, rng: np.random.Generator, space: SearchSpace) -> Program | None:
    edges = _edges(program)
    # Half the time grow at the output (how Horner-like forms gain a degree), else anywhere.
    edge = edges[-1] if rng.random() < space.output_insert_rate else edges[int(rng.integers(len(edges)))]
    consumer, slot = edge
    old = _operand_at(program, (consumer, slot))
    lowest = old.index if isinstance(old, Ref) else 0
    position = int(rng.integers(lowest, consumer + 1))  # new instruction lands at body[position]
    op = get_op(space.ops[int(rng.integers(len(space.ops)))])
    keep = int(rng.integers(op.arity))
    args = [old if s == keep else _random_operand(rng, space, position + 1, 0.5) for s in range(op.arity)]
    grown = program.inserted(position, Instr(op.name, tuple(args)))
    return _with_operand(
        grown,
        (consumer + 1, slot) if consumer < len(program.body) else (len(grown.body), 0),
        Ref(position + 1),
    )


def remove(program: Program, rng: np.random.Generator, space: SearchSpace) -> Program | None:
    if not program.body:
        return None
    position = int(rng.integers(len(program.body)))
    ins = program.body[position]
    replacement = ins.args[int(rng.integers(len(ins.args)))]
    return program.removed(position, replacement)


def rewire(program: Program, rng: np.random.Generator, space: SearchSpace) -> Program | None:
    edges = _edges(program)
    edge = edges[int(rng.integers(len(edges)))]
    defined = edge[0] + 1  # registers 0..position are defined before instruction `position`
    operand = _random_operand(rng, space, defined, 0.3)
    return _with_operand(program, edge, operand)


def change_op(program: Program, rng: np.random.Generator, space: SearchSpace) -> Program | None:
    if not program.body or len(space.ops) < 2:
        return None
    position = int(rng.integers(len(program.body)))
    ins = program.body[position]
    choices = [op for op in space.ops if op != ins.op]
    new = get_op(choices[int(rng.integers(len(choices)))])
    args = list(ins.args[: new.arity])
    while len(args) < new.arity:
        args.append(_random_operand(rng, space, position + 1, 0.5))
    return program.replaced(position, Instr(new.name, tuple(args)))


def _constant_slots(program: Program) -> list[tuple[int, int]]:
    """Constant operand positions, less the constants of error-free transformations (``evo.compensated``)."""
    frozen = frozen_edges(program)
    slots = [
        (i, s)
        for i, ins in enumerate(program.body)
        for s, a in enumerate(ins.args)
        if isinstance(a, Const) and (i, s) not in frozen
    ]
    if isinstance(program.out, Const):
        slots.append((len(program.body), 0))
    return slots


def _moved(bits: int, rng: np.random.Generator, space: SearchSpace) -> Const:
    fmt = get_format(space.dtype)
    value = bits_to_float(bits, fmt)
    choice = rng.random()
    if value == 0.0 or choice < 0.05:
        return draw_constant(rng, space) if value == 0.0 else Const(float_to_bits(-value, fmt))
    if choice < 0.55:  # a few float steps (geometric), either way
        steps = int(2 ** rng.uniform(0, 12)) * int(rng.choice((-1, 1)))
        candidate = from_ordinal(ordinal(bits, fmt) + steps, fmt)
        if 0 <= candidate < (1 << fmt.width) and math.isfinite(bits_to_float(candidate, fmt)):
            return Const(candidate)
        return Const(bits)
    factor = 1.0 + rng.standard_normal() * 10.0 ** rng.uniform(-7, -1)
    with np.errstate(over="ignore"):
        moved = float(fmt.dtype.type(value * factor))
    return Const(float_to_bits(moved, fmt)) if math.isfinite(moved) else Const(bits)


def perturb_const(program: Program, rng: np.random.Generator, space: SearchSpace) -> Program | None:
    slots = _constant_slots(program)
    if not slots:
        return None
    edge = slots[int(rng.integers(len(slots)))]
    return _with_operand(program, edge, _moved(_operand_at(program, edge).bits, rng, space))


def redraw_const(program: Program, rng: np.random.Generator, space: SearchSpace) -> Program | None:
    slots = _constant_slots(program)
    if not slots:
        return None
    edge = slots[int(rng.integers(len(slots)))]
    return _with_operand(program, edge, draw_constant(rng, space))


def refit(program: Program, rng: np.random.Generator, space: SearchSpace) -> Program | None:
    constants = program.constants()
    if not constants:
        return None
    fmt = get_format(space.dtype)
    frozen = set(frozen_slots(program))
    jittered = []
    for index, bits in enumerate(constants):
        if index in frozen:
            jittered.append(bits)
            continue
        value = bits_to_float(bits, fmt) * math.exp(0.1 * rng.standard_normal())
        with np.errstate(over="ignore"):
            value = float(fmt.dtype.type(value))
        jittered.append(float_to_bits(value, fmt) if math.isfinite(value) else bits)
    return program.with_constants(jittered)


def horner_step(program: Program, rng: np.random.Generator, space: SearchSpace) -> Program | None:
    """One more Horner step at the output: p -> fma(p, v, c) (or p*v + c without fma), where v is x
    or (a third of the time) an earlier value such as x*x, and c a fresh constant for the fit.

    This is how a polynomial gains a degree; ``insert`` finds it only by a chain of lucky draws."""
    out = program.out
    if not isinstance(out, Ref):
        return None
    defined = len(program.body) + 1
    v = Ref(0) if defined == 1 or rng.random() < 2 / 3 else Ref(int(rng.integers(1, defined)))
    c = draw_constant(rng, space)
    if "fma" in space.ops:
        return program.inserted(len(program.body), Instr("fma", (out, v, c))).with_output(Ref(defined))
    if not {"mul", "add"} <= set(space.ops):
        return None
    grown = program.inserted(len(program.body), Instr("mul", (out, v)))
    return grown.inserted(len(grown.body), Instr("add", (Ref(defined), c))).with_output(Ref(defined + 1))


def _value_edge(program: Program, rng: np.random.Generator, space: SearchSpace) -> tuple[int, int] | None:
    """An edge carrying a register (x or an instruction's value): the output at the output
    insert rate, else any such edge."""
    edges = [e for e in _edges(program) if isinstance(_operand_at(program, e), Ref)]
    if not edges:
        return None
    if isinstance(program.out, Ref) and rng.random() < space.output_insert_rate:
        return edges[-1]
    return edges[int(rng.integers(len(edges)))]


def _spliced(program: Program, edge: tuple[int, int], chain: list[Instr]) -> Program:
    """``chain`` inserted just before the edge's consumer (its k-th instruction becomes register
    consumer + 1 + k and may use the ones before it), its last value feeding the edge."""
    consumer, slot = edge
    grown = program
    for k, instr in enumerate(chain):
        grown = grown.inserted(consumer + k, instr)
    last = Ref(consumer + len(chain))
    if consumer == len(program.body):
        return grown.with_output(last)
    return _with_operand(grown, (consumer + len(chain), slot), last)


def reciprocal(program: Program, rng: np.random.Generator, space: SearchSpace) -> Program | None:
    if not {"add", "div"} <= set(space.ops):
        return None
    edge = _value_edge(program, rng, space)
    if edge is None:
        return None
    t = _operand_at(program, edge)
    r = X if rng.random() < 0.5 else t
    base = edge[0]
    step = Instr("div", (draw_constant(rng, space), r))
    return _spliced(program, edge, [step, Instr("add", (t, Ref(base + 1)))])


def fraction(program: Program, rng: np.random.Generator, space: SearchSpace) -> Program | None:
    if not {"add", "div"} <= set(space.ops):
        return None
    edge = _value_edge(program, rng, space)
    if edge is None:
        return None
    t = _operand_at(program, edge)
    base = edge[0]
    return _spliced(
        program,
        edge,
        [
            Instr("add", (t, draw_constant(rng, space))),
            Instr("div", (draw_constant(rng, space), Ref(base + 1))),
        ],
    )


def square(program: Program, rng: np.random.Generator, space: SearchSpace) -> Program | None:
    if "mul" not in space.ops:
        return None
    edge = _value_edge(program, rng, space)
    if edge is None:
        return None
    t = _operand_at(program, edge)
    return _spliced(program, edge, [Instr("mul", (t, t))])


def _cone_constants(program: Program, register: int) -> list[float]:
    """Values of the constants that ``register`` depends on (its cone of instructions)."""
    fmt = get_format(program.dtype)
    wanted, values = {register}, []
    for position in range(len(program.body), 0, -1):
        if position not in wanted:
            continue
        for arg in program.body[position - 1].args:
            if isinstance(arg, Ref):
                wanted.add(arg.index)
            else:
                values.append(bits_to_float(arg.bits, fmt))
    return values


def level(program: Program, rng: np.random.Generator, space: SearchSpace) -> Program | None:
    """t -> t + c/t on an edge carrying a computed value t (an add or sub preferred: the
    denominators of continued fractions), then all constants above ``evo.fit.SCALE_ABOVE`` (the ones
    the fit's scale scan moves together) times k.

    c = sign * m * 2^U(-1, 2) with m the largest constant magnitude in t's cone (1 if none), so
    c/t is a correction of t's own size; k = 2^U(0, 2): a rational form's optimum moves along its
    joint scaling when it gains a level (f5^8 -> f10 needs k ~ 3.6), and the fitter does not walk
    that far by itself."""
    if not {"add", "div"} <= set(space.ops):
        return None
    edges = [e for e in _edges(program) if isinstance(_operand_at(program, e), Ref)]
    computed = [e for e in edges if _operand_at(program, e).index > 0]
    if not computed:
        return None
    sums = [e for e in computed if program.body[_operand_at(program, e).index - 1].op in ("add", "sub")]
    pool = sums if sums and rng.random() < 0.8 else computed
    edge = pool[int(rng.integers(len(pool)))]
    t = _operand_at(program, edge)
    fmt = get_format(space.dtype)
    magnitude = max((abs(v) for v in _cone_constants(program, t.index)), default=1.0) or 1.0
    c = float(rng.choice((-1.0, 1.0))) * magnitude * 2.0 ** rng.uniform(-1.0, 2.0)
    with np.errstate(over="ignore"):
        rounded = float(fmt.dtype.type(c))
    if not math.isfinite(rounded):  # a constant near the format's max in t's cone
        return None
    c_const = Const(float_to_bits(rounded, fmt))
    base = edge[0]
    child = _spliced(program, edge, [Instr("div", (c_const, t)), Instr("add", (Ref(base + 1), t))]).pruned()
    k = 2.0 ** rng.uniform(0.0, 2.0)
    scaled = []
    for bits in child.constants():
        value = bits_to_float(bits, fmt)
        if abs(value) >= SCALE_ABOVE:
            with np.errstate(over="ignore"):
                moved = float(fmt.dtype.type(value * k))
            bits = float_to_bits(moved, fmt) if math.isfinite(moved) else bits
        scaled.append(bits)
    if not all(math.isfinite(bits_to_float(b, fmt)) for b in scaled):
        return None
    return child.with_constants(scaled)


MUTATIONS: dict[str, Callable[[Program, np.random.Generator, SearchSpace], Program | None]] = {
    "insert": insert,
    "remove": remove,
    "rewire": rewire,
    "change_op": change_op,
    "perturb_const": perturb_const,
    "redraw_const": redraw_const,
    "refit": refit,
    "horner_step": horner_step,
    "reciprocal": reciprocal,
    "fraction": fraction,
    "square": square,
    "level": level,
}


def mutate(program: Program, rng: np.random.Generator, space: SearchSpace) -> tuple[Program, str]:
    """A child that differs from ``program`` (canonical hash) and has at most ``max_ops`` ops.

    Returns (child, kind). If no kind succeeds within ``space.retries`` attempts the parent is
    returned unchanged with kind "none" (the caller simply re-evaluates it).
    """
    parent_hash = program.canonical_hash()
    kinds, p = space.kinds, space.probabilities
    for _ in range(space.retries):
        kind = kinds[int(rng.choice(len(kinds), p=p))]
        child = MUTATIONS[kind](program, rng, space)
        if child is None:
            continue
        child = child.pruned()
        if child.op_count() > space.max_ops:
            continue
        if child.canonical_hash() != parent_hash:
            return child, kind
    return program, "none"
