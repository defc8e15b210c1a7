"""The search core without a run directory: the pure Search (ask/tell) and the Engine loop driven
by a fake executor (scores are a function of the child id) and an in-memory writer."""

from __future__ import annotations

import json
import math
from collections import deque
from types import SimpleNamespace

import pytest

from evo.engine import Budget, Engine, FinalSet
from evo.evaluate import EvalResult
from evo.events import KINDS, NONDETERMINISTIC_FIELDS
from evo.front import ParetoFront
from evo.objective import Objective
from evo.policies import Certifier, HardPointMiner, SearchRules, SelectGate, StagnationRestart
from evo.population import Population
from evo.recorder import Recorder
from evo.runlog import dumps
from evo.search import Search
from evo.setting import FLOAT32
from evo.state import SearchState, driver_rng
from primitives.cycles import CostModel
from primitives.program import Program, Ref, X, const_of, instr, make_program
from targets.dataset import build_dataset
from targets.registry import get_target
from targets.scoring import Score
from targets.target import TargetError

SEARCH_SET = SimpleNamespace(digest="search-0", label="search (fake)")
POPULATION = 8


def fake_score(err: float, label: str = "search (fake)") -> Score:
    return Score(err, err / 2, 1.0, 64, 0, 0, 0, "ulp", label)


def child_of(child_id: int, parent: Program) -> tuple[Program, float]:
    """A child whose size and error depend only on its id (and its parent's size)."""
    n = 1 + (child_id + len(parent.body)) % 4
    body = []
    ref = X
    for k in range(n):
        body.append(instr("add", ref, const_of(1.0 + (child_id % 97) * 2.0**-10 + k)))
        ref = Ref(len(body))
    err = 1000.0 / (1 + (child_id * 7919) % 61) / n
    return make_program(body), err


class FakeExecutor:
    def __init__(self, capacity: int = 1, on_result=None) -> None:
        self.capacity = capacity
        self._queue: deque = deque()
        self.on_result = on_result
        self.digest = SEARCH_SET.digest

    def submit(self, job) -> None:
        self._queue.append(job)

    def next_result(self) -> EvalResult:
        job = self._queue.popleft()
        if self.on_result is not None:
            self.on_result(job.child_id)
        if not job.mutate:
            return EvalResult(job.child_id, job.program, "seed", fake_score(1e6), self.digest, 1, 0.1)
        program, err = child_of(job.child_id, job.program)
        return EvalResult(job.child_id, program, "perturb_const", fake_score(err), self.digest, 3, 0.1)

    def update_search(self, search) -> None:
        self.digest = search.digest

    def cancel_all(self) -> None:
        self._queue.clear()

    def take_notices(self) -> list:
        return []

    def describe(self) -> dict:
        return {"backend": "fake", "workers": 1}

    def close(self) -> None:
        pass


class MemoryWriter:
    """What the recorder writes, kept in lists (the clock advances 1 ms per event)."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.checkpoints: list[dict] = []
        self.fronts: list[list] = []
        self.lines: list[str] = []
        self._t = 0.0

    @property
    def elapsed(self) -> float:
        return self._t

    def event(self, kind: str, **fields) -> dict:
        self._t += 1e-3
        record = json.loads(dumps({"kind": kind, "t": self._t, **fields}))
        self.events.append(record)
        return record

    def log(self, line: str) -> None:
        self.lines.append(line)

    def checkpoint(self, state: dict, announce: bool = False) -> None:
        self.checkpoints.append(json.loads(dumps({**state, "events": len(self.events) + announce})))
        if announce:
            self.event("checkpoint", n_evals=state["n_evals"])

    def write_front(self, front: list) -> None:
        self.fronts.append(front)

    def close(self) -> None:
        pass


def rules(target=None, signoff="none", restart_after=0, eval_every=0) -> SearchRules:
    objective = Objective(target)
    return SearchRules(
        tournament_size=3,
        cost_model=CostModel("ops", (("add", 1.0),)),
        objective=objective,
        gate=SelectGate(lambda p: fake_score(_err_of(p) * 1.1, "select (fake)")),
        miner=HardPointMiner(0, 32, 64.0, 0),
        restart=StagnationRestart(restart_after, objective),
        certifier=Certifier(target, signoff),
        restart_seeds=(Program.identity(),) * POPULATION,
        eval_every=eval_every,
    )


def _err_of(program: Program) -> float:
    return 1000.0 / (1 + program.body[0].args[1].bits % 61) if program.body else 1e6


def fresh_state(seed: int = 1) -> SearchState:
    return SearchState(
        Population(POPULATION),
        ParetoFront(),
        driver_rng(seed),
        pending_seeds=[Program.identity()] * POPULATION,
    )


def new_search(state: SearchState, **kw) -> Search:
    return Search(
        rules(**kw), state, SEARCH_SET, score=lambda program, data: pytest.fail("no re-scoring expected")
    )


@pytest.fixture(scope="module")
def final_data():
    return build_dataset(get_target("exp2", "1,1.001"), "search", "float32", 0, 64)


def engine_for(
    search, writer, final, max_evals=300, executor=None, safety_seconds=1e9, sync_batch=0
) -> Engine:
    recorder = Recorder(
        writer,
        FLOAT32,
        checkpoint_every=100,
        progress_every=50,
        budget=(max_evals, None),
        safety_seconds=safety_seconds,
    )
    final_set = final if isinstance(final, FinalSet) else FinalSet(lambda: final, FLOAT32, False, None)
    return Engine(search, executor or FakeExecutor(), recorder, Budget(max_evals), final_set, sync_batch)


def stripped(events: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k not in NONDETERMINISTIC_FIELDS} for e in events]


# ----------------------------------------------------------------------------- the pure search
def test_search_asks_seeds_then_tournaments_and_tells_events():
    search = new_search(fresh_state(), eval_every=1)
    jobs = [search.ask() for _ in range(POPULATION)]
    assert [j.child_id for j in jobs] == list(range(POPULATION)) and not any(j.mutate for j in jobs)
    assert not search.can_ask()  # every seed is in flight: nothing to run a tournament on yet
    executor = FakeExecutor()
    kinds = []
    for job in jobs:
        executor.submit(job)
        kinds.append([e.kind for e in search.tell(executor.next_result())])
    assert kinds[0] == ["eval", "improve", "front"] and all(k == ["eval"] for k in kinds[1:])
    job = search.ask()
    assert job.mutate and job.child_id == POPULATION and search.in_flight == 1
    assert search.state.n_evals == POPULATION and len(search.state.population) == POPULATION


def test_search_state_is_one_json_value_and_a_restored_search_continues_identically():
    def drive(search, n):
        executor, out = FakeExecutor(), []
        for _ in range(n):
            executor.submit(search.ask())
            out.extend(e.record() for e in search.tell(executor.next_result()))
        return out

    a = new_search(fresh_state(), restart_after=40)
    drive(a, 150)
    value = json.loads(dumps(a.state.to_dict()))  # standard JSON: no pickles, no NaN
    b = new_search(SearchState.from_dict(value, POPULATION), restart_after=40)
    assert b.state.to_dict() == a.state.to_dict()
    assert drive(a, 200) == drive(b, 200)
    assert any(e.get("epoch") for e in drive(a, 300))  # the restart policy is exercised


def test_record_final_certifies_and_due_signoffs_are_derived_from_the_state():
    search = new_search(fresh_state(), target=1e9, signoff="front")
    executor = FakeExecutor()
    executor.submit(search.ask())
    events = search.tell(executor.next_result())
    assert [e.kind for e in events] == ["improve", "front"]
    due = search.due_signoffs()
    assert len(due) == 1  # within the (huge) target on the select set, nothing certified yet
    signoff = search.record_final(due[0], fake_score(5.0, "final"), during_search=True)
    assert signoff[0].certified and search.state.certified_cost == 0.0
    assert search.due_signoffs() == []
    assert search.state.finals[due[0]].max_err == 5.0


# ----------------------------------------------------------------------------- the engine loop
def test_engine_runs_to_its_budget_without_a_run_directory(final_data):
    runs = []
    for _ in range(2):
        writer = MemoryWriter()
        reason = engine_for(new_search(fresh_state(), eval_every=25), writer, final_data).run()
        runs.append(writer)
    writer = runs[0]
    assert reason == "max_evals"
    kinds = [e["kind"] for e in writer.events]
    assert set(kinds) <= set(KINDS)
    assert [e["n_evals"] for e in writer.events if e["kind"] == "checkpoint"] == [100, 200, 300]
    assert [e["n_evals"] for e in writer.events if e["kind"] == "progress"] == [50, 100, 150, 200, 250, 300]
    assert [e["n_evals"] for e in writer.events if e["kind"] == "eval"] == list(range(25, 301, 25))
    assert kinds[-1] == "end" and writer.events[-1]["reason"] == "max_evals"
    # the last checkpoint comes after the end event and holds the whole state
    assert writer.checkpoints[-1]["events"] == len(writer.events) and writer.checkpoints[-1]["n_evals"] == 300
    assert stripped(runs[0].events) == stripped(runs[1].events)
    assert runs[0].checkpoints[-1]["population"] == runs[1].checkpoints[-1]["population"]


def test_a_stop_request_ends_the_segment_without_a_signoff(final_data):
    writer = MemoryWriter()
    holder = {}
    executor = FakeExecutor(on_result=lambda cid: cid == 120 and holder["engine"].request_stop())
    engine = engine_for(new_search(fresh_state(), signoff="front"), writer, final_data, executor=executor)
    holder["engine"] = engine
    assert engine.run() == "interrupted"
    assert writer.events[-1]["kind"] == "end" and writer.events[-1]["n_evals"] == 121
    assert not [e for e in writer.events if e["kind"] == "signoff"]  # left for the resume


class InterruptingFinalSet(FinalSet):
    """The final set, with Ctrl-C arriving during the ``at``-th sweep."""

    def __init__(self, data, at: int) -> None:
        super().__init__(lambda: data, FLOAT32, False, None)
        self.calls, self.at = 0, at

    def data(self):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return super().data()


@pytest.mark.parametrize("at", [1, 2])
def test_an_interrupted_signoff_resumes_to_the_uninterrupted_front(final_data, at):
    whole = MemoryWriter()
    engine_for(new_search(fresh_state(), signoff="front"), whole, final_data).run()
    signoffs = [e for e in whole.events if e["kind"] == "signoff"]
    assert len(signoffs) >= 2

    part = MemoryWriter()
    engine = engine_for(
        new_search(fresh_state(), signoff="front"), part, InterruptingFinalSet(final_data, at)
    )
    assert engine.run() == "interrupted"
    assert part.events[-1]["kind"] == "end" and part.events[-1]["reason"] == "interrupted"
    assert len([e for e in part.events if e["kind"] == "signoff"]) == at - 1
    # a checkpoint was written before the sign-off, and the last one (after the end) holds what was done
    assert any(c["n_evals"] == 300 and c["events"] < len(part.events) for c in part.checkpoints)
    state = SearchState.from_dict(part.checkpoints[-1], POPULATION)
    resumed = MemoryWriter()
    assert engine_for(new_search(state, signoff="front"), resumed, final_data).run() == "max_evals"
    assert len([e for e in resumed.events if e["kind"] == "signoff"]) == len(signoffs) - (at - 1)
    assert resumed.fronts[-1] == whole.fronts[-1]
    assert resumed.events[-1]["front"] == whole.events[-1]["front"]


def test_a_bad_reference_at_signoff_ends_the_run_with_a_message(final_data):
    def broken():
        raise TargetError("1/(x - 1.00048828125) has a pole at x = 0x1.002p+0")

    writer = MemoryWriter()
    engine = engine_for(
        new_search(fresh_state(), signoff="front"), writer, FinalSet(broken, FLOAT32, False, None)
    )
    with pytest.raises(TargetError, match="pole"):
        engine.run()
    end = writer.events[-1]
    assert end["kind"] == "end" and end["reason"] == "error" and "pole" in end["message"]
    assert writer.checkpoints[-1]["events"] == len(writer.events)


def test_time_checkpoints_protect_slow_runs_without_changing_the_events(final_data):
    default, safe = MemoryWriter(), MemoryWriter()
    engine_for(new_search(fresh_state()), default, final_data).run()
    engine_for(new_search(fresh_state()), safe, final_data, safety_seconds=0.0).run()
    assert len(safe.checkpoints) > 300 > len(default.checkpoints)
    assert stripped(safe.events) == stripped(default.events)


def test_sync_batches_equal_whatever_the_capacity(final_data):
    a, b = MemoryWriter(), MemoryWriter()
    engine_for(new_search(fresh_state()), a, final_data, sync_batch=4).run()
    engine_for(
        new_search(fresh_state()), b, final_data, sync_batch=4, executor=FakeExecutor(capacity=8)
    ).run()
    assert stripped(a.events) == stripped(b.events)
    assert a.events[-1]["n_evals"] == 300 and not math.isnan(a.events[-1]["best"]["max_err"])
