"""Fit escalation: the niche bests a job carries, the decision (a function of the job and the child
alone), the escalated fit beating the per-child fit on f10's structure, and the config key."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from evo.assemble import fit_settings
from evo.config import resolve
from evo.errors import UsageError
from evo.escalate import niche_bests, should_escalate
from evo.evaluate import Evaluator, Job
from evo.fit import FitSettings
from targets.dataset import build_dataset
from targets.registry import get_target
from tests.shared_helpers import f10_ten_percent_off


def _entry(ops: int, error: float) -> SimpleNamespace:
    program = SimpleNamespace(op_count=lambda: ops)
    return SimpleNamespace(individual=SimpleNamespace(program=program), gate_error=error)


def test_niche_bests_are_the_running_minimum_over_op_counts():
    front = SimpleNamespace(entries=(_entry(0, 0.5), _entry(2, 3e-2), _entry(5, 6e-6), _entry(3, 1e-3)))
    assert niche_bests(front) == (0.5, 0.5, 3e-2, 1e-3, 1e-3, 6e-6)
    assert niche_bests(SimpleNamespace(entries=())) == ()
    assert niche_bests(SimpleNamespace(entries=(_entry(2, 1e-2),))) == (math.inf, math.inf, 1e-2)


def test_escalation_is_within_a_factor_of_the_niche_best():
    niche = (0.5, 0.5, 3e-2, 1e-3)
    assert should_escalate(9e-3, 3, niche, 10.0)  # within 10x of its niche (1e-3)
    assert not should_escalate(2e-2, 3, niche, 10.0)
    assert should_escalate(5e-3, 9, niche, 10.0)  # beyond the front's op counts: the last niche
    assert not should_escalate(5e-3, 9, niche, 0.0)  # off
    assert not should_escalate(1e-9, 3, (), 10.0)  # no front information
    assert not should_escalate(math.inf, 3, niche, 10.0)
    assert not should_escalate(math.nan, 3, niche, 10.0)
    assert should_escalate(0.9, 1, (math.inf, math.inf), 10.0)  # an empty niche: it would enter the front


@pytest.fixture(scope="module")
def search_set():
    return build_dataset(get_target("exp2"), "search", "float64")


def test_an_escalated_f10_child_beats_its_plain_fit_and_replays(search_set):
    child = f10_ten_percent_off()
    settings = FitSettings(explore_starts=0, escalate=10.0)
    promising = (math.inf,) * 10 + (1e-11,)  # the 10-op niche: within 10x of 1e-11 escalates
    plain = Evaluator(search_set, settings).run(Job(1, child, False))
    assert plain.escalate_ms == 0.0
    assert 1e-11 < plain.score.max_err < 1e-10  # a child within 10x of the niche best escalates
    evaluator = Evaluator(search_set, settings, cache_size=10)
    escalated = evaluator.run(Job(1, child, False, promising))
    assert escalated.escalate_ms > 0 and evaluator.escalations == 1
    assert escalated.score.max_err < plain.score.max_err / 5
    assert escalated.program.op_count() == child.op_count()
    again = Evaluator(search_set, settings).run(Job(1, child, False, promising))
    assert again.program == escalated.program and again.score == escalated.score  # deterministic
    cached = evaluator.run(Job(2, child, False, promising))
    assert cached.cached and cached.program == escalated.program and evaluator.escalations == 1


def test_a_child_far_from_its_niche_best_is_not_escalated(search_set):
    child = f10_ten_percent_off()
    evaluator = Evaluator(search_set, FitSettings(explore_starts=0, escalate=10.0))
    far = evaluator.run(Job(1, child, False, (math.inf,) * 10 + (1e-14,)))
    off = Evaluator(search_set, FitSettings(explore_starts=0)).run(Job(1, child, False, (1e-11,)))
    plain = Evaluator(search_set, FitSettings(explore_starts=0)).run(Job(1, child, False))
    assert far.escalate_ms == 0 and off.escalate_ms == 0 and evaluator.escalations == 0
    assert far.program == off.program == plain.program


def test_escalate_fit_defaults_on_in_real_mode_and_off_in_float32():
    assert fit_settings(resolve({"mode": "real"})).escalate == 10.0
    assert fit_settings(resolve({})).escalate == 0.0
    assert fit_settings(resolve({"mode": "real", "escalate_fit": 0})).escalate == 0.0
    assert fit_settings(resolve({"escalate_fit": 3})).escalate == 3.0
    with pytest.raises(UsageError, match="escalate_fit"):
        resolve({"escalate_fit": -1})
