"""Mutations: every kind returns None or a valid program of the search space; ``mutate`` respects the
op-count bound, changes the canonical hash and is reproducible from (seed, child id)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evo.config import DEFAULT_MUTATION_WEIGHTS, MUTATION_KINDS
from evo.evaluate import child_rng
from evo.mutate import FIT_KINDS, MUTATIONS, NICE_CONSTANTS, SearchSpace, draw_constant, mutate
from primitives.ops import OP_BY_NAME
from primitives.program import Const, Program, Ref
from primitives.textform import parse_text
from tests.strategies import programs

SETTINGS = settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
SEARCH_OPS = ("add", "sub", "mul", "div", "fma")


def space_of(ops=SEARCH_OPS, max_ops=8, weights=DEFAULT_MUTATION_WEIGHTS, retries=20) -> SearchSpace:
    return SearchSpace(tuple(ops), max_ops, tuple(weights), "float32", retries)


op_subsets = st.lists(st.sampled_from(SEARCH_OPS), min_size=1, max_size=5, unique=True).map(tuple)


@st.composite
def program_and_space(draw):
    ops = draw(op_subsets)
    max_ops = draw(st.integers(1, 10))
    program = draw(programs(max_instructions=10, ops=[OP_BY_NAME[o] for o in ops]))
    return program, space_of(ops, max_ops)


def f32(bits: int) -> float:
    return float(np.array([bits], dtype=np.uint32).view(np.float32)[0])


def check_valid(child: Program, parent: Program, space: SearchSpace) -> None:
    """A child of ``parent`` in ``space``: a valid float32 program with allowed ops and finite constants."""
    assert isinstance(child, Program)
    # construction validates SSA form (operands defined earlier, arity, finite constant bits)
    rebuilt = Program(child.body, child.out, child.dtype)
    assert rebuilt == child
    assert child.dtype == parent.dtype == "float32"
    for ins in child.body:
        assert ins.op in space.ops, (ins.op, space.ops)
    consts = [a for ins in child.body for a in ins.args if isinstance(a, Const)]
    if isinstance(child.out, Const):
        consts.append(child.out)
    for c in consts:
        assert 0 <= c.bits < 2**32
        assert np.isfinite(f32(c.bits))


def operand_shape(a):
    return ("ref", a.index) if isinstance(a, Ref) else ("const",)


def shape(program: Program):
    """The structure without constant values: op sequence and which slots hold which registers."""
    return (
        tuple((ins.op, tuple(operand_shape(a) for a in ins.args)) for ins in program.body),
        operand_shape(program.out),
    )


def const_slots(program: Program) -> list[int]:
    found = [a.bits for ins in program.body for a in ins.args if isinstance(a, Const)]
    if isinstance(program.out, Const):
        found.append(program.out.bits)
    return found


# ----------------------------------------------------------------------------- single kinds
@SETTINGS
@given(case=program_and_space(), kind=st.sampled_from(sorted(MUTATIONS)), seed=st.integers(0, 2**32 - 1))
def test_every_kind_returns_none_or_a_valid_program(case, kind, seed):
    program, space = case
    child = MUTATIONS[kind](program, np.random.default_rng(seed), space)
    if child is None:
        return
    check_valid(child, program, space)
    n = len(program.body)
    if kind == "insert":
        assert len(child.body) == n + 1
    elif kind == "remove":
        assert len(child.body) == n - 1
    elif kind in ("rewire", "change_op", "perturb_const", "redraw_const"):
        assert len(child.body) == n
    if kind == "change_op":
        changed = [i for i, (a, b) in enumerate(zip(program.body, child.body, strict=True)) if a != b]
        assert len(changed) == 1 and child.body[changed[0]].op != program.body[changed[0]].op


@SETTINGS
@given(case=program_and_space(), seed=st.integers(0, 2**32 - 1))
def test_insert_on_a_pruned_program_adds_one_live_op(case, seed):
    program, space = case
    program = program.pruned()
    child = MUTATIONS["insert"](program, np.random.default_rng(seed), space)
    assert child is not None  # there is always an edge (at least the output)
    assert child.op_count() == program.op_count() + 1


@SETTINGS
@given(
    case=program_and_space(),
    kind=st.sampled_from(["perturb_const", "redraw_const"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_constant_moves_change_only_one_constant(case, kind, seed):
    program, space = case
    child = MUTATIONS[kind](program, np.random.default_rng(seed), space)
    if not const_slots(program):
        assert child is None
        return
    assert child is not None
    assert shape(child) == shape(program)  # same ops, same registers in the same slots
    before, after = const_slots(program), const_slots(child)
    assert sum(a != b for a, b in zip(before, after, strict=True)) <= 1


@SETTINGS
@given(case=program_and_space(), seed=st.integers(0, 2**32 - 1))
def test_refit_changes_only_constants(case, seed):
    program, space = case
    child = MUTATIONS["refit"](program, np.random.default_rng(seed), space)
    if not program.constants():
        assert child is None
        return
    assert child is not None
    assert shape(child) == shape(program.pruned())
    assert len(child.constants()) == len(program.constants())


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1))
def test_drawn_constants_are_finite_float32_from_the_prior(seed):
    space = space_of()
    rng = np.random.default_rng(seed)
    for _ in range(20):
        c = draw_constant(rng, space)
        value = f32(c.bits)
        assert np.isfinite(value)
        # a simple constant, or a float32-rounded magnitude in [10^log10_min, 10^log10_max]
        if value not in NICE_CONSTANTS:
            magnitude = abs(value)
            assert float(np.float32(10.0**space.log10_min)) * (1 - 2**-23) <= magnitude
            assert magnitude <= float(np.float32(10.0**space.log10_max)) * (1 + 2**-23)


# ----------------------------------------------------------------------------- mutate
def check_mutate(program: Program, space: SearchSpace, rng: np.random.Generator) -> tuple[Program, str]:
    child, kind = mutate(program, rng, space)
    assert kind in MUTATIONS or kind == "none"
    if kind == "none":
        assert child is program
        return child, kind
    assert space.weights and dict(space.weights)[kind] > 0  # only kinds with positive weight
    check_valid(child, program, space)
    assert child.op_count() <= space.max_ops
    assert child.canonical_hash() != program.canonical_hash()
    return child, kind


@SETTINGS
@given(case=program_and_space(), seed=st.integers(0, 2**32 - 1))
def test_mutate_respects_the_space_and_changes_the_hash(case, seed):
    program, space = case
    check_mutate(program, space, np.random.default_rng(seed))


@SETTINGS
@given(ops=op_subsets, max_ops=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
def test_fifty_successive_mutations_from_identity(ops, max_ops, seed):
    space = space_of(ops, max_ops)
    rng = np.random.default_rng(seed)
    program = Program.identity()
    kinds = set()
    for _ in range(50):
        program, kind = check_mutate(program, space, rng)
        kinds.add(kind)
        for fn in MUTATIONS.values():  # every single kind on the current program too
            child = fn(program, np.random.default_rng(rng.integers(2**32)), space)
            if child is not None:
                check_valid(child, program, space)
    assert kinds - {"none"}  # the identity can always grow, so something happened


@SETTINGS
@given(kind=st.sampled_from(MUTATION_KINDS), seed=st.integers(0, 2**32 - 1))
def test_mutate_with_one_kind_uses_only_that_kind(kind, seed):
    weights = tuple((k, 1.0 if k == kind else 0.0) for k in MUTATION_KINDS)
    space = space_of(weights=weights)
    rng = np.random.default_rng(seed)
    program = Program.identity()
    for _ in range(5):  # grow something with constants first
        program, _ = mutate(program, rng, space_of())
    child, got = mutate(program, rng, space)
    assert got in (kind, "none")


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_mutate_is_reproducible_from_seed_and_child_id(seed):
    space = space_of()
    parent = Program.identity()
    rng = np.random.default_rng(99)
    for _ in range(6):
        parent, _ = mutate(parent, rng, space)
    results = {}
    for child_id in range(30):
        a = mutate(parent, child_rng(seed, child_id), space)
        b = mutate(parent, child_rng(seed, child_id), space)
        assert a == b
        assert a[0].canonical_hash() == b[0].canonical_hash()
        results[child_id] = a[0].canonical_hash()
    # different child ids get different streams: 30 children are not all the same program
    assert len(set(results.values())) > 1
    # the stream depends on the seed too
    other = [mutate(parent, child_rng(seed + 1, i), space)[0].canonical_hash() for i in range(30)]
    assert other != list(results.values())


def test_child_rng_streams():
    assert (
        child_rng(3, 7).integers(2**62, size=4).tolist() == child_rng(3, 7).integers(2**62, size=4).tolist()
    )
    assert (
        child_rng(3, 7).integers(2**62, size=4).tolist() != child_rng(3, 8).integers(2**62, size=4).tolist()
    )
    assert (
        child_rng(3, 7).integers(2**62, size=4).tolist() != child_rng(4, 7).integers(2**62, size=4).tolist()
    )


def test_mutate_gives_up_with_kind_none_when_nothing_fits():
    # max_ops = 1 and a parent of 1 op with no constants: only insert (too big), remove, rewire and
    # change_op can apply; with only insert allowed, every child has 2 ops and is rejected.
    space = space_of(
        max_ops=1, weights=tuple((k, 1.0 if k == "insert" else 0.0) for k in MUTATION_KINDS), retries=5
    )
    parent = Program.identity()
    parent = MUTATIONS["insert"](parent, np.random.default_rng(0), space)
    assert parent.op_count() == 1
    child, kind = mutate(parent, np.random.default_rng(1), space)
    assert kind == "none" and child is parent


def test_fit_kinds_cover_every_kind_but_perturb_const():
    assert set(FIT_KINDS) == (set(MUTATIONS) - {"perturb_const"}) | {"seed"}
    assert set(MUTATIONS) == set(MUTATION_KINDS)


def test_horner_step_adds_one_horner_step_at_the_output():
    parent = parse_text("t1 = fma(0x1.5p-2, x, 0x1.6p-1)\nt2 = fma(t1, x, 0x1p+0)\nreturn t2")
    seen_v = set()
    for seed in range(40):
        child = MUTATIONS["horner_step"](parent, np.random.default_rng(seed), space_of())
        assert child.op_count() == 3 and child.body[:2] == parent.body
        last = child.body[-1]
        assert last.op == "fma" and last.args[0] == Ref(2) and isinstance(last.args[2], Const)
        assert child.out == Ref(3)
        seen_v.add(last.args[1])
    assert Ref(0) in seen_v and len(seen_v) > 1  # mostly x, sometimes an earlier value
    plain = MUTATIONS["horner_step"](parent, np.random.default_rng(0), space_of(ops=("add", "sub", "mul")))
    assert [i.op for i in plain.body[2:]] == ["mul", "add"] and plain.out == Ref(4)
    assert MUTATIONS["horner_step"](parent, np.random.default_rng(0), space_of(ops=("add", "sub"))) is None


def test_level_declines_when_its_correction_constant_overflows_float32():
    """A float32 max constant in the cone makes c = m * 2^U(-1, 2) round to inf for most draws: the
    mutation declines there instead of building an invalid constant."""
    from primitives.textform import parse_text

    program = parse_text("t1 = add(x, 0x1.fffffep+127)\nt2 = mul(t1, x)\nreturn t2")
    children = [MUTATIONS["level"](program, np.random.default_rng(seed), space_of()) for seed in range(40)]
    assert any(child is None for child in children)
    for child in children:
        if child is not None:
            check_valid(child, program, space_of())
