"""The Python API, mirroring the CLI: ``evolve``, ``resume``, ``load_run`` and ``score``."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evo.assemble import build_engine, initial_state, make_executor, make_recorder, resume_state
from evo.config import RunConfig, resolve, with_seed
from evo.costmodel import with_cost_table
from evo.errors import RunError, UsageError
from evo.events import Resume, Start
from evo.executors import Executor
from evo.front import FrontEntry, ParetoFront
from evo.identity import check_resume_identity, identity_record
from evo.meta import run_meta
from evo.objective import Objective
from evo.problem import build_problem
from evo.run import Run, load_run, unfinished
from evo.runlog import RunReader, RunWriter, new_run_dir
from evo.setting import setting_for
from evo.state import SearchState
from evo.threads import one_blas_thread
from primitives.program import Program
from targets.dataset import Dataset, Sweep, build_dataset
from targets.registry import get_target
from targets.scoring import Score
from targets.scoring import score as score_on
from targets.target import Target

__all__ = ["Run", "RunResult", "evolve", "load_run", "point_set", "resume", "score"]


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a finished (or stopped) search leaves: where it is, how it ended, and its front."""

    run_dir: Path
    config: RunConfig
    reason: str
    n_evals: int
    front: ParetoFront
    best: FrontEntry | None


def _run_to_end(engine, recorder, run_dir: Path, config: RunConfig) -> RunResult:
    """Run the engine until its budget or a stop (the end of the run is written), and summarise it."""
    try:
        reason = engine.run()
    finally:
        recorder.close()
    front = engine.state.front
    return RunResult(
        run_dir,
        config,
        reason,
        engine.state.n_evals,
        front,
        Objective(config.target_ulp).best_entry(front.entries),
    )


@one_blas_thread
def evolve(
    config: RunConfig | dict | None = None,
    executor: Executor | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    on_start: Callable[[Path, RunConfig], None] | None = None,
    cache_dir: Path | None = None,
    **overrides: Any,
) -> RunResult:
    """Run a search and write its run directory; returns the result (front and best program).

    ``config`` is a RunConfig or a mapping of config keys; keyword arguments override it
    (``evolve(target="exp2", max_evals=5000, seed=1)``). A missing seed is drawn at random,
    reported through ``on_start`` and recorded in config.json.
    """
    if config is None:
        config = {}
    base = config.to_dict() if isinstance(config, RunConfig) else dict(config)
    config = resolve({**base, **overrides})
    if config.max_evals is None and config.max_seconds is None:
        raise UsageError("give a budget: max_evals or max_seconds")
    if config.stop_when_certified and config.signoff == "none":
        raise UsageError("stop_when_certified needs sign-offs: use signoff front or best, not none")
    if config.seed is None:
        config = with_seed(config, secrets.randbelow(2**31))
    config = with_cost_table(config, cache_dir)
    problem = build_problem(config, cache_dir)
    own_executor = executor is None
    executor = make_executor(config, problem) if executor is None else executor
    if config.islands is None and not getattr(executor, "local", True):
        config = config.replace(islands=executor.n_workers)  # Ray islands: one per worker, recorded
    run_dir = new_run_dir(config.runs_dir, problem.target.name, config.seed)
    writer = None
    try:
        meta = run_meta(config, problem, executor.describe())
        writer = RunWriter.create(run_dir, config, {**meta, "identity": identity_record(config, problem)})
        if on_start is not None:
            on_start(run_dir, config)
        recorder = make_recorder(config, writer, on_progress)
        engine = build_engine(config, problem, executor, initial_state(config, problem), recorder)
        recorder.write(
            [
                Start(
                    seed=config.seed,
                    target=problem.target.name,
                    expr=problem.target.expr,
                    domain=problem.target.domain_text(config.dtype),
                    mode=config.mode,
                    search=problem.search.label,
                    select=problem.select.label,
                    **executor.describe(),
                )
            ]
        )
        recorder.log(f"start: seed {config.seed}, target {problem.target.name}, run {run_dir}")
        return _run_to_end(engine, recorder, Path(run_dir), config)
    finally:
        if writer is not None:
            writer.close()  # releases the run's lock also when the run fails
        if own_executor:
            executor.close()


RESUMABLE_CHANGES = frozenset(
    {
        "backend",
        "workers",
        "ray_address",
        "in_flight_per_worker",
        "checkpoint_every",
        "progress_every",
        "signoff",
    }
)


@one_blas_thread
def resume(
    run_dir: str | Path,
    max_evals: int | None = None,
    max_seconds: float | None = None,
    executor: Executor | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    cache_dir: Path | None = None,
    **overrides: Any,
) -> RunResult:
    """Continue a run from its checkpoint (after a stop, a crash or a kill) with a new budget.

    ``max_evals`` is the new total; ``max_seconds`` counts from the run's start (resumes included)
    and, given alone, replaces an evaluation budget. A run that was interrupted or killed (during
    the search or its sign-off) can be resumed without a new budget: it continues to its old one.
    Other overrides (e.g. ``backend``/``workers``) may change how, but not what, is searched.
    """
    reader = RunReader(run_dir)
    config = reader.config
    checkpoint = reader.checkpoint()
    if checkpoint is None:
        raise RunError(f"{run_dir} has no checkpoint to resume from (it was stopped before the first one)")
    unknown = set(overrides) - RESUMABLE_CHANGES
    if unknown:
        allowed = ", ".join(sorted(RESUMABLE_CHANGES))
        raise UsageError(f"cannot change {', '.join(sorted(unknown))} when resuming (only {allowed})")
    changes: dict[str, Any] = dict(overrides)
    if max_evals is not None:
        changes["max_evals"] = max_evals
    if max_seconds is not None:
        changes["max_seconds"] = max_seconds
        if max_evals is None:
            changes["max_evals"] = None  # a time budget alone replaces the evaluation budget
    config = config.replace(**changes) if changes else config
    try:
        state = resume_state(checkpoint, config.population_size)
        if isinstance(state, SearchState) and config.islands is None:
            config = config.replace(islands=1)  # one population stays one population on any backend
        elapsed = float(checkpoint.get("elapsed", 0.0))
    except (KeyError, TypeError, ValueError) as exc:
        raise RunError(f"{Path(run_dir) / 'checkpoint.json'} is corrupt: {exc}") from None
    if not unfinished(reader.events()):
        if config.max_evals is not None and state.n_evals >= config.max_evals:
            raise UsageError(f"the run already has {state.n_evals} evaluations; give a larger --max-evals")
        if config.max_seconds is not None and elapsed >= config.max_seconds:
            raise UsageError(f"the run has already run {elapsed:.1f} s; give a larger --max-seconds")
    problem = build_problem(config, cache_dir)
    check_resume_identity(reader, config, problem, state)
    own_executor = executor is None
    executor = make_executor(config, problem) if executor is None else executor
    writer = None
    try:
        writer = RunWriter.reopen(Path(run_dir), checkpoint)
        recorder = make_recorder(config, writer, on_progress)
        engine = build_engine(config, problem, executor, state, recorder)
        recorder.write(
            [
                Resume(
                    state.n_evals,
                    max_evals=config.max_evals,
                    max_seconds=config.max_seconds,
                    **executor.describe(),
                )
            ]
        )
        recorder.log(f"resume at {state.n_evals} evaluations")
        return _run_to_end(engine, recorder, Path(run_dir), config)
    finally:
        if writer is not None:
            writer.close()  # releases the run's lock also when the run fails
        if own_executor:
            executor.close()


def point_set(
    target: Target | str, points: str = "final", mode: str = "float32", seed: int = 0
) -> Dataset | Sweep:
    """A target's search, select or final set in the mode's dtype (with its references)."""
    target = get_target(target) if isinstance(target, str) else target
    return build_dataset(target, points, setting_for(mode).dtype, seed)


def score(
    program: Program, target: Target | str, points: str = "final", mode: str = "float32", seed: int = 0
) -> Score:
    """Score any program on a target's search, select or final set."""
    return score_on(program, point_set(target, points, mode, seed))
