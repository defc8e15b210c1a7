"""The composition root: the one place that turns a RunConfig into a problem, an executor, a
search and the engine that runs it."""

from __future__ import annotations

import numpy as np

from evo.config import RunConfig
from evo.costmodel import cost_model
from evo.engine import Budget, Engine, FinalSet
from evo.errors import UsageError
from evo.evaluate import Evaluator
from evo.executors import EvaluatorSpec, Executor, SerialExecutor
from evo.fit import FitSettings
from evo.front import ParetoFront
from evo.mutate import SearchSpace
from evo.objective import Objective
from evo.policies import Certifier, HardPointMiner, SearchRules, SelectGate, StagnationRestart
from evo.population import Population
from evo.problem import Problem
from evo.recorder import Recorder
from evo.search import Search
from evo.setting import setting_for
from evo.state import SearchState, driver_rng
from primitives.program import Program
from targets.dataset import Dataset, with_extra_points
from targets.scoring import Score


REAL_EXPLORE_STARTS = 6


def fit_settings(config: RunConfig) -> FitSettings:
    explore = config.fit_explore_starts
    if explore is None:
        explore = REAL_EXPLORE_STARTS if config.mode == "real" else 0
    return FitSettings(
        iterations=config.fit_iterations,
        fit_points=config.fit_points,
        polish_budget=config.polish_budget,
        polish_below=config.polish_below,
        explore_starts=explore,
    )


def evaluator_spec(config: RunConfig) -> EvaluatorSpec:
    """What every worker is built from (frozen and picklable: workers never see the config)."""
    space = SearchSpace(
        config.ops, config.max_ops, config.mutation_weights, config.dtype, config.mutation_retries
    )
    return EvaluatorSpec(fit_settings(config), config.fit, space, config.seed, config.cache_size)


def make_executor(config: RunConfig, problem: Problem) -> Executor:
    """The executor the config asks for (serial, or Ray: started here, never at import)."""
    if config.backend == "ray":
        from evo.ray_executor import RayExecutor, RayOptions

        options = RayOptions(
            config.ray_address, config.workers, config.in_flight_per_worker, config.ray_batch
        )
        return RayExecutor(evaluator_spec(config), problem.search, options)
    return SerialExecutor(evaluator_spec(config), problem.search)


def population_seeds(config: RunConfig, problem: Problem) -> list[Program]:
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
    if config.dtype == "float64":
        seeds = [_widened(p) for p in seeds]
    identity = Program.identity(config.dtype)
    seeds.extend([identity] * max(1, config.population_size - len(seeds)))
    return seeds[: config.population_size]


def initial_state(config: RunConfig, problem: Problem) -> SearchState:
    return SearchState(
        Population(config.population_size),
        ParetoFront(),
        driver_rng(config.seed),
        pending_seeds=population_seeds(config, problem),
    )


def _widened(program: Program) -> Program:
    """A float32 program as a float64 one (same ops, constants converted exactly)."""
    from primitives.floatbits import FLOAT32, FLOAT64, bits_to_float, float_to_bits
    from primitives.program import Const, Instr

    def widen(a):
        return Const(float_to_bits(bits_to_float(a.bits, FLOAT32), FLOAT64)) if isinstance(a, Const) else a

    body = tuple(Instr(i.op, tuple(widen(a) for a in i.args)) for i in program.body)
    return Program(body, widen(program.out), "float64")


class _Scorer:
    """Scores programs on a dataset without fitting (one evaluator per dataset, reused)."""

    def __init__(self, config: RunConfig) -> None:
        self._settings = fit_settings(config)
        self._evaluator: Evaluator | None = None

    def __call__(self, program: Program, data: Dataset) -> Score:
        if self._evaluator is None or self._evaluator.search.digest != data.digest:
            self._evaluator = Evaluator(data, self._settings, fit_enabled=False)
        return self._evaluator.score_program(program)


def search_rules(config: RunConfig, problem: Problem) -> SearchRules:
    objective = Objective(config.target_ulp)
    select_scorer = _Scorer(config)
    return SearchRules(
        tournament_size=config.tournament_size,
        cost_model=cost_model(config),
        objective=objective,
        gate=SelectGate(lambda program: select_scorer(program, problem.select)),
        miner=HardPointMiner(
            config.mine_every, config.mine_points, config.mine_below, config.max_hard_points
        ),
        restart=StagnationRestart(config.restart_after, objective),
        certifier=Certifier(config.target_ulp, config.signoff),
        restart_seeds=tuple(population_seeds(config, problem)),
        eval_every=config.log_every_eval,
        selection=config.selection,
    )


def build_search(config: RunConfig, problem: Problem, state: SearchState, executor: Executor) -> Search:
    """The search over ``state``; a resumed state's hard points rebuild the search set."""
    search_set = problem.search
    if state.hard_points:
        search_set = with_extra_points(search_set, np.array(state.hard_points))
        executor.update_search(search_set)
    return Search(search_rules(config, problem), state, search_set, _Scorer(config))


def build_engine(
    config: RunConfig, problem: Problem, executor: Executor, state: SearchState, recorder: Recorder
) -> Engine:
    setting = setting_for(config.mode)
    final = FinalSet(problem.final, setting, problem.target.fast_ref is not None, problem.select)
    budget = Budget(config.max_evals, config.max_seconds, config.stop_when_certified)
    return Engine(
        build_search(config, problem, state, executor), executor, recorder, budget, final, config.sync_batch
    )


def make_recorder(config: RunConfig, writer, on_progress=None) -> Recorder:
    return Recorder(
        writer,
        setting_for(config.mode),
        config.checkpoint_every,
        config.progress_every,
        on_progress,
        (config.max_evals, config.max_seconds),
    )
