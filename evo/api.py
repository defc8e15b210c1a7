"""The Python API, mirroring the CLI: ``evolve``, ``resume``, ``load_run`` and ``score``."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evo.config import RunConfig, resolve, with_seed
from evo.costmodel import with_cost_table
from evo.engine import Engine
from evo.errors import RunError, UsageError
from evo.evaluate import Evaluator
from evo.executors import Executor, SerialExecutor
from evo.fit import FitSettings
from evo.identity import check_resume_identity, identity_record
from evo.front import FrontEntry, ParetoFront
from evo.mutate import SearchSpace
from evo.population import Population
from evo.state import SearchState, driver_rng
from evo.problem import Problem, build_problem, run_meta
from evo.runlog import RunReader, RunWriter, new_run_dir
from primitives.program import Program
from targets.dataset import build_dataset
from targets.registry import get_target
from targets.scoring import Score
from targets.scoring import score as score_on
from targets.target import Target


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a finished (or stopped) search leaves: where it is, how it ended, and its front."""

    run_dir: Path
    config: RunConfig
    reason: str
    n_evals: int
    front: ParetoFront
    best: FrontEntry | None


@dataclass(frozen=True, slots=True)
class Run:
    """A run directory read back from disk (no pickles: everything is rebuilt from JSON)."""

    run_dir: Path
    config: RunConfig
    meta: dict[str, Any]
    front: ParetoFront
    finished: bool

    @property
    def best(self) -> FrontEntry | None:
        return self.front.best(self.config.target_ulp)

    def events(self, kind: str | None = None):
        return RunReader(self.run_dir).events(kind)


def fit_settings(config: RunConfig) -> FitSettings:
    return FitSettings(config.fit_iterations, config.fit_points, config.polish_budget, config.polish_below)


def make_executor(config: RunConfig, problem: Problem) -> Executor:
    """The executor the config asks for (serial, or Ray: started here, never at import)."""
    if config.backend == "ray":
        from evo.ray_executor import RayExecutor

        return RayExecutor(config, problem)
    return SerialExecutor(make_evaluator(config, problem.search))


def make_evaluator(config: RunConfig, search, worker: int = 0) -> Evaluator:
    """The evaluator a worker holds: search set, fit settings, search space, seed and cache."""
    space = SearchSpace(config.ops, config.max_ops, config.mutation_weights, config.dtype, config.mutation_retries)
    return Evaluator(search, fit_settings(config), config.fit, space, config.seed, config.cache_size, worker)


def initial_state(config: RunConfig, problem: Problem) -> SearchState:
    """Population seeds: f(x) = x, or the classical anchors of the target (plus f(x) = x)."""
    seeds: list[Program] = []
    if config.seed_from == "anchors":
        from targets.baselines import baselines

        anchor_key = problem.target.anchor
        if anchor_key is None:
            raise UsageError(f"target {problem.target.name!r} has no classical anchors to seed from")
        ops = set(config.ops)
        for baseline in baselines(anchor_key):
            program = baseline.program
            if program.op_count() <= config.max_ops and set(program.op_histogram()) <= ops:
                seeds.append(program)
    identity = Program.identity(config.dtype)
    if config.dtype == "float64":
        seeds = [_widened(p) for p in seeds]
    seeds.append(identity)
    while len(seeds) < config.population_size:
        seeds.append(identity)
    return SearchState(Population(config.population_size), ParetoFront(), driver_rng(config.seed), pending_seeds=seeds[: config.population_size])


def _widened(program: Program) -> Program:
    """A float32 program as a float64 one (same ops, constants converted exactly)."""
    from primitives.floatbits import FLOAT32, FLOAT64, bits_to_float, float_to_bits
    from primitives.program import Const, Instr

    def widen(a):
        return Const(float_to_bits(bits_to_float(a.bits, FLOAT32), FLOAT64)) if isinstance(a, Const) else a

    body = tuple(Instr(i.op, tuple(widen(a) for a in i.args)) for i in program.body)
    return Program(body, widen(program.out), "float64")


def _start_engine(config, problem, writer, executor, state, on_progress) -> Engine:
    select = Evaluator(problem.select, fit_settings(config), fit_enabled=False)
    engine = Engine(config, problem, writer, executor, state, select, on_progress)
    engine.restart_seeds = initial_state(config, problem).pending_seeds
    return engine


def _run_to_end(engine, writer, run_dir: Path, config: RunConfig) -> RunResult:
    """Run the engine until its budget or a stop, write the end of the run, and summarise it."""
    reason = engine.run()
    engine.finish(reason)
    writer.close()
    state = engine.state
    return RunResult(run_dir, config, reason, state.n_evals, state.front, state.front.best(config.target_ulp))


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
    if config.seed is None:
        config = with_seed(config, secrets.randbelow(2**31))
    config = with_cost_table(config, cache_dir)
    problem = build_problem(config, cache_dir)
    own_executor = executor is None
    executor = make_executor(config, problem) if executor is None else executor
    run_dir = new_run_dir(config.runs_dir, problem.target.name, config.seed)
    writer = None
    try:
        writer = RunWriter.create(run_dir, config, {**run_meta(config, problem, executor.describe()), "identity": identity_record(config, problem)})
        if on_start is not None:
            on_start(run_dir, config)
        state = initial_state(config, problem)
        engine = _start_engine(config, problem, writer, executor, state, on_progress)
        writer.event(
            "start", seed=config.seed, target=problem.target.name, expr=problem.target.expr,
            domain=problem.target.domain_text(config.dtype), mode=config.mode,
            search=problem.search.label, select=problem.select.label, **executor.describe(),
        )
        writer.log(f"start: seed {config.seed}, target {problem.target.name}, run {run_dir}")
        return _run_to_end(engine, writer, Path(run_dir), config)
    finally:
        if writer is not None:
            writer.close()  # releases the run's lock also when the run fails
        if own_executor:
            executor.close()


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

    ``max_evals`` is the new total; ``max_seconds`` counts from the run's start (resumes included).
    Other overrides (e.g. ``backend``/``workers``) may change how, but not what, is searched.
    """
    reader = RunReader(run_dir)
    config = reader.config
    checkpoint = reader.checkpoint()
    if checkpoint is None:
        raise RunError(f"{run_dir} has no checkpoint to resume from (it was stopped before the first one)")
    allowed = {"backend", "workers", "ray_address", "in_flight_per_worker", "checkpoint_every", "progress_every", "signoff"}
    unknown = set(overrides) - allowed
    if unknown:
        raise UsageError(f"cannot change {', '.join(sorted(unknown))} when resuming (only {', '.join(sorted(allowed))})")
    changes: dict[str, Any] = dict(overrides)
    if max_evals is not None:
        changes["max_evals"] = max_evals
    if max_seconds is not None:
        changes["max_seconds"] = max_seconds
    config = config.replace(**changes) if changes else config
    try:
        state = SearchState.from_dict(checkpoint, config.population_size)
    except (KeyError, TypeError, ValueError) as exc:
        raise RunError(f"{Path(run_dir) / 'checkpoint.json'} is corrupt: {exc}") from None
    if config.max_evals is not None and state.n_evals >= config.max_evals and config.max_seconds is None:
        raise UsageError(f"the run already has {state.n_evals} evaluations; give a larger --max-evals")
    problem = build_problem(config, cache_dir)
    check_resume_identity(reader, config, problem, state)
    own_executor = executor is None
    executor = make_executor(config, problem) if executor is None else executor
    writer = None
    try:
        writer = RunWriter.reopen(Path(run_dir), checkpoint)
        engine = _start_engine(config, problem, writer, executor, state, on_progress)
        engine.restore_hard_points()
        writer.event("resume", n_evals=state.n_evals, max_evals=config.max_evals, max_seconds=config.max_seconds, **executor.describe())
        writer.log(f"resume at {state.n_evals} evaluations")
        return _run_to_end(engine, writer, Path(run_dir), config)
    finally:
        if writer is not None:
            writer.close()  # releases the run's lock also when the run fails
        if own_executor:
            executor.close()


def load_run(run_dir: str | Path) -> Run:
    """Read a run directory back (front, config, metadata; events on demand)."""
    reader = RunReader(run_dir)
    try:
        front = ParetoFront.from_list(reader.front())
    except (KeyError, TypeError, ValueError) as exc:
        raise RunError(f"the front of {run_dir} is corrupt: {exc}") from None
    return Run(Path(run_dir), reader.config, reader.meta, front, reader.finished())


def score(program: Program, target: Target | str, points: str = "final", mode: str = "float32", seed: int = 0) -> Score:
    """Score any program on a target's search, select or final set."""
    target = get_target(target) if isinstance(target, str) else target
    data = build_dataset(target, points, "float64" if mode == "real" else "float32", seed)
    return score_on(program, data)
