"""The driver of an island run: it hands batches to the islands (in this process, round-robin, or
to Ray actors), merges what they report into one front (through the select gate each island
applied, then the certifier), migrates, mines hard points, signs off, checkpoints and reports. It
runs no tournaments.

Synchronous migration (always so in one process; ``sync_migration`` on Ray): migration round r
happens once every island has made exactly r * ``migrate_every`` evaluations; the islands' best
programs then move in island order (ring: to the next island; random: to an island drawn from the
run's migration RNG), and each island takes its immigrants in at the start of its next batch.
Batches are filed in island order, so the events do not depend on timing (on Ray the driver sends
every request: the rounds run in lockstep, not pipelined). Without it (Ray), each island runs on
to its next migration count, sends its best programs as soon as it gets there, and takes in
whatever has arrived at its host when its next batch starts, which its host starts itself
(pipelined, at most ``LOOKAHEAD`` migration counts past what the driver has filed).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np

from evo.engine import Budget, Engine, FinalSet
from evo.events import Front, Harden, Migration
from evo.islands import ArchipelagoState, Batch, Request
from evo.recorder import Recorder
from evo.search import Search
from targets.dataset import with_extra_points

# migration counts an island may run past what the driver has filed (pipelined): its host then
# has its next batch to start while the driver files the last one
LOOKAHEAD = 2


@dataclass(frozen=True, slots=True)
class IslandPlan:
    """How the islands exchange programs."""

    migrate_every: int
    migrants: int
    migration: str  # ring | random
    sync: bool


class IslandEngine(Engine):
    """Runs an island segment; ``search`` is the driver's view (merged front, sign-offs), never asked."""

    def __init__(
        self, search: Search, pool, recorder: Recorder, budget: Budget, final: FinalSet, plan: IslandPlan
    ) -> None:
        super().__init__(search, pool, recorder, budget, final)
        self.pool = pool
        self.plan = plan

    @property
    def state(self) -> ArchipelagoState:
        return self.search.state

    def _remaining(self) -> float:
        max_evals = self.budget.max_evals
        return math.inf if max_evals is None else max_evals - self.state.n_evals

    def _sweep(self, function, *args):
        return self.pool.sweep(function, *args)

    def _run_steady(self) -> None:
        if self.pool.local or self.plan.sync:
            self._run_rounds()
        else:
            self._run_async()

    def _run_rounds(self) -> None:
        every = self.plan.migrate_every  # self.state each time: a sign-off makes a new driver state
        while not (self._stop or self._budget_reason()):
            mark = (self.state.migrations + 1) * every
            todo = [record for record in self.state.islands if record.n_evals < mark]
            if not todo:
                self._migrate()
                continue
            if self.pool.local:  # round-robin in this process, one island at a time
                record = todo[0]
                count = int(min(mark - record.n_evals, self._remaining(), self._to_cadence()))
                self.pool.submit(self._request(record.index, count, mark))
                self._file_batch(self.pool.next_batch())
                continue
            remaining, requests = self._remaining(), []
            for record in todo:
                count = int(min(mark - record.n_evals, remaining))
                if count <= 0:
                    break
                remaining -= count
                requests.append(self._request(record.index, count, mark))
            for request in requests:
                self.pool.submit(request)
            batches = [self.pool.next_batch() for _ in requests]
            for batch in sorted(batches, key=lambda b: b.island):
                self._file_batch(batch)

    def _run_async(self) -> None:
        """Pipelined (see ``evo.ray_islands``): the hosts start each island's next batch
        themselves; the driver grants each island evaluations up to ``LOOKAHEAD`` migration counts
        past what it has filed (within the budget), posts immigrants and hard points, and files
        the batches as they come back, each with the request its host made."""
        every, pool = self.plan.migrate_every, self.pool
        pool.begin(every, self.plan.migrants)
        granted = {record.index: record.n_evals for record in self.state.islands}
        leaving: list[int] = []  # islands whose migrants leave once their group of batches is filed
        while True:
            if not pool.collected():  # a group of batches is filed: migrate, then tell the hosts
                self._send(leaving)
                leaving = []
                state = self.state
                if not (self._stop or self._budget_reason()):
                    self._grant(granted)
                for record in state.islands:
                    pool.post(record.index, record.inbox)
                pool.post_hard(state.hard_points)
                if not pool.running():
                    return
            batch = pool.next_batch()
            self.search.state = self.state.taken(batch.island, batch.request)
            self._file_batch(batch)
            if batch.emigrants:
                leaving.append(batch.island)
            if self._stop:
                self._send(leaving)
                pool.cancel_all()
                return

    def _grant(self, granted: dict[int, int]) -> None:
        """Each island (in order) may run on to ``LOOKAHEAD`` migration counts past its filed
        count; all grants together stay within the budget."""
        every, islands = self.plan.migrate_every, self.state.islands
        left = self._remaining() - sum(granted[r.index] - r.n_evals for r in islands)
        for record in islands:
            upto = min((record.n_evals // every + LOOKAHEAD) * every, granted[record.index] + left)
            if upto > granted[record.index]:
                left -= upto - granted[record.index]
                granted[record.index] = int(upto)
                self.pool.grant(record.index, int(upto))

    def _finish(self, reason: str) -> str:
        if not self._stop:  # every island is idle and filed: the last checkpoints need no replay
            self.search.state = self.state.with_islands(self.pool.refresh(self.state.islands))
        return super()._finish(reason)

    def _to_cadence(self) -> int:
        """Evaluations to the next count at which something is due (progress, checkpoint, mining),
        so that one-process runs file at exactly those counts."""
        n = self.state.n_evals
        periods = [
            self.recorder.progress_every,
            self.recorder.checkpoint_every,
            self.search.rules.miner.every,
        ]
        return min(p - n % p for p in periods if p)

    def _request(self, index: int, count: int, mark: int) -> Request:
        every = self.pool.snapshot_every
        self.search.state, request = self.state.requested(index, count, mark, self.plan.migrants, every)
        return request

    def _file_batch(self, batch: Batch) -> None:
        self._notices()
        before = self.state.n_evals
        started = time.perf_counter()
        self.search.state, events = self.state.filed(batch, self.search.rules.objective)
        self.recorder.driver_seconds += time.perf_counter() - started
        self.recorder.evaluated_batch(batch.n_evals - batch.start, batch.cached, batch.eval_ms)
        self.recorder.write(events)
        self._mine_crossing(before)
        if any(isinstance(e, Front) for e in events):
            self._certify()
        self.recorder.after_batch(self.state, before)

    def _migrate(self) -> None:
        self.search.state, moves = self.state.migrated(self.plan.migration)
        self.recorder.write([Migration(self.state.n_evals, round=self.state.migrations, moves=moves)])

    def _send(self, islands: list[int]) -> None:
        """Asynchronous migration: the migrants of islands that reached their count leave, one
        event per migration round among them (a group of batches collected together is one event)."""
        state, moves = self.state.emigrated(islands, self.plan.migration)
        self.search.state, every = state, self.plan.migrate_every
        rounds: dict[int, list] = {}
        for move in moves:
            rounds.setdefault(state.islands[move[0]].n_evals // every, []).append(move)
        self.recorder.write([Migration(state.n_evals, round=r, moves=moves) for r, moves in rounds.items()])

    def _mine_crossing(self, before: int) -> None:
        """Hard points from the run's best program once a ``mine_every`` count is passed; every
        island takes them with its next batch."""
        state, search = self.state, self.search
        miner = search.rules.miner
        if not miner.every or state.n_evals // miner.every == before // miner.every:
            return
        if not miner.eligible(state.best, len(state.hard_points)):
            return
        data = self.final.mining_data()
        if data is None:
            return
        source = state.best.program
        fresh, worst = self._sweep(
            miner.mine, source, data, search.search_set, self.final.select, len(state.hard_points)
        )
        if not fresh:
            return
        search.search_set = with_extra_points(search.search_set, np.array(fresh))
        best = replace(state.best, score=search._score(source, search.search_set))
        search.state = state = replace(state, hard_points=(*state.hard_points, *fresh), best=best)
        self.recorder.write(
            [
                Harden(
                    state.n_evals,
                    added=len(fresh),
                    hard_points=len(state.hard_points),
                    source=source.canonical_hash(),
                    worst_err=worst,
                    search=search.search_set.label,
                    best_err=state.best.score.max_err,
                )
            ]
        )
