"""Exchange refinement: final-set probes (a lower bound of the final error, exact where they read
every float), the points a round adds (never a select point), an exchange that beats the plain
lattice refinement on every float, fpminimax starts for built-ins, and the end-of-run sign-off of
the refined seeds that keeps the front at each cost the best certified program."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evo.api import evolve
from evo.assemble import (
    _anchor_fallbacks,
    _anchor_starts,
    _ByContent,
    _classical_seeding,
    _dense_fallbacks,
    ordered_reserve,
    population_seeds,
    reserve_seeds,
)
from evo.classical import classical_seeds
from evo.config import resolve
from evo.exchange import ExchangeSettings, exchange_points, exchange_refine, probe
from evo.front import FrontEntry, ParetoFront
from evo.lattice import LatticeSettings, ordinals, refine
from evo.policies import Certifier
from evo.population import Individual
from evo.problem import build_problem
from evo.seedcache import cached_seeds
from primitives.program import Instr, Program, Ref, const_of
from targets.baselines import baselines
from targets.dataset import refine_dataset
from targets.scoring import Score, score

# 2^x on [1/4, 1/2]: 8.4M floats, an exhaustive final set read whole in a fraction of a second
SMALL = dict(
    target="exp2",
    domain="0.25,0.5",
    search_points=512,
    select_points=2048,
    max_ops=5,
    seed=1,
    max_evals=40,
    population_size=20,
)
LATTICE = LatticeSettings(budget=800)
EXCHANGE = ExchangeSettings(rounds=3, points=64)


@pytest.fixture(scope="module")
def small():
    config = resolve(SMALL)
    problem = build_problem(config)
    dense = refine_dataset(problem.target, problem.search, problem.select, n=2048)
    return config, problem, dense, problem.final()


def _seed(problem, ops: int) -> Program:
    s = problem.search
    seeds = classical_seeds(s.x, s.ref_hi + s.ref_lo, s.inv_scale, ("add", "sub", "mul", "div", "fma"), ops)
    return next(x.program for x in seeds if x.program.op_count() == ops)


def test_a_probe_is_a_lower_bound_and_exact_when_it_reads_every_float(small):
    _, problem, _, final = small
    program = _seed(problem, 4)
    exact = score(program, final).max_err
    xs, errors = probe(program, final, 16, ExchangeSettings())  # reads all 8.4M floats
    assert errors[0] == pytest.approx(exact, rel=1e-12) and list(errors) == sorted(errors, reverse=True)
    assert score(program.pruned(), final).worst_x in xs
    coarse = ExchangeSettings(probe_points=1 << 12, blocks=64, dense_points=1 << 18)
    for round_ in range(3):
        _, part = probe(program, final, 16, coarse, round_)
        assert 0 < part[0] <= exact


def test_exchange_points_are_neighbours_in_the_domain_and_never_select_or_known_points(small):
    _, problem, dense, final = small
    xs = np.concatenate([dense.x[:5], problem.select.x[:5], [np.float32(0.25), np.float32(0.5)]])
    fresh = exchange_points(xs, final, dense, problem.select.x, neighbours=2)
    lo, hi = final.points.ord_lo, final.points.ord_hi
    ords = ordinals(fresh)
    assert fresh.size and np.all((ords >= lo) & (ords <= hi))
    assert not np.isin(fresh, problem.select.x).any() and not np.isin(fresh, dense.x).any()
    wanted = ordinals(xs.astype(np.float32))
    assert all(np.min(np.abs(wanted - o)) <= 2 for o in ords)
    assert exchange_points(np.empty(0), final, dense, problem.select.x, 1).size == 0


@pytest.mark.parametrize("ops", [4, 5])
def test_the_exchange_beats_the_plain_lattice_refinement_on_every_float(small, ops):
    """Measured on [1/4, 1/2]: 4 ops 0.736 against 0.772, 5 ops 0.851 against 0.924 (with the lattice's
    bound guard the plain refinement reaches the exchange's 0.715 at 5 ops: never worse, not always better)
    """
    _, problem, dense, final = small
    seed = _seed(problem, ops)
    plain = refine(seed, dense, LATTICE).program
    done = exchange_refine(seed, dense, final, problem.select.x, LATTICE, EXCHANGE)
    ours = score(done.program, final).max_err
    assert ours <= score(plain, final).max_err and ours <= score(seed.pruned(), final).max_err
    assert done.estimate == pytest.approx(ours, rel=1e-6)  # probes read every float here
    assert done.start_estimate == pytest.approx(score(seed.pruned(), final).max_err, rel=1e-6)
    assert done.data.size > dense.size and not np.isin(done.data.x, problem.select.x).any()
    again = exchange_refine(seed, dense, final, problem.select.x, LATTICE, EXCHANGE)
    assert again.program == done.program and again.estimate == done.estimate  # deterministic


def test_programs_without_constants_come_back_with_their_probe(small):
    _, problem, dense, final = small
    done = exchange_refine(Program.identity(), dense, final, problem.select.x, LATTICE, EXCHANGE)
    assert done.program == Program.identity() and done.rounds == 0
    assert done.estimate == pytest.approx(score(Program.identity(), final).max_err)


def test_fpminimax_starts_only_for_a_built_in_on_its_own_domain():
    sizes = {"search_points": 256, "select_points": 512, "max_evals": 1}
    problem = build_problem(resolve({"target": "exp2_m05_05", **sizes}))
    starts = _anchor_starts(problem.target, ("add", "sub", "mul", "div", "fma"), 7)
    known = {b.program for b in baselines("exp2_m05_05")}
    assert set(starts) == {3, 4, 5, 6, 7}
    for count, group in starts.items():
        assert 1 <= len(group) <= 2 and all(p.op_count() == count and p in known for p, _ in group)
        assert [e for _, e in group] == sorted(e for _, e in group)
    no_fma = _anchor_starts(problem.target, ("add", "sub", "mul"), 7)
    assert set(no_fma) == {6} and all("fma" not in p.op_histogram() for p, _ in no_fma[6])
    moved = build_problem(resolve({"target": "exp2_m05_05", "domain": "0,0.25", **sizes}))
    assert _anchor_starts(moved.target, ("add", "fma"), 7) == {}


def _score(error: float) -> Score:
    return Score(error, error, 0.0, 1, 0, 0, 0, "ulp", "test")


def _entry(cost: int, select: float, final: float | None) -> FrontEntry:
    ind = Individual(cost, Program.identity(), _score(select), float(cost), None, "seed")
    return FrontEntry(ind, _score(select), None if final is None else _score(final))


def test_the_next_reserve_is_the_first_unsigned_one_that_may_beat_the_front():
    x = Program.identity()
    doubled = Program((Instr("mul", (Ref(0), const_of(2.0))),), Ref(1))
    front = ParetoFront((_entry(3, 0.5, 0.9), _entry(5, 0.4, 0.8)))
    cost = {x: 3.0, doubled: 4.0}.get
    certifier = Certifier(None, "front")
    assert certifier.next_reserve(front, ((x, 0.95), (doubled, 0.85)), {}, cost) is doubled
    assert certifier.next_reserve(front, ((x, 0.85),), {}, cost) is x
    assert certifier.next_reserve(front, ((x, 0.85),), {x.canonical_hash(): _score(0.9)}, cost) is None
    assert certifier.next_reserve(front, ((x, 0.95),), {}, cost) is None
    assert Certifier(None, "best").next_reserve(front, ((x, 0.1),), {}, cost) is None
    assert certifier.next_reserve(ParetoFront(), ((x, 1e9),), {}, cost) is x


@pytest.mark.parametrize("islands", [1, 2])
def test_a_run_ends_with_a_front_no_worse_than_its_refined_seeds(tmp_path, islands):
    """Every exchange-refined seed is signed off at the end where the front costing no more is
    worse than its estimate, so the final front at each cost is at least as good as it."""
    quick = {
        **SMALL,
        "max_ops": 4,
        "seed_lattice_budget": 600,
        "max_evals": 20,
        "runs_dir": str(tmp_path),
        "islands": islands,
    }
    config = resolve(quick)
    problem = build_problem(config)
    reserve = reserve_seeds(config, problem)  # the refined seeds and the minimax fallbacks
    refined = _classical_seeding(config, problem).reserve
    assert refined and len({p.op_count() for p, _ in refined}) == len(refined)
    assert {p for p, _ in refined} <= {p for p, _ in reserve}
    seeds = population_seeds(config, problem)  # plainly refined: the exchange waits for the end
    assert {p.op_count() for p, _ in refined} <= {p.op_count() for p in seeds}
    assert population_seeds(resolve({**quick, "seed_exchange_rounds": 0}), problem) == seeds
    result = evolve(**quick)
    final = problem.final()
    entries = result.front.entries
    assert all(e.final is not None for e in entries)
    for program, _ in reserve:
        own = score(program, final).max_err
        best = min(e.final.max_err for e in entries if e.cost <= program.op_count())
        assert best <= own
    off = resolve({**quick, "seed_exchange_rounds": 0})  # only the fallbacks: off the anchors' domain,
    off_problem = build_problem(off)  # the minimax polynomials of the dense set
    assert _anchor_fallbacks(off_problem.target, off.ops, off.max_ops) == ()
    search, select = _ByContent(off_problem.search), _ByContent(off_problem.select)
    fallbacks = _dense_fallbacks(search, select, off.ops, off.max_ops)
    assert fallbacks and reserve_seeds(off, off_problem) == ordered_reserve(fallbacks)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("target", "ops"), [("exp_ln2h", 6), ("exp_ln2h", 7), ("exp2_m05_05", 6), ("exp2_m05_05", 7)]
)
def test_the_reserve_reaches_the_fpminimax_polynomial_on_every_float(target, ops):
    """Every float32 of the domain: the best refined seed of each op count is no worse than the
    best fpminimax polynomial of that op count (measured: exp 6 ops 0.710 against 0.727, 7 ops
    0.699 against 0.699; exp2 on [-1/2, 1/2] 6 ops 0.776 against 0.800, 7 ops 0.771 against 0.772)."""
    config = resolve({"target": target, "max_ops": ops, "seed": 1, "max_evals": 1})
    problem = build_problem(config)
    anchor = min(
        b.max_ulp_exhaustive
        for b in baselines(problem.target.anchor)
        if b.fused and b.program.op_count() == ops
    )
    program, estimate = next((p, e) for p, e in reserve_seeds(config, problem) if p.op_count() == ops)
    final = score(program, problem.final()).max_err
    assert estimate <= final * (1 + 1e-9) and final <= anchor


def test_the_seed_cache_returns_what_was_computed_and_survives_a_corrupt_file(tmp_path):
    doubled = Program((Instr("mul", (Ref(0), const_of(2.0))),), Ref(1))
    calls = []

    def compute():
        calls.append(1)
        return (Program.identity(), doubled), ((doubled, 0.75),), ((Program.identity(), 9.0),)

    first = cached_seeds(("a", 1), compute, tmp_path)
    assert cached_seeds(("a", 1), compute, tmp_path) == first and len(calls) == 1
    assert first == ((Program.identity(), doubled), ((doubled, 0.75),), ((Program.identity(), 9.0),))
    cached_seeds(("b", 1), compute, tmp_path)
    assert len(calls) == 2  # another key
    for path in (tmp_path / "seeds").iterdir():
        path.write_text("{not json")
    assert cached_seeds(("a", 1), compute, tmp_path) == first and len(calls) == 3
    for path in (tmp_path / "seeds").glob("*.json"):  # "a" as written before fallbacks were kept
        if path.read_text() != "{not json":
            record = json.loads(path.read_text())
            path.write_text(json.dumps({k: v for k, v in record.items() if k != "fallbacks"}))
    assert cached_seeds(("a", 1), compute, tmp_path) == (*first[:2], ()) and len(calls) == 3
