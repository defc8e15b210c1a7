"""Pipelined island hosts (no Ray needed: the host body runs in this process): a host starts each
island's next batch itself, to the next migration count and within its grant, with the immigrants
and hard points posted to it, and a snapshot every ``snapshot_every`` batches."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

from evo.islands import Batch, Request
from evo.ray_islands import News, Pipeline, _IslandHost
from evo.runlog import RunReader
from tests.shared_helpers import kill_host_once

PLAN = Pipeline(migrate_every=10, migrants=2, snapshot_every=3)


@dataclass
class _State:
    n_evals: int = 0
    hard_points: tuple = ()


class _CountingIsland:
    """Runs a request by counting its evaluations (and taking its hard points)."""

    def __init__(self, index: int) -> None:
        self.index, self.state = index, _State()

    def run(self, request: Request) -> Batch:
        start = self.state.n_evals
        self.state.n_evals += request.count
        if len(request.hard_points) > len(self.state.hard_points):
            self.state.hard_points = request.hard_points
        return Batch(request.island, start, self.state.n_evals, (), (), np.zeros(0), None, 0.0, 0)


def _host(islands: int, threads: int = 1) -> _IslandHost:
    host = _IslandHost(None, threads=threads)
    for index in range(islands):
        host.islands[index] = _CountingIsland(index)
        host._allowed[index], host._behind[index] = 0, 0
    return host


def _drain(host: _IslandHost, news: News) -> list[Batch]:
    """Poll until no island runs; every batch done, in the order they came back."""
    done, batches = host.poll(PLAN, news), []
    while done:
        batches += done
        done = host.poll(PLAN, News())
    return batches


def test_a_host_runs_each_island_on_by_itself_to_its_grant_in_batches_ending_at_migration_counts():
    host = _host(2)
    batches = _drain(host, News(grants={0: 25, 1: 10}, mail={0: ["a", "b"]}, hard_points=(0.5,)))
    mine = [b.request for b in batches if b.island == 0]
    assert [(r.count, r.emigrate_at, r.migrants) for r in mine] == [(10, 10, 2), (10, 20, 2), (5, 30, 2)]
    assert [r.immigrants for r in mine] == [("a", "b"), (), ()]  # taken in once, by the next batch
    assert [r.hard_points for r in mine] == [(0.5,), (), ()]  # only news travels
    assert [r.snapshot for r in mine] == [False, False, True]  # the third batch since the last snapshot
    assert [b.request.count for b in batches if b.island == 1] == [10]
    assert host.islands[0].state.n_evals == 25 and host.islands[1].state.n_evals == 10  # never past the grant
    assert all(b.n_evals - b.start == b.request.count for b in batches)


def test_a_host_with_nothing_granted_returns_at_once_and_takes_mail_with_its_next_batch():
    host = _host(1)
    assert host.poll(PLAN, News(mail={0: ["late"]})) == []  # nothing granted: no batch, no wait
    batches = _drain(host, News(grants={0: 4}))
    assert [(b.request.count, b.request.immigrants) for b in batches] == [(4, ("late",))]
    batches = _drain(host, News(grants={0: 12}))  # the rest of the period, then the next one
    assert [(b.request.count, b.request.emigrate_at) for b in batches] == [(6, 10), (2, 20)]


def test_a_halted_host_starts_no_more_batches():
    host = _host(1)
    host.halt()
    assert host.poll(PLAN, News()) == [] and host.islands[0].state.n_evals == 0
    host._allowed[0] = 0
    host.halt()
    assert _drain(host, News(grants={0: 10})) and host.islands[0].state.n_evals == 10  # a new grant runs
    host.halt()
    assert host.poll(PLAN, News()) == [] and host.islands[0].state.n_evals == 10


@pytest.mark.ray
def test_a_killed_host_of_pipelined_islands_is_replaced_and_the_run_files_every_granted_evaluation(tmp_path):
    """Asynchronous (pipelined) islands: killing a host mid-run gives one island_restored event per
    island it ran, and the run still ends at its budget with every island's count filed."""
    from test_islands import RAY

    from evo.api import evolve
    from evo.assemble import make_executor
    from evo.config import resolve
    from evo.problem import build_problem

    base = dict(RAY, sync_migration=False, signoff="none", mine_every=0, max_evals=1200)
    base.update(runs_dir=str(tmp_path), backend="ray", workers=2)
    config = resolve(base)
    executor = make_executor(config, build_problem(config))
    killed: list[int] = []
    try:
        result = evolve(config, executor=executor, on_progress=kill_host_once(executor, 400, killed))
    finally:
        executor.close()
    assert killed and result.reason == "max_evals" and result.n_evals == 1200
    kinds = [e["kind"] for e in RunReader(result.run_dir).events()]
    assert kinds.count("island_restored") == 1 and "migration" in kinds  # host 1 ran island 1 alone
    state = json.loads((result.run_dir / "checkpoint.json").read_text())
    assert sum(r["state"]["n_evals"] for r in state["islands"]) == 1200 and result.front.entries
