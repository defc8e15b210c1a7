"""Compensated seeds for op sets without fma, and the error-free-transformation constants a fit must keep.

Without fma, Horner's rule rounds an unfused mul and add at every step, and the last steps (values
near the result's size) cost more than a float32 ULP between them: no plain polynomial gets
2^x on [0, 1] under 1 ULP at any degree. These forms keep the large part of the result exact and
round only a small tail:

  head   c0 + b*v with b a power of two (b*v is exact; for 2^x on [0, 1], b = 1: c0 + x)
  tail   T(v) ~ f - c0 - b*v, fitted by weighted minimax: v*(v - k)*S(v) with k = hi - lo (the
         tail of the chord vanishes at both ends, and the factor keeps every Horner value of S
         multiplied by |v*(v - k)| <= 1/4: its roundings shrink), or v*R(v)

and add them in one of two ways:

  exact   (T + b*v) + c0: two roundings, the first on a value below 1 (2^x on [0, 1], degree 6:
          13 ops, 0.81 ULP on the select set)
  fast2sum  s = a + b*v, e = (c0 - s) + b*v with a the power of two nearest c0 (Fast2Sum: e is
          the exact rounding error of s when |a| >= |b*v|, plus c0 - a), then s + (e + T): one
          rounding of consequence (16 ops, 0.62 ULP)

``frozen_edges`` names the constants of error-free transformations in any program (Fast2Sum's
addend, a Veltkamp splitter such as 4097 = 2^12 + 1, the constant of an add-and-subtract split):
in exact arithmetic they cancel, so a float64 fit sees no gradient for them and would move them at
random, while in float32 the transformation is exact only at their value. The fit, the polish and
the constant mutations leave them alone; a mutation that breaks the pattern frees them.
"""

from __future__ import annotations

import math

import numpy as np

from evo.classical import FIT_POINTS, SATURATED, _lawson, _program_error
from evo.progbuild import ProgramBuilder
from primitives.program import Const, Operand, Program, Ref

MAX_DEGREE = 12
TAILS = ("zeros", "mul_v")
HEADS = ("exact", "fast2sum")


def allowed(ops: tuple[str, ...], dtype: str) -> bool:
    """Compensated seeds are for float32 runs with add, sub and mul and without fma."""
    return dtype == "float32" and "fma" not in ops and {"add", "sub", "mul"} <= set(ops)


def op_count(shift: bool, power: bool, tail: str, head: str, degree: int) -> int:
    """Instructions of a form of total polynomial degree ``degree`` (>= 2)."""
    tail_ops = 2 * (degree - 2) + 3 if tail == "zeros" else 2 * (degree - 1) + 1
    return int(shift) + int(power) + tail_ops + (2 if head == "exact" else 5)


def compensated_seeds(
    x: np.ndarray,
    ref: np.ndarray,
    scale: np.ndarray,
    ops: tuple[str, ...],
    max_ops: int,
    dtype: str = "float32",
    per_cost: int = 2,
) -> list[Program]:
    """The best ``per_cost`` compensated forms of every op count up to ``max_ops`` (as evaluated on
    the points, rounding included), ordered by op count then error; none where ``allowed`` is not."""
    if not allowed(ops, dtype):
        return []
    x = np.asarray(x, dtype=np.float64)
    ref, scale = np.asarray(ref, dtype=np.float64), np.asarray(scale, dtype=np.float64)
    keep = np.isfinite(ref) & np.isfinite(scale) & np.isfinite(x)
    x, ref, scale = x[keep], ref[keep], scale[keep]
    if len(x) < 8:
        return []
    every = (x, ref, scale)
    order = np.argsort(x, kind="stable")
    if len(x) > FIT_POINTS:
        order = order[np.unique(np.linspace(0, len(x) - 1, FIT_POINTS).round().astype(np.int64))]
    fx, fref, fscale = x[order], ref[order], scale[order]
    lo, hi = float(fx[0]), float(fx[-1])
    shift = not lo <= 0.0 <= hi
    v = fx - lo if shift else fx
    slope = (fref[-1] - fref[0]) / (hi - lo) if hi > lo else 0.0
    if not (math.isfinite(slope) and slope != 0.0):
        return []
    b = math.copysign(2.0 ** round(math.log2(abs(slope))), slope)
    k = hi - lo if shift else hi
    ranked: dict[int, list[tuple[float, str, Program]]] = {}
    for tail in TAILS:
        for degree in range(2, MAX_DEGREE + 1):
            smallest = min(op_count(shift, b != 1.0, tail, h, degree) for h in HEADS)
            if smallest > max_ops or len(fx) <= 2 * (degree + 1):
                break
            columns = [np.ones_like(v)]
            base = v * (v - k) if tail == "zeros" else v
            columns += [base * v**j for j in range(degree - 1 if tail == "zeros" else degree)]
            coefficients, model_error = _lawson(np.stack(columns, 1), fref - b * v, fscale)
            c0, tail_coefficients = float(coefficients[0]), [float(c) for c in coefficients[1:]]
            for head in HEADS:
                if op_count(shift, b != 1.0, tail, head, degree) > max_ops:
                    continue
                # Fast2Sum's addend: the power of two nearest c0 (the fitted c0 goes into t = c0 - s,
                # exact by Sterbenz); its error term is exact only when the addend is the larger one
                a = math.copysign(2.0 ** round(math.log2(abs(c0))), c0) if c0 else 0.0
                if head == "fast2sum" and not abs(a) >= abs(b) * max(abs(v[0]), abs(v[-1])):
                    continue
                program = _program(shift, lo, b, k, tail, head, c0, a, tail_coefficients, dtype)
                if program is not None:
                    label = f"{tail} {head} degree {degree}"
                    ranked.setdefault(program.op_count(), []).append(
                        (_program_error(program, *every), label, program)
                    )
            if model_error < SATURATED:
                break
    seeds: list[Program] = []
    for count in sorted(ranked):
        hashes: set[str] = set()
        for _error, _label, program in sorted(ranked[count], key=lambda r: (r[0], r[1])):
            h = program.canonical_hash()
            if h not in hashes and len(hashes) < per_cost:
                hashes.add(h)
                seeds.append(program)
    return seeds


def _program(
    shift: bool,
    lo: float,
    b: float,
    k: float,
    tail: str,
    head: str,
    c0: float,
    a: float,
    coefficients: list[float],
    dtype: str,
) -> Program | None:
    """The straight-line program of one fitted form (``coefficients`` of S or R, lowest first)."""
    build = ProgramBuilder(dtype)
    body, const, emit = build.body, build.const, build.emit

    consts = [const(c) for c in coefficients]
    lo_c, b_c, k_c, c0_c, a_c = const(lo), const(b), const(k), const(c0), const(a)
    if any(c is None for c in [*consts, lo_c, b_c, k_c, c0_c, a_c]):
        return None
    v: Operand = emit("sub", Ref(0), lo_c) if shift else Ref(0)
    bv: Operand = v if b == 1.0 else emit("mul", b_c, v)
    r: Operand = consts[-1]
    for c in reversed(consts[:-1]):
        r = emit("add", emit("mul", r, v), c)
    # v*(v - k)*S(v), or v*R(v)
    t = emit("mul", emit("mul", v, emit("sub", v, k_c)), r) if tail == "zeros" else emit("mul", r, v)
    if head == "exact":
        out = emit("add", emit("add", t, bv), c0_c)
    else:
        s = emit("add", a_c, bv)
        e = emit("add", emit("sub", c0_c, s), bv)
        out = emit("add", s, emit("add", e, t))
    return Program(tuple(body), out, dtype).pruned()


def frozen_edges(program: Program) -> frozenset[tuple[int, int]]:
    """(instruction, operand) positions of the constants of error-free transformations in the live
    program: Fast2Sum's addend a in s = a + b, t = a - s (or s - a), e = t + b (or b - t); a
    Veltkamp splitter K in c = K*a, d = c - a, h = c - d; and both constants S of a split
    u = a + S, h = u - S."""
    body, live = program.body, program.live
    users: dict[int, list[int]] = {}
    for i, ins in enumerate(body):
        if live[i]:
            for a in ins.args:
                if isinstance(a, Ref) and a.index > 0:
                    users.setdefault(a.index - 1, []).append(i)
    frozen: set[tuple[int, int]] = set()
    for i, ins in enumerate(body):
        if not live[i] or len(ins.args) != 2:
            continue
        here = Ref(i + 1)
        if ins.op == "add":
            for position in (0, 1):
                a, other = ins.args[position], ins.args[1 - position]
                if not isinstance(a, Const):
                    continue
                for j in users.get(i, ()):
                    user = body[j]
                    if user.op != "sub" or here not in user.args or user.args[0] == user.args[1]:
                        continue
                    # the constants may differ (a fitted constant term in t): the pattern, not the value
                    a_first = user.args[1] == here
                    if not isinstance(user.args[0 if a_first else 1], Const):
                        continue
                    if _completes_fast2sum(body, users, j, other, a_first):
                        frozen.add((i, position))  # t = c0 - s keeps a fitted constant term
                    if not a_first:  # u = a + S, h = u - S: a split (S twice)
                        frozen.update({(i, position), (j, 1)})
        elif ins.op == "mul":
            for position, (splitter, a) in enumerate((ins.args, ins.args[::-1])):
                if isinstance(splitter, Const) and _completes_veltkamp(body, users, i, a):
                    frozen.add((i, position))
    return frozenset(frozen)


def _completes_fast2sum(body, users, t_index: int, b: Operand, a_first: bool) -> bool:
    """Whether t = body[t_index] (a - s when ``a_first``, else s - a) feeds e = t + b (or b - t)."""
    t = Ref(t_index + 1)
    for k in users.get(t_index, ()):
        user = body[k]
        if a_first and user.op == "add" and user.args in ((t, b), (b, t)):
            return True
        if not a_first and user.op == "sub" and user.args == (b, t):
            return True
    return False


def _completes_veltkamp(body, users, c_index: int, a: Operand) -> bool:
    """Whether c = body[c_index] (K*a) feeds d = c - a and then h = c - d."""
    c = Ref(c_index + 1)
    for j in users.get(c_index, ()):
        if body[j].op == "sub" and body[j].args == (c, a):
            d = Ref(j + 1)
            if any(body[k].op == "sub" and body[k].args == (c, d) for k in users.get(j, ())):
                return True
    return False


def frozen_slots(program: Program) -> tuple[int, ...]:
    """The frozen constants as indices into ``program.constants()`` (live constants, operand order)."""
    edges = frozen_edges(program)
    if not edges:
        return ()
    slots, index = [], 0
    for i, (ins, alive) in enumerate(zip(program.body, program.live, strict=True)):
        if not alive:
            continue
        for position, a in enumerate(ins.args):
            if isinstance(a, Const):
                if (i, position) in edges:
                    slots.append(index)
                index += 1
    return tuple(slots)
