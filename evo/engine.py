"""The search loop: regularized evolution written as ask/tell around an executor.

The driver alone owns the state (population, front, RNG, counters: ``evo.state.SearchState``).
``ask`` draws a tournament winner; the executor's worker mutates it (each child's mutation has its
own RNG stream, seeded from the run seed and the child id), fits and scores the child; ``tell``
files the result: the child joins the population and the oldest member retires; a new best is
logged; a child that looks like a front improvement on the search set is re-scored on the select
set before it may enter the front. Around that loop: certification of front programs on the final
set, hard-point mining and restarts on stagnation. Progress events, checkpoints, mining and
restarts are triggered by evaluation counts (never by the clock), so serial runs are reproducible
event by event.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from evo.config import RunConfig
from evo.costmodel import cost_model
from evo.evaluate import EvalResult, Evaluator, Job, Lost
from evo.executors import Executor
from evo.front import ParetoFront
from evo.population import Individual, Population, fitness_key
from evo.problem import Problem
from evo.state import SearchState
from evo.runlog import RunWriter
from primitives.jsonform import to_dict as program_to_dict
from primitives.program import Program
from targets.dataset import Dataset, Sweep, with_extra_points
from targets.scoring import Score, score, worst_points

def _meaningfully_better(ind: Individual, reference: Individual | None, target_error: float | None) -> bool:
    """Better by the fitness order, with errors compared at a 1% resolution."""
    if reference is None:
        return True
    a, b = fitness_key(ind, target_error), fitness_key(reference, target_error)
    if target_error is not None and a[0] != b[0]:
        return a[0] < b[0]
    if target_error is not None and a[0] == 0 and a[1] != b[1]:
        return a[1] < b[1]  # within the target: cheaper is progress
    error_a = a[2] if target_error is not None and a[0] == 0 else (a[1] if target_error is not None else a[0])
    error_b = b[2] if target_error is not None and b[0] == 0 else (b[1] if target_error is not None else b[0])
    return error_a < 0.99 * error_b


def summary_of(individual: Individual) -> dict[str, Any]:
    return {
        "id": individual.id,
        "hash": individual.program.canonical_hash(),
        "cost": individual.cost,
        "ops": individual.program.op_count(),
        "max_err": individual.score.max_err,
        "mean_err": individual.score.mean_err,
    }


class Engine:
    """Runs the search until a budget is spent or a stop is requested."""

    def __init__(
        self,
        config: RunConfig,
        problem: Problem,
        writer: RunWriter,
        executor: Executor,
        state: SearchState,
        select_evaluator: Evaluator,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        if config.seed is None:
            raise ValueError("the engine needs a resolved seed")
        self.config = config
        self.problem = problem
        self.writer = writer
        self.executor = executor
        self.state = state
        self.select_evaluator = select_evaluator
        self.search_evaluator = select_evaluator.with_search(problem.search)
        self.on_progress = on_progress
        self.cost_model = cost_model(config)
        self._stop_reason: str | None = None
        self._in_flight: dict[int, int | None] = {}  # child id -> parent id
        self._rate_mark = (time.monotonic(), state.n_evals)
        self._eval_ms_total = 0.0
        self._evaluated = 0
        self.cache_hits = 0
        self._final_data: Dataset | Sweep | None = None
        if hasattr(executor, "notify"):
            executor.notify = self._executor_event
        self.restart_seeds: list[Program] = []
        self.driver_seconds = 0.0  # time spent in ask/tell: the driver's own cost per evaluation
        self._driver_mark = (0.0, state.n_evals)

    # ------------------------------------------------------------------ control
    def request_stop(self, reason: str = "interrupted") -> None:
        self._stop_reason = self._stop_reason or reason

    def _budget_reason(self) -> str | None:
        c = self.config
        if c.max_evals is not None and self.state.n_evals >= c.max_evals:
            return "max_evals"
        if c.max_seconds is not None and self.writer.elapsed >= c.max_seconds:
            return "max_seconds"
        if c.stop_when_certified and self.state.certified_cost < math.inf:
            return "certified"
        return None

    def _can_submit(self) -> bool:
        c = self.config
        if self._stop_reason or self._budget_reason():
            return False
        if c.max_evals is not None and self.state.n_evals + len(self._in_flight) >= c.max_evals:
            return False
        if not self.state.pending_seeds and not len(self.state.population):
            return False  # every seed is still in flight: nothing to run a tournament on yet
        return len(self._in_flight) < self.executor.capacity

    def _executor_event(self, kind: str, **fields: Any) -> None:
        self.writer.event(kind, n_evals=self.state.n_evals, **fields)
        self.writer.log(f"{kind}: {fields}")

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> tuple[Job, int | None]:
        """The next job: a pending seed, or a tournament winner to be mutated (by the worker)."""
        started = time.perf_counter()
        try:
            return self._ask()
        finally:
            self.driver_seconds += time.perf_counter() - started

    def _ask(self) -> tuple[Job, int | None]:
        state = self.state
        child_id = state.next_id
        state.next_id += 1
        if state.pending_seeds:
            return Job(child_id, state.pending_seeds.pop(0), mutate=False), None
        parent = state.population.tournament(
            self.config.tournament_size, state.rng, self.config.target_ulp, self.config.selection
        )
        return Job(child_id, parent.program, mutate=True), parent.id

    def tell(self, result: EvalResult, parent: int | None) -> Individual:
        """File one result (in the order results are handed over)."""
        started = time.perf_counter()
        try:
            return self._tell(result, parent)
        finally:
            self.driver_seconds += time.perf_counter() - started

    def _tell(self, result: EvalResult, parent: int | None) -> Individual:
        state = self.state
        kind = result.mutation
        child_score = result.score
        if result.search_digest != self.search_evaluator.search.digest:
            # scored on a search set that has since grown (hard points): re-score here, it is cheap
            child_score = self.search_evaluator.score_program(result.program)
        ind = Individual(result.child_id, result.program, child_score, self.cost_model.cost(result.program), parent, kind)
        state.n_evals += 1
        state.population.add(ind)
        cached = result.cached
        if cached:
            self.cache_hits += 1
        else:
            self._eval_ms_total += result.eval_ms
            self._evaluated += 1
        c = self.config
        if c.log_every_eval and state.n_evals % c.log_every_eval == 0:
            self.writer.event(
                "eval", n_evals=state.n_evals, parent=parent, mutation=kind, **summary_of(ind),
                fit_evals=result.fit_evals, eval_ms=round(result.eval_ms, 3), cached=cached, worker=result.worker,
            )
        if state.best is None or fitness_key(ind, c.target_ulp) < fitness_key(state.best, c.target_ulp):
            state.best = ind
            self.writer.event(
                "improve", n_evals=state.n_evals, parent=parent, mutation=kind, **summary_of(ind),
                program=program_to_dict(ind.program),
            )
            self.writer.log(f"eval {state.n_evals}: new best {ind.score.max_err:.6g} at cost {ind.cost:g} ({kind})")
        if state.front.worth_checking(ind):
            self._consider_for_front(ind)
        self._track_stagnation(ind)
        if c.mine_every and state.n_evals % c.mine_every == 0:
            self._mine_hard_points()
        if state.n_evals % c.progress_every == 0:
            self._progress_event()
        if state.n_evals % c.checkpoint_every == 0:
            self.checkpoint()
        if self.on_progress is not None:
            self.on_progress(self.snapshot())
        return ind

    def _consider_for_front(self, ind: Individual) -> None:
        state = self.state
        select = self.select_evaluator.score_program(ind.program)
        known = state.finals.get(ind.program.canonical_hash())  # signed off before: no second sweep
        front, changed = state.front.updated(ind, select, known)
        if not changed:
            return
        state.front = front
        self.writer.event(
            "front", n_evals=state.n_evals, **summary_of(ind), select_err=select.max_err,
            program=program_to_dict(ind.program),
            front=[[e.cost, e.select.max_err, e.individual.program.canonical_hash()] for e in front.entries],
        )
        self.writer.write_front(front.to_list())
        target = self.config.target_ulp
        if target is not None and select.max_err <= target and ind.cost < state.certified_cost:
            self._sign_off(ind.program.canonical_hash(), during_search=True)

    # ------------------------------------------------------------------ restarts
    def _track_stagnation(self, ind: Individual) -> None:
        """Restart the population (keeping the front, the best and the hard points) when the best
        of the current epoch has not improved by 1% for ``restart_after`` evaluations: regularized
        evolution can commit early to a structure family that cannot reach the goal, and a fresh
        start from f(x) = x, now with a tail-aware search set, is cheaper than waiting.
        """
        state, c = self.state, self.config
        if _meaningfully_better(ind, state.epoch_best, c.target_ulp):
            state.epoch_best = ind
            state.epoch_mark = state.n_evals
        elif c.restart_after and state.n_evals - state.epoch_mark >= c.restart_after and not state.pending_seeds:
            self.writer.event(
                "restart", n_evals=state.n_evals, epoch=state.epoch + 1, stagnant_for=state.n_evals - state.epoch_mark,
                epoch_best=None if state.epoch_best is None else summary_of(state.epoch_best),
            )
            self.writer.log(f"eval {state.n_evals}: no progress for {c.restart_after} evaluations, restarting the population")
            state.epoch += 1
            state.epoch_best = None
            state.epoch_mark = state.n_evals
            state.population = Population(state.population.capacity)
            state.pending_seeds = list(self.restart_seeds)

    # ------------------------------------------------------------------ hard points
    def _mining_data(self) -> Sweep | None:
        """Where to look for a program's worst points: the exhaustive final sweep, scanned with its
        fast reference. Without one there is no mining (the select set must stay unseen by the
        search, and a large mpmath sample would cost more than it saves).
        """
        if self.config.mode != "float32" or self.problem.target.fast_ref is None:
            return None
        data = self.final_data()
        return data if isinstance(data, Sweep) else None

    def _mine_hard_points(self) -> None:
        """Add the current best program's worst points to the search set, so the search optimises
        the tail that a small sample cannot see; the population is re-scored on the new set.
        """
        state, c = self.state, self.config
        best = state.best
        room = c.max_hard_points - len(state.hard_points)
        if best is None or room <= 0 or not best.score.max_err <= c.mine_below:
            return
        data = self._mining_data()
        if data is None:
            return
        search = self.search_evaluator.search
        xs, errors = worst_points(best.program, data, c.mine_points)
        fresh = [float(x) for x in xs if not np.any(search.x == x)][:room]
        if not fresh:
            return
        state.hard_points.extend(fresh)
        self._use_search(with_extra_points(search, np.array(fresh)))
        self.writer.event(
            "harden", n_evals=state.n_evals, added=len(fresh), hard_points=len(state.hard_points),
            source=best.program.canonical_hash(), worst_err=float(errors[0]) if len(errors) else None,
            search=self.search_evaluator.search.label,
            best_err=None if state.best is None else state.best.score.max_err,
        )

    def _use_search(self, search: Dataset) -> None:
        """Switch every scorer to a new search set and re-score the population and the best."""
        state = self.state
        self.search_evaluator = self.search_evaluator.with_search(search)
        self.executor.update_search(search)
        members = [replace(ind, score=self.search_evaluator.score_program(ind.program)) for ind in state.population]
        state.population = Population(state.population.capacity, members)
        candidates = list(members)
        if state.best is not None:
            candidates.append(replace(state.best, score=self.search_evaluator.score_program(state.best.program)))
        state.best = min(candidates, key=lambda ind: fitness_key(ind, self.config.target_ulp)) if candidates else None

    def restore_hard_points(self) -> None:
        """After a resume: rebuild the search set with the hard points the checkpoint lists."""
        if self.state.hard_points:
            search = with_extra_points(self.problem.search, np.array(self.state.hard_points))
            self.search_evaluator = self.search_evaluator.with_search(search)
            self.executor.update_search(search)

    # ------------------------------------------------------------------ sign-off
    def final_data(self) -> Dataset | Sweep:
        if self._final_data is None:
            self._final_data = self.problem.final()
        return self._final_data

    def _sign_off(self, program_hash: str, during_search: bool = False) -> Score | None:
        state = self.state
        entry = next((e for e in state.front.entries if e.individual.program.canonical_hash() == program_hash), None)
        if entry is None or entry.final is not None:
            return None if entry is None else entry.final
        started = time.monotonic()
        data = self.final_data()
        final = score(entry.individual.program, data)
        state.finals[program_hash] = final
        state.front = state.front.with_final(program_hash, final)
        target = self.config.target_ulp
        certified = target is not None and final.max_err <= target
        if certified:
            state.certified_cost = min(state.certified_cost, entry.cost)
        extra = {}
        if isinstance(data, Sweep):
            extra["reference_deviation"] = data.reference_deviation
        self.writer.event(
            "signoff", n_evals=state.n_evals, **summary_of(entry.individual), select_err=entry.select.max_err,
            final=final.to_dict(), certified=certified, during_search=during_search,
            signoff_s=round(time.monotonic() - started, 3), **extra,
        )
        self.writer.write_front(state.front.to_list())
        self.writer.log(
            f"signed off {program_hash[:10]} (cost {entry.cost:g}): final {final.max_err:.6g} on {final.points}"
        )
        return final

    def sign_off_front(self) -> None:
        mode = self.config.signoff
        if mode == "none" or not len(self.state.front):
            return
        if mode == "best":
            best = self.state.front.best(self.config.target_ulp)
            hashes = [] if best is None else [best.individual.program.canonical_hash()]
        else:
            hashes = [e.individual.program.canonical_hash() for e in self.state.front.entries]
        for program_hash in hashes:
            if self._stop_reason == "killed":
                break
            self._sign_off(program_hash)

    # ------------------------------------------------------------------ records
    def snapshot(self) -> dict[str, Any]:
        state = self.state
        best = state.best
        return {
            "n_evals": state.n_evals,
            "elapsed": self.writer.elapsed,
            "best_err": None if best is None else best.score.max_err,
            "best_cost": None if best is None else best.cost,
            "front_size": len(state.front),
            "max_evals": self.config.max_evals,
            "max_seconds": self.config.max_seconds,
            "metric": self.problem.search.metric,
        }

    def _progress_event(self) -> None:
        now, n = time.monotonic(), self.state.n_evals
        mark_time, mark_n = self._rate_mark
        rate = (n - mark_n) / (now - mark_time) if now > mark_time else 0.0
        self._rate_mark = (now, n)
        driver_before, driver_n = self._driver_mark
        driver_ms = 1e3 * (self.driver_seconds - driver_before) / max(1, n - driver_n)
        self._driver_mark = (self.driver_seconds, n)
        errors = np.array([ind.score.max_err for ind in self.state.population], dtype=np.float64)
        finite = errors[np.isfinite(errors)]
        best = self.state.best
        self.writer.event(
            "progress", n_evals=n, evals_per_s=round(rate, 2),
            best_err=None if best is None else best.score.max_err,
            best_cost=None if best is None else best.cost,
            front_size=len(self.state.front),
            population_median_err=float(np.median(finite)) if finite.size else None,
            population_finite=int(finite.size),
            cache_hits=self.cache_hits,
            eval_ms=round(self._eval_ms_total / self._evaluated, 4) if self._evaluated else None,
            driver_ms=round(driver_ms, 4),
            front=[[e.cost, e.error] for e in self.state.front.entries],
        )
        self.writer.log(
            f"eval {n}: {rate:.0f} evals/s, best {best.score.max_err if best else float('nan'):.6g}, "
            f"front {len(self.state.front)}"
        )

    def checkpoint(self) -> None:
        self.writer.checkpoint(self.state.to_dict(), announce=True)  # the event follows the state on disk

    # ------------------------------------------------------------------ the loop
    def run(self) -> str:
        """Search until a budget is spent or a stop is requested; returns the end reason."""
        with _StopOnSignal(self):
            if self.config.sync_batch:
                self._run_batches(self.config.sync_batch)
            else:
                self._run_steady()
        return self._stop_reason or self._budget_reason() or "max_evals"

    def _run_steady(self) -> None:
        """Steady state: keep the executor full, file results in the order they finish."""
        while True:
            while self._can_submit():
                job, parent = self.ask()
                self._in_flight[job.child_id] = parent
                self.executor.submit(job)
            if not self._in_flight:
                return
            result = self.executor.next_result()
            parent = self._in_flight.pop(result.child_id)
            if isinstance(result, Lost):
                continue
            self.tell(result, parent)
            if self._stop_reason and len(self._in_flight):
                self.executor.cancel_all()  # an interrupted async run drops what is in flight
                self._in_flight.clear()
                return

    def _run_batches(self, size: int) -> None:
        """Synchronous batches: ask ``size`` children from one population snapshot, wait for all,
        file them in child-id order. Deterministic whatever the number of workers or arrival order.
        """
        while not (self._stop_reason or self._budget_reason()):
            count = min(size, len(self.state.pending_seeds)) if self.state.pending_seeds else size
            if self.config.max_evals is not None:
                count = min(count, self.config.max_evals - self.state.n_evals)
            parents: dict[int, int | None] = {}
            for _ in range(count):
                job, parent = self.ask()
                parents[job.child_id] = parent
                self.executor.submit(job)
            results = [self.executor.next_result() for _ in range(count)]
            for result in sorted((r for r in results if not isinstance(r, Lost)), key=lambda r: r.child_id):
                self.tell(result, parents[result.child_id])

    def finish(self, reason: str) -> None:
        """Sign off the front on the final set, then write the end event and a last checkpoint."""
        self.sign_off_front()
        best = self.state.front.best(self.config.target_ulp)
        self.writer.write_front(self.state.front.to_list())
        self.writer.event(
            "end", reason=reason, n_evals=self.state.n_evals,
            best=None if best is None else {**summary_of(best.individual), "select_err": best.select.max_err,
                                            "final_err": None if best.final is None else best.final.max_err},
            front=[[e.cost, e.select.max_err, None if e.final is None else e.final.max_err,
                    e.individual.program.canonical_hash()] for e in self.state.front.entries],
        )
        self.writer.checkpoint(self.state.to_dict())
        self.writer.log(f"end ({reason}) after {self.state.n_evals} evaluations")


class _StopOnSignal:
    """Ctrl-C (SIGINT) or SIGTERM asks the engine to stop after the current evaluation; a second
    Ctrl-C interrupts at once. Only installed in the main thread.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.engine._stop_reason is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.engine.request_stop("interrupted")

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
