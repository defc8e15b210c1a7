"""The recorder: everything a search leaves behind (events, log, front.json, checkpoints through
the run writer), the cadences of progress events and checkpoints, the rates and the live progress.

Progress events and numbered checkpoints (with a ``checkpoint`` event) are triggered by evaluation
counts, so serial runs are reproducible event by event. Besides those, a checkpoint file (with no
event, so the stream stays deterministic) is written whenever ``safety_seconds`` passed since the
last one: a crash loses at most about that much work whatever the evaluation speed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from evo.events import End, Event, Front, Progress, Signoff
from evo.runlog import RunWriter
from evo.setting import Setting
from evo.state import SearchState

SAFETY_SECONDS = 10.0


class Recorder:
    """Writes one run segment (see the module docstring)."""

    def __init__(
        self,
        writer: RunWriter,
        setting: Setting,
        checkpoint_every: int,
        progress_every: int,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        budget: tuple[int | None, float | None] = (None, None),
        safety_seconds: float = SAFETY_SECONDS,
    ) -> None:
        self.writer = writer
        self.setting = setting
        self.checkpoint_every = checkpoint_every
        self.progress_every = progress_every
        self.on_progress = on_progress
        self.budget = budget
        self.safety_seconds = safety_seconds
        self._last_checkpoint = time.monotonic()
        self._safety_interval = safety_seconds
        self._rate_mark = (time.monotonic(), 0)
        self._driver_mark = (0.0, 0)
        self._front_dirty = False
        self.driver_seconds = 0.0  # time in ask/tell: the driver's own cost per evaluation
        self.cache_hits = 0
        self._eval_ms_total = 0.0
        self._evaluated = 0

    @property
    def elapsed(self) -> float:
        return self.writer.elapsed

    # ------------------------------------------------------------------ events
    def write(self, events: list[Event]) -> None:
        for event in events:
            self.writer.event(event.kind, **event.record())
            line = _log_line(event, self.setting)
            if line:
                self.writer.log(line)
            self._front_dirty |= isinstance(event, Front | Signoff)

    def begin(self, n_evals: int) -> None:
        """Start the rates at this evaluation count (a new run or a resume)."""
        self._rate_mark = (time.monotonic(), n_evals)
        self._driver_mark = (self.driver_seconds, n_evals)

    def flush_front(self, state: SearchState, always: bool = False) -> None:
        """Rewrite front.json if the front changed since it was last written."""
        if self._front_dirty or always:
            self.writer.write_front(state.front.to_list())
            self._front_dirty = False

    def evaluated(self, cached: bool, eval_ms: float) -> None:
        if cached:
            self.cache_hits += 1
        else:
            self._eval_ms_total += eval_ms
            self._evaluated += 1

    def evaluated_batch(self, count: int, cached: int, eval_ms: float) -> None:
        self.cache_hits += cached
        self._eval_ms_total += eval_ms
        self._evaluated += count - cached

    def after_batch(self, state, before: int) -> None:
        """The cadences after a batch of evaluations (counts from ``before`` to ``state.n_evals``):
        each fires once if the batch passed one of its counts."""
        self.flush_front(state)
        n = state.n_evals
        if n // self.progress_every > before // self.progress_every:
            self._progress(state)
        if n // self.checkpoint_every > before // self.checkpoint_every:
            self.checkpoint(state)
        elif time.monotonic() - self._last_checkpoint >= self._safety_interval:
            self.checkpoint(state, numbered=False)
        if self.on_progress is not None:
            self.on_progress(self.snapshot(state))

    def after_tell(self, state: SearchState) -> None:
        """The cadences, once a result and everything it caused are filed."""
        self.flush_front(state)
        n = state.n_evals
        if n % self.progress_every == 0:
            self._progress(state)
        if n % self.checkpoint_every == 0:
            self.checkpoint(state)
        elif time.monotonic() - self._last_checkpoint >= self.safety_seconds:
            self.checkpoint(state, numbered=False)
        if self.on_progress is not None:
            self.on_progress(self.snapshot(state))

    def checkpoint(self, state: SearchState, numbered: bool = True) -> None:
        """Save the state; a numbered checkpoint (the count cadence) is also a ``Checkpoint`` event,
        which the writer appends once the state is safely on disk."""
        cpu = time.thread_time()
        self.writer.checkpoint(state.to_dict(), announce=numbered)
        self._last_checkpoint = time.monotonic()
        # a large state (many islands) is saved less often, so saving takes at most ~2% of the
        # driver's CPU; its own CPU (encoding, writing), not the wait for the disk's fsync
        self._safety_interval = max(self.safety_seconds, 50 * (time.thread_time() - cpu))

    def end(self, event: End, state: SearchState) -> None:
        """The end event, then a last checkpoint that covers the whole log."""
        self.flush_front(state, always=True)
        self.write([event])
        self.writer.checkpoint(state.to_dict())
        self.writer.log(f"end ({event.reason}) after {event.n_evals} evaluations")

    def log(self, line: str) -> None:
        self.writer.log(line)

    def close(self) -> None:
        self.writer.close()

    # ------------------------------------------------------------------ progress
    def snapshot(self, state: SearchState) -> dict[str, Any]:
        best = state.best
        return {
            "n_evals": state.n_evals,
            "elapsed": self.elapsed,
            "best_err": None if best is None else best.score.max_err,
            "best_cost": None if best is None else best.cost,
            "front_size": len(state.front),
            "max_evals": self.budget[0],
            "max_seconds": self.budget[1],
            "metric": self.setting.metric,
        }

    def _progress(self, state: SearchState) -> None:
        now, n = time.monotonic(), state.n_evals
        mark_time, mark_n = self._rate_mark
        rate = (n - mark_n) / (now - mark_time) if now > mark_time else 0.0
        self._rate_mark = (now, n)
        driver_before, driver_n = self._driver_mark
        driver_ms = 1e3 * (self.driver_seconds - driver_before) / max(1, n - driver_n)
        self._driver_mark = (self.driver_seconds, n)
        errors = np.array(state.population_errors(), dtype=np.float64)
        finite = errors[np.isfinite(errors)]
        best = state.best
        self.write(
            [
                Progress(
                    n,
                    best_err=None if best is None else best.score.max_err,
                    best_cost=None if best is None else best.cost,
                    front_size=len(state.front),
                    population_median_err=float(np.median(finite)) if finite.size else None,
                    population_finite=int(finite.size),
                    front=[[e.cost, e.error] for e in state.front.entries],
                    evals_per_s=round(rate, 2),
                    cache_hits=self.cache_hits,
                    eval_ms=round(self._eval_ms_total / self._evaluated, 4) if self._evaluated else None,
                    driver_ms=round(driver_ms, 4),
                )
            ]
        )
        self.writer.log(
            f"eval {n}: {rate:.0f} evals/s, best {self.setting.format(best and best.score.max_err, 6)}, "
            f"front {len(state.front)}"
        )


def _log_line(event: Event, setting: Setting) -> str | None:
    """The run.log line of an event (None: the event speaks for itself in events.jsonl)."""
    kind = event.kind
    if kind == "improve":
        best = setting.format(event.max_err, 6)
        return f"eval {event.n_evals}: new best {best} at cost {event.cost:g} ({event.mutation})"
    if kind == "restart":
        return f"eval {event.n_evals}: no progress for {event.stagnant_for} evaluations, restarting"
    if kind == "signoff":
        return (
            f"signed off {event.hash[:10]} (cost {event.cost:g}): final "
            f"{setting.format(event.final['max_err'], 6)} on {event.final['points']}"
        )
    if kind == "harden":
        added, source = event.added, event.source[:10]
        return f"eval {event.n_evals}: {added} hard points from {source} ({event.hard_points} in all)"
    if kind in ("worker_lost", "job_dropped", "island_restored"):
        return f"{kind}: {event.record()}"
    return None
