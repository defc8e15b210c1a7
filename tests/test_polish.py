"""The end-of-run polish: a perturbed f10 gets below a bound its own fit misses, a polish never
makes the front worse, it is deterministic, off in float32 mode, and its budget share is taken
from the search's time."""

from __future__ import annotations

from dataclasses import replace

import pytest

from evo import polish as polish_module
from evo.api import evolve
from evo.assemble import _Scorer, search_rules
from evo.config import resolve
from evo.errors import UsageError
from evo.evaluate import Evaluator, Job
from evo.events import strip_nondeterministic
from evo.fit import FitSettings
from evo.front import ParetoFront
from evo.polish import PolishPlan, candidates, plan_for, polish_one, search_seconds, structure_key
from evo.population import Individual, Population
from evo.problem import build_problem
from evo.report import run_summary, summary_text
from evo.runlog import RunReader
from evo.search import Search
from evo.state import SearchState, driver_rng
from primitives.floatbits import FLOAT64, bits_to_float, float_to_bits
from primitives.program import Program
from primitives.textform import parse_text
from targets.scoring import Score
from tests.shared_helpers import f10_ten_percent_off

REAL = dict(
    target="exp2",
    mode="real",
    ops=["add", "sub", "mul", "div"],
    max_ops=10,
    search_points=512,
    select_points=4096,
    data_seed=0,
    signoff="none",
)
F64 = "# evo program (float64)\n"
QUICK = PolishPlan(share=0.1, programs=1, counts=1, restarts=2, use_cma=False)


@pytest.fixture(scope="module")
def setup():
    config = resolve(REAL)
    problem = build_problem(config)
    return config, problem, search_rules(config, problem)


def _search_with(setup, programs: list[Program]) -> Search:
    """A search whose front holds ``programs`` (fitted as the search fits a child)."""
    config, problem, rules = setup
    evaluator = Evaluator(problem.search, FitSettings(explore_starts=0))
    front, population = ParetoFront(), Population(20)
    for i, program in enumerate(programs):
        result = evaluator.run(Job(i, program, False))
        ind = Individual(i, result.program, result.score, rules.cost_model.cost(result.program), None, "seed")
        front, _ = front.updated(ind, rules.gate.select_score(ind.program))
        population = population.add(ind)
    state = SearchState(population, front, driver_rng(0), next_id=len(programs), n_evals=len(programs))
    return Search(rules, state, problem.search, _Scorer(config))


def test_a_perturbed_f10_is_polished_below_what_its_fit_reaches(setup):
    search = _search_with(setup, [f10_ten_percent_off()])
    (entry,) = search.state.front.entries
    assert entry.select.max_err > 1e-12  # the search's own fit stops short
    events = polish_one(search, entry.individual, QUICK)
    event = events[0]
    assert event.kind == "polish" and event.admitted and event.ops == 10
    assert event.select_before == entry.select.max_err
    assert event.select_after < 1e-13 < event.select_before
    (polished,) = search.state.front.entries  # the entry was replaced, its structure kept
    assert polished.individual.mutation == "polish" and polished.individual.parent == entry.individual.id
    assert polished.select.max_err == event.select_after
    assert structure_key(polished.individual.program) == structure_key(entry.individual.program)
    assert {e.kind for e in events} == {"polish", "front", "improve"}
    assert search.state.best.program == polished.individual.program


def test_a_polish_that_is_worse_on_the_select_set_changes_nothing(setup, monkeypatch):
    search = _search_with(setup, [f10_ten_percent_off()])
    before = search.state
    (entry,) = before.front.entries

    def worse(program, data, restarts, use_cma, seed):  # a "refit" that lands somewhere worse
        bits = program.constants()
        return program.with_constants(
            [float_to_bits(bits_to_float(bits[0], FLOAT64) * 1.001, FLOAT64), *bits[1:]]
        )

    monkeypatch.setattr(polish_module, "refit", worse)
    (event,) = polish_one(search, entry.individual, QUICK)
    assert not event.admitted and event.select_after > event.select_before
    assert search.state is before  # front, best and ids untouched


def _run(tmp_path, **changes):
    settings = dict(
        REAL,
        population_size=12,
        tournament_size=3,
        search_points=256,
        select_points=2048,
        max_evals=60,
        seed=4,
        runs_dir=str(tmp_path),
        end_polish_counts=2,
        end_polish_programs=2,
    )
    settings.update(changes)
    result = evolve(**settings)
    return result, list(RunReader(result.run_dir).events())


def _best_within(front: list, cost: float) -> float:
    return min((error for c, error, *_ in front if c <= cost), default=float("inf"))


def test_a_run_polishes_its_front_never_worse_and_deterministically(tmp_path):
    result, events = _run(tmp_path / "a")
    polished = [e for e in events if e["kind"] == "polish"]
    assert polished and all(e["n_evals"] == 60 for e in polished)
    first = events.index(polished[0])
    before = next(e["front"] for e in reversed(events[:first]) if e["kind"] == "front")
    after = next(e for e in events if e["kind"] == "end")["front"]
    for cost, *_ in before:  # at every cost, the best error within it is no worse than before
        assert _best_within(after, cost) <= _best_within(before, cost)
    for e in polished:
        assert e["admitted"] == (e["select_after"] < e["select_before"])
    assert len({e["ops"] for e in polished}) <= 2  # end_polish_counts
    shown = run_summary(result.run_dir)  # what evo inspect shows
    assert len(shown["polish"]) == len(polished) and "end-of-run polish" in summary_text(shown)
    _, again = _run(tmp_path / "b")
    assert [strip_nondeterministic(e) for e in again] == [strip_nondeterministic(e) for e in events]


def test_float32_runs_do_not_polish_and_the_share_comes_out_of_the_search_time(tmp_path):
    assert not plan_for(resolve({})).enabled
    real = plan_for(resolve({**REAL, "max_seconds": 600, "seed": 3}))
    assert real.enabled and real.share == 0.1 and real.deadline == 600 and real.seed == 3
    assert search_seconds(600, real) == pytest.approx(540)
    assert search_seconds(None, real) is None
    off = plan_for(resolve({**REAL, "end_polish_share": 0}))
    assert not off.enabled and search_seconds(600, off) == 600
    for bad in (-0.1, 1.0, "x"):
        with pytest.raises(UsageError, match="end_polish_share"):
            resolve({"end_polish_share": bad})
    _, events = _run(tmp_path, mode="float32", ops=["add", "sub", "mul", "fma"], max_ops=4, max_evals=30)
    assert not any(e["kind"] == "polish" for e in events)


def _score(error: float) -> Score:
    return Score(error, error / 2, 0.5, 8, 0, 0, 0, "rel", "fake")


def _ind(i: int, program: Program, error: float) -> Individual:
    return Individual(i, program, _score(error), program.op_count(), None, "seed")


def test_candidates_go_one_per_op_count_at_a_time_from_the_top_with_distinct_structures():
    one = parse_text(F64 + "t1 = mul(x, 0x1p+0)\nreturn t1\n")
    two = parse_text(F64 + "t1 = mul(x, 0x1p+0)\nt2 = add(t1, 0x1p+0)\nreturn t2\n")
    two_b = parse_text(F64 + "t1 = div(x, 0x1p+0)\nt2 = add(t1, 0x1p+0)\nreturn t2\n")
    three = parse_text(F64 + "t1 = mul(x, 0x1p+0)\nt2 = add(t1, 0x1p+0)\nt3 = mul(t2, t2)\nreturn t3\n")
    front, _ = ParetoFront().updated(_ind(0, one, 0.3), _score(0.3))
    front, _ = front.updated(_ind(1, two, 0.1), _score(0.1))
    front, _ = front.updated(_ind(2, three, 0.01), _score(0.01))
    same_structure = two.with_constants([float_to_bits(2.0, FLOAT64)] * 2)
    members = [_ind(5, same_structure, 0.05), _ind(6, two_b, 0.2), _ind(7, three, 0.02)]
    plan = PolishPlan(share=0.1, programs=2, counts=2)
    chosen = candidates(front, members, plan)
    assert [c.id for c in chosen] == [2, 1, 6]  # 3 ops, 2 ops, then the runner-up of 2 ops
    assert [c.id for c in candidates(front, members, replace(plan, counts=3, programs=1))] == [2, 1, 0]
