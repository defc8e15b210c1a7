"""The loop around a ``Search``: keeps an executor busy, runs the final-set sweeps (sign-offs and
hard-point mining) the search asks for, stops on a budget or a signal, and signs off at the end.

Everything it files goes through a ``Recorder``. The end is resumable: the state is checkpointed
before the sign-off and after each sweep, and Ctrl-C (or SIGTERM) at any moment ends the segment
with an ``end`` event (reason ``interrupted``) and a checkpoint, from which ``evo resume``
continues, sign-off included.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from evo.evaluate import EvalResult, Lost
from evo.events import End, Front, Harden, summary_of
from evo.executors import Executor
from evo.polish import PolishPlan, candidates, members_of, polish_one
from evo.recorder import Recorder
from evo.reserve import next_reserve, record_reserve
from evo.search import Search
from evo.setting import Setting
from targets.dataset import Dataset, Sweep, with_extra_points
from targets.scoring import score
from targets.target import TargetError


@dataclass(frozen=True, slots=True)
class Budget:
    """When a search stops by itself."""

    max_evals: int | None = None
    max_seconds: float | None = None
    stop_when_certified: bool = False

    def reason(self, n_evals: int, elapsed: float, certified_cost: float) -> str | None:
        if self.max_evals is not None and n_evals >= self.max_evals:
            return "max_evals"
        if self.max_seconds is not None and elapsed >= self.max_seconds:
            return "max_seconds"
        if self.stop_when_certified and certified_cost < math.inf:
            return "certified"
        return None


class FinalSet:
    """The final set (built on first use: it can be large) and where hard points are mined."""

    def __init__(
        self,
        build: Callable[[], Dataset | Sweep],
        setting: Setting,
        has_fast_reference: bool,
        select: Dataset,
    ) -> None:
        self._build = build
        self._data: Dataset | Sweep | None = None
        self.setting = setting
        self.has_fast_reference = has_fast_reference
        self.select = select

    def data(self) -> Dataset | Sweep:
        if self._data is None:
            self._data = self._build()
        return self._data

    def mining_data(self) -> Sweep | None:
        """The exhaustive sweep, scanned with its fast reference; without one there is no mining
        (a large mpmath sample would cost more than it saves)."""
        if not self.setting.exhaustive_mining or not self.has_fast_reference:
            return None
        data = self.data()
        return data if isinstance(data, Sweep) else None


class Engine:
    """Runs one search segment until a budget is spent or a stop is requested."""

    def __init__(
        self,
        search: Search,
        executor: Executor,
        recorder: Recorder,
        budget: Budget,
        final: FinalSet,
        sync_batch: int = 0,
    ) -> None:
        self.search = search
        self.executor = executor
        self.recorder = recorder
        self.budget = budget
        self.final = final
        self.sync_batch = sync_batch
        self._stop: str | None = None
        self._sweeping = False  # a sign-off sweep is running: an interrupt may cut it short
        self.polish = PolishPlan()  # the end-of-run polish (off unless the run's config asks for it)

    @property
    def state(self):
        return self.search.state

    def request_stop(self, reason: str = "interrupted") -> None:
        self._stop = self._stop or reason

    def _budget_reason(self) -> str | None:
        return self.budget.reason(self.state.n_evals, self.recorder.elapsed, self.state.certified_cost)

    # ------------------------------------------------------------------ the segment
    def run(self) -> str:
        """Search, then sign off; returns the end reason (the end event is written)."""
        self.recorder.begin(self.state.n_evals)
        with _StopOnSignal(self):
            try:
                try:
                    self._certify()  # a resumed run redoes a sign-off an interrupt cut short
                    if self.sync_batch:
                        self._run_batches()
                    else:
                        self._run_steady()
                except KeyboardInterrupt:
                    self.request_stop("interrupted")
                return self._finish(self._stop or self._budget_reason() or "max_evals")
            except TargetError as exc:
                self._end("error", message=str(exc))
                raise

    def _can_submit(self) -> bool:
        search, max_evals = self.search, self.budget.max_evals
        if self._stop or self._budget_reason() or not search.can_ask():
            return False
        if max_evals is not None and self.state.n_evals + search.in_flight >= max_evals:
            return False
        return search.in_flight < self.executor.capacity

    def _ask(self) -> None:
        started = time.perf_counter()
        job = self.search.ask()
        self.recorder.driver_seconds += time.perf_counter() - started
        self.executor.submit(job)

    def _run_steady(self) -> None:
        """Steady state: keep the executor full, file results in the order they finish."""
        while True:
            while self._can_submit():
                self._ask()
            if not self.search.in_flight:
                return
            self._file(self.executor.next_result())
            if self._stop and self.search.in_flight:
                self.executor.cancel_all()  # an interrupted async run drops what is in flight
                self.search.forget_all()
                return

    def _run_batches(self) -> None:
        """Synchronous batches: ask ``sync_batch`` children from one population snapshot, wait for
        all, file them in child-id order. Deterministic whatever the number of workers or arrival order."""
        while not (self._stop or self._budget_reason()):
            pending = self.state.pending_seeds
            count = min(self.sync_batch, len(pending)) if pending else self.sync_batch
            if self.budget.max_evals is not None:
                count = min(count, self.budget.max_evals - self.state.n_evals)
            for _ in range(count):
                self._ask()
            results = [self.executor.next_result() for _ in range(count)]
            for result in sorted(results, key=lambda r: r.child_id):
                self._file(result)

    def _file(self, result: EvalResult | Lost) -> None:
        """One result and everything it causes: events, mining, sign-offs, cadences."""
        self._notices()
        if isinstance(result, Lost):
            self.search.forget(result.child_id)
            return
        started = time.perf_counter()
        events = self.search.tell(result)
        self.recorder.driver_seconds += time.perf_counter() - started
        self.recorder.evaluated(result.cached, result.eval_ms)
        self.recorder.write(events)
        self._mine()
        if any(isinstance(e, Front) for e in events):
            self._certify()
        self.recorder.after_tell(self.state)

    def _notices(self) -> None:
        self.recorder.write(
            [kind(self.state.n_evals, **fields) for kind, fields in self.executor.take_notices()]
        )

    # ------------------------------------------------------------------ sweeps
    def _mine(self) -> None:
        """Add the best program's worst points to the search set (see ``HardPointMiner``)."""
        search, state = self.search, self.state
        miner = search.rules.miner
        if not miner.due(state.n_evals) or not miner.eligible(state.best, len(state.hard_points)):
            return
        data = self.final.mining_data()
        if data is None:
            return
        source = state.best.program
        fresh, worst = miner.mine(source, data, search.search_set, self.final.select, len(state.hard_points))
        if not fresh:
            return
        grown = with_extra_points(search.search_set, np.array(fresh))
        search.use_search(grown, fresh)
        state = self.state  # the grown search's new state
        self.executor.update_search(grown)
        self.recorder.write(
            [
                Harden(
                    state.n_evals,
                    added=len(fresh),
                    hard_points=len(state.hard_points),
                    source=source.canonical_hash(),
                    worst_err=worst,
                    search=grown.label,
                    best_err=None if state.best is None else state.best.score.max_err,
                )
            ]
        )

    def _certify(self) -> None:
        for program_hash in self.search.due_signoffs():
            self._sign_off(program_hash, during_search=True)

    def _sign_off(self, program_hash: str, during_search: bool = False) -> None:
        entry = self.search.entry(program_hash)
        if entry is None or entry.final is not None:
            return
        started = time.monotonic()
        with self._interruptible():
            data = self.final.data()
            final = self._sweep(score, entry.individual.program, data)
        deviation = data.reference_deviation if isinstance(data, Sweep) else None
        seconds = round(time.monotonic() - started, 3)
        self.recorder.write(self.search.record_final(program_hash, final, during_search, deviation, seconds))
        self.recorder.flush_front(self.state)

    def _sweep(self, function, *args):
        """Run one final-set sweep (here; an island driver hands it to a worker)."""
        return function(*args)

    @contextmanager
    def _interruptible(self) -> Iterator[None]:
        self._sweeping = True
        try:
            if self._stop == "interrupted":
                raise KeyboardInterrupt
            yield
        finally:
            self._sweeping = False

    # ------------------------------------------------------------------ the end
    def _finish(self, reason: str) -> str:
        """Sign off what the config asks for (resumably), then end the segment."""
        if reason == "interrupted":
            return self._end(reason)
        if self.polish.enabled:
            try:
                self._polish()
            except KeyboardInterrupt:
                return self._end("interrupted")
        hashes = self.search.rules.certifier.at_end(self.state.front, self.search.rules.objective)
        if hashes:
            self.recorder.checkpoint(self.state, numbered=False)  # the sign-off resumes from here
        for program_hash in hashes:
            try:
                self._sign_off(program_hash)
            except KeyboardInterrupt:
                return self._end("interrupted")
            self.recorder.checkpoint(self.state, numbered=False)
        while (runner_up := next_reserve(self.search)) is not None:  # niche runner-ups, resumably
            try:
                self._sign_off_reserve(runner_up)
            except KeyboardInterrupt:
                return self._end("interrupted")
            self.recorder.checkpoint(self.state, numbered=False)
        return self._end(reason)

    def _polish(self) -> None:
        """The end-of-run polish (``evo.polish``): refits in the plan's order until its deadline
        (a refit that has started finishes), each filed and checkpointed as it completes."""
        plan = self.polish
        work = candidates(self.state.front, members_of(self.state), plan)
        done = 0
        for ind in work:
            if plan.deadline is not None and self.recorder.elapsed >= plan.deadline:
                break
            started = time.monotonic()
            with self._interruptible():
                events = polish_one(self.search, ind, plan)
            events[0] = replace(events[0], polish_s=round(time.monotonic() - started, 3))
            self.recorder.write(events)
            self.recorder.flush_front(self.state)
            self.recorder.checkpoint(self.state, numbered=False)
            done += 1
        if done < len(work):
            self.recorder.log(f"polish: deadline reached after {done} of {len(work)} refits")

    def _sign_off_reserve(self, program) -> None:
        started = time.monotonic()
        with self._interruptible():
            data = self.final.data()
            final = self._sweep(score, program, data)
        deviation = data.reference_deviation if isinstance(data, Sweep) else None
        seconds = round(time.monotonic() - started, 3)
        self.recorder.write(record_reserve(self.search, program, final, deviation, seconds))
        self.recorder.flush_front(self.state)

    def _end(self, reason: str, message: str | None = None) -> str:
        state, objective = self.state, self.search.rules.objective
        best = objective.best_entry(state.front.entries)
        self.recorder.end(
            End(
                reason=reason,
                n_evals=state.n_evals,
                best=None
                if best is None
                else {
                    **summary_of(best.individual),
                    "select_err": best.select.max_err,
                    "final_err": None if best.final is None else best.final.max_err,
                },
                front=[
                    [
                        e.cost,
                        e.select.max_err,
                        None if e.final is None else e.final.max_err,
                        e.individual.program.canonical_hash(),
                    ]
                    for e in state.front.entries
                ],
                message=message,
            ),
            state,
        )
        return reason


class _StopOnSignal:
    """Ctrl-C (SIGINT) or SIGTERM asks the engine to stop after the current evaluation, and cuts a
    sign-off sweep short at once (the state is only changed when a sweep completes). Only
    installed in the main thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.engine.request_stop("interrupted")
        if self.engine._sweeping:
            raise KeyboardInterrupt

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
