"""The search policies one by one: select gate, hard-point miner, restart on stagnation, certifier."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from evo.api import evolve
from evo.config import resolve
from evo.front import FrontEntry, ParetoFront
from evo.objective import Objective
from evo.policies import Certifier, HardPointMiner, SelectGate, StagnationRestart
from evo.population import Individual
from evo.problem import build_problem
from primitives.program import X, const_of, instr, make_program
from targets.dataset import build_dataset
from targets.registry import get_target
from targets.scoring import Score

SMALL = dict(
    target="exp2",
    domain="1,1.001",
    population_size=20,
    tournament_size=4,
    search_points=512,
    select_points=2048,
    signoff="none",
    data_seed=0,
)


def score(err: float, label: str = "search") -> Score:
    return Score(err, err / 2, 0.5, 512, 0, 0, 0, "ulp", label)


def ind(id: int, cost: float, err: float) -> Individual:
    program = make_program([instr("add", X, const_of(float(id + 1)))])
    return Individual(id, program, score(err), cost, None, "insert")


# ----------------------------------------------------------------------------- select gate
def test_select_gate_rescores_on_the_select_set_and_only_then_admits():
    asked = []

    def select_score(program):
        asked.append(program)
        return score(select_errors[program.canonical_hash()], "select")

    a, b, c = ind(0, 3, 10.0), ind(1, 5, 1.0), ind(2, 5, 2.0)
    select_errors = {
        a.program.canonical_hash(): 12.0,
        b.program.canonical_hash(): 50.0,
        c.program.canonical_hash(): 3.0,
    }
    gate = SelectGate(select_score)
    front, sel = gate.admit(ParetoFront(), a, {})
    assert [e.individual for e in front.entries] == [a] and sel.max_err == 12.0
    # b beats a on the search set, but its select error (50) does not beat a's (12): refused
    assert gate.admit(front, b, {}) is None
    assert len(asked) == 2
    # a child that does not beat the front on the search set is never re-scored
    assert gate.admit(front, ind(3, 9, 11.0), {}) is None and len(asked) == 2
    # a known final score is used instead of the select score for admission
    front2, _ = gate.admit(front, c, {c.program.canonical_hash(): score(5.0, "final")})
    assert [e.final.max_err if e.final else None for e in front2.entries] == [None, 5.0]
    assert gate.admit(front, c, {c.program.canonical_hash(): score(20.0, "final")}) is None


# ----------------------------------------------------------------------------- hard points
@pytest.fixture(scope="module")
def datasets():
    target = get_target("exp2", "1,1.001")
    search = build_dataset(target, "search", "float32", 0, 64)
    select = build_dataset(target, "select", "float32", 0, 256)
    return search, select


def test_miner_never_takes_search_or_select_points(datasets):
    search, select = datasets
    select_only = np.setdiff1d(select.x, search.x)
    assert select_only.size >= 7
    new = np.setdiff1d(np.linspace(1, 1.001, 50, dtype=np.float32), np.concatenate([search.x, select.x]))[:5]
    xs = np.concatenate([select_only[:7], new, search.x[:3]])
    miner = HardPointMiner(every=100, points=32, below=64.0, max_points=100)
    fresh = miner.fresh(xs, search, select, n_hard=0)
    assert fresh == [float(x) for x in new]
    assert not set(fresh) & {float(x) for x in select.x}
    # the room left caps what is taken
    assert miner.fresh(xs, search, select, n_hard=98) == [float(x) for x in new[:2]]
    assert miner.fresh(xs, search, select, n_hard=100) == []


def test_miner_cadence_and_eligibility():
    miner = HardPointMiner(every=100, points=32, below=64.0, max_points=10)
    assert miner.due(200) and not miner.due(150)
    assert not HardPointMiner(0, 32, 64.0, 10).due(100)
    assert miner.eligible(ind(0, 3, 10.0), n_hard=9)
    assert not miner.eligible(ind(0, 3, 100.0), n_hard=0)  # too far from accurate to have a useful tail
    assert not miner.eligible(ind(0, 3, 10.0), n_hard=10)
    assert not miner.eligible(None, n_hard=0)


def test_a_mined_point_is_never_a_select_point_in_a_run(tmp_path):
    # [1, 1.001] has 8390 float32 values and the select set takes 2048 of them: the worst points
    # of a program often fall on select points, which must stay unseen by the search.
    result = evolve(
        SMALL,
        seed=2,
        seed_from="identity",  # a moving best (classical seeds start near the optimum)
        max_evals=600,
        mine_every=100,
        mine_below=1e9,
        restart_after=0,
        runs_dir=str(tmp_path),
        selection="error",  # the best program keeps moving, so every mining round finds new points
    )
    checkpoint = json.loads((result.run_dir / "checkpoint.json").read_text())
    from primitives.floatbits import get_format, parse_hex

    hard = {parse_hex(t, get_format("float64")) for t in checkpoint["hard_points"]}
    assert len(hard) >= 32
    problem = build_problem(resolve({**SMALL, "max_evals": 1}))
    assert not hard & {float(x) for x in problem.select.x}
    assert not hard & {float(x) for x in problem.search.x}


# ----------------------------------------------------------------------------- restarts
def test_stagnation_restart():
    policy = StagnationRestart(after=100, objective=Objective())
    assert policy.progressed(ind(0, 3, 0.98), ind(1, 3, 1.0))
    assert not policy.progressed(ind(0, 3, 0.995), ind(1, 3, 1.0))
    assert policy.progressed(ind(0, 3, 5.0), None)
    assert policy.due(n_evals=150, epoch_mark=50, seeding=False)
    assert not policy.due(n_evals=149, epoch_mark=50, seeding=False)
    assert not policy.due(n_evals=500, epoch_mark=50, seeding=True)  # the epoch's seeds are still coming
    assert not StagnationRestart(0, Objective()).due(10**6, 0, False)


# ----------------------------------------------------------------------------- certifier
def _entry(id, cost, select_err, final=None):
    return FrontEntry(
        ind(id, cost, select_err), score(select_err, "select"), None if final is None else score(final)
    )


def test_certifier_during_search_and_at_the_end():
    certifier = Certifier(target_error=1.0, mode="front")
    assert certifier.during_search(score(0.9), cost=5, certified_cost=math.inf)
    assert not certifier.during_search(score(1.1), cost=5, certified_cost=math.inf)
    assert not certifier.during_search(score(0.9), cost=5, certified_cost=5)  # nothing cheaper gained
    assert certifier.certified(score(1.0)) and not certifier.certified(score(1.01))
    assert not Certifier(None, "front").during_search(score(0.0), 1, math.inf)
    assert not Certifier(None, "front").certified(score(0.0))
    # --signoff none turns off the sign-offs during the search too
    assert not Certifier(1.0, "none").during_search(score(0.5), 1, math.inf)
    front = ParetoFront((_entry(0, 2, 30.0), _entry(1, 4, 3.0, final=3.5), _entry(2, 6, 0.8)))
    hashes = [e.individual.program.canonical_hash() for e in front.entries]
    assert certifier.at_end(front, Objective(1.0)) == [hashes[0], hashes[2]]  # signed-off entries skipped
    assert Certifier(1.0, "best").at_end(front, Objective(1.0)) == [hashes[2]]
    assert Certifier(None, "best").at_end(front, Objective()) == [hashes[2]]
    assert Certifier(1.0, "none").at_end(front, Objective(1.0)) == []
    assert Certifier.stops(5.0) and not Certifier.stops(math.inf)
