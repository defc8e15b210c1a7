"""The composition root: the one place that turns a RunConfig into a problem, an executor, a
search and the engine that runs it."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from evo.config import RunConfig
from evo.costmodel import cost_model
from evo.engine import Budget, Engine, FinalSet
from evo.errors import UsageError
from evo.evaluate import Evaluator
from evo.executors import EvaluatorSpec, Executor, SerialExecutor
from evo.fit import FitSettings
from evo.front import ParetoFront
from evo.island_engine import IslandEngine, IslandPlan
from evo.islands import (
    ArchipelagoState,
    IslandFactory,
    IslandRecord,
    LocalIslands,
    island_seed,
    migration_rng,
)
from evo.mutate import SearchSpace
from evo.objective import Objective
from evo.policies import Certifier, HardPointMiner, SearchRules, SelectGate, StagnationRestart
from evo.polish import plan_for, search_seconds
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
# the exchange refines seeds at most this far off (ULP): where rounding decides the error, not the form
EXCHANGE_BELOW = 64.0
REAL_ESCALATE_FIT = 10.0


def fit_settings(config: RunConfig) -> FitSettings:
    explore = config.fit_explore_starts
    if explore is None:
        explore = REAL_EXPLORE_STARTS if config.mode == "real" else 0
    escalate = config.escalate_fit
    if escalate is None:
        escalate = REAL_ESCALATE_FIT if config.mode == "real" else 0.0
    return FitSettings(
        iterations=config.fit_iterations,
        fit_points=config.fit_points,
        polish_budget=config.polish_budget,
        polish_below=config.polish_below,
        explore_starts=explore,
        escalate=escalate,
    )


def evaluator_spec(config: RunConfig) -> EvaluatorSpec:
    """What every worker is built from (frozen and picklable: workers never see the config)."""
    space = SearchSpace(
        config.ops, config.max_ops, config.mutation_weights, config.dtype, config.mutation_retries
    )
    return EvaluatorSpec(fit_settings(config), config.fit, space, config.seed, config.cache_size)


def islands_on_ray(config: RunConfig) -> bool:
    """Ray runs islands unless one population is asked for (islands = 1, or sync_batch without islands)."""
    if config.islands is None:
        return not config.sync_batch
    return config.islands > 1


def make_executor(config: RunConfig, problem: Problem) -> Executor:
    """The executor the config asks for (serial, or Ray: started here, never at import). On Ray
    with islands it is the pool of island actors, started by ``build_engine``."""
    if config.backend == "ray":
        from evo.ray_executor import RayExecutor, RayOptions

        options = RayOptions(
            config.ray_address, config.workers, config.in_flight_per_worker, config.ray_batch
        )
        if islands_on_ray(config):
            from evo.ray_islands import RayIslands

            return RayIslands(options)
        return RayExecutor(evaluator_spec(config), problem.search, options)
    return SerialExecutor(evaluator_spec(config), problem.search)


def population_seeds(config: RunConfig, problem: Problem) -> list[Program]:
    """Population seeds: f(x) = x, the shipped anchors of a built-in target, or classical minimax
    polynomials of every op count fitted on the search set (any target; ``evo.classical``),
    each followed by f(x) = x up to the population size. In float32 the best classical seed of
    each op count has its constants refined on the float32 lattice (``evo.lattice``, on the
    search points and a denser sample, never the select points); the exchange with the final set
    is for the reserve (``reserve_seeds``), so a run starts as fast as before."""
    seeds: list[Program] = []
    if config.seed_from == "classical":
        seeds.extend(_classical_seeding(config, problem, exchange=False).programs)
        seeds.extend(_compensated_memo(_ByContent(problem.search), config.ops, config.max_ops, config.dtype))
    if config.seed_from == "anchors":
        from targets.baselines import baselines

        anchor_key = problem.target.anchor
        if anchor_key is None:
            raise UsageError(f"target {problem.target.name!r} has no classical anchors to seed from")
        ops = set(config.ops)
        for baseline in baselines(anchor_key):
            program = baseline.program
            if program.op_count() <= config.max_ops and set(program.op_histogram()) <= ops:
                seeds.append(_widened(program) if config.dtype == "float64" else program)
    identity = Program.identity(config.dtype)
    seeds.extend([identity] * max(1, config.population_size - len(seeds)))
    return seeds[: config.population_size]


def reserve_seeds(config: RunConfig, problem: Problem) -> tuple[tuple[Program, float], ...]:
    """What the end of a run signs off where the front costing no more is worse, each with its
    estimated final error (a lower bound), ordered by op count, then estimate (``ordered_reserve``).

    In float32 with classical seeding: the exchange-refined seed of each op count (the classical
    seed, or a built-in's fpminimax polynomial where it is better, refined in rounds that add the
    final set's worst points, ``evo.exchange``; estimates from final-set probes), and the
    fallbacks: every shipped fpminimax polynomial of a built-in on its own domain with its error
    on every float (``_anchor_fallbacks``), or, without those, the minimax polynomials of the
    dense set with their final-set probes (where the exchange reads the final set) or their error
    on the dense points (where it does not: the final set is then read only by the sign-off). So
    a run ends no worse than the classical polynomial of any op count it allows. Else none."""
    if config.seed_from != "classical":
        return ()
    seeding = _classical_seeding(config, problem)
    reserve = (*seeding.reserve, *seeding.fallbacks)
    if config.dtype == "float32":
        reserve = (*reserve, *_anchor_fallbacks(problem.target, config.ops, config.max_ops))
        exchanged = config.seed_lattice_budget and config.seed_exchange_rounds
        if not exchanged and not _shipped_polynomials(problem.target, config.ops, config.max_ops):
            search, select = _ByContent(problem.search), _ByContent(problem.select)
            reserve = (*reserve, *_dense_fallbacks(search, select, config.ops, config.max_ops))
    return ordered_reserve(reserve)


@lru_cache(maxsize=8)
def _dense_fallbacks(
    search: _ByContent, select: _ByContent, ops: tuple[str, ...], max_ops: int
) -> tuple[tuple[Program, float], ...]:
    """The minimax fallbacks of the dense set with their error on its points (a lower bound of the
    error on every float; asked for at the end of a run only)."""
    from targets.dataset import refine_dataset

    data = search.data
    dense = refine_dataset(data.target, data, select.data, seed=0, n=4 * data.size)
    return tuple(_minimax_fallbacks(dense, None, ops, max_ops))


def ordered_reserve(entries) -> tuple[tuple[Program, float], ...]:
    """One entry per canonical hash (the larger estimate: both are lower bounds of the same final
    error), ordered by op count, then estimate, so the best of each op count is signed off first
    and the others only where it did not get in."""
    best: dict[str, tuple[Program, float]] = {}
    for program, estimate in entries:
        key = program.canonical_hash()
        if key not in best or estimate > best[key][1]:
            best[key] = (program, float(estimate))
    return tuple(sorted(best.values(), key=lambda item: (item[0].op_count(), item[1])))


class _ByContent:
    """A dataset keyed by its points and references (the points' digest alone is shared by every
    target on the same domain; datasets hold arrays, which do not hash)."""

    def __init__(self, data: Dataset) -> None:
        self.data = data
        content = hashlib.blake2b(digest_size=16)
        for array in (data.x, data.ref_hi, data.ref_lo, data.inv_scale):
            content.update(np.ascontiguousarray(array).tobytes())
        self.key = content.hexdigest()

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ByContent) and other.key == self.key


class _FinalOf(_ByContent):
    """The final set of a problem, keyed by its select set (both are functions of the target, the
    domain and the data seed), built on first use."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.select)
        self.build = problem.final


@lru_cache(maxsize=8)
def _compensated_memo(
    search: _ByContent, ops: tuple[str, ...], max_ops: int, dtype: str
) -> tuple[Program, ...]:
    """Compensated seeds of a search set (``evo.compensated``: no fma, an exact head, a small tail)."""
    from evo.compensated import compensated_seeds

    data = search.data
    return tuple(compensated_seeds(data.x, data.ref_hi + data.ref_lo, data.inv_scale, ops, max_ops, dtype))


@dataclass(frozen=True, slots=True)
class _Seeding:
    """Classical seeds (ordered by op count, then error), the exchange-refined best of each op
    count with its estimated final error, and the minimax fallbacks with their final-set probes
    (without shipped polynomials; ``_minimax_fallbacks``)."""

    programs: tuple[Program, ...]
    reserve: tuple[tuple[Program, float], ...] = ()
    fallbacks: tuple[tuple[Program, float], ...] = ()


def _classical_seeding(config: RunConfig, problem: Problem, exchange: bool = True) -> _Seeding:
    rounds = config.seed_exchange_rounds if config.dtype == "float32" and exchange else 0
    return _classical_memo(
        _ByContent(problem.search),
        _FinalOf(problem),
        config.ops,
        config.max_ops,
        config.dtype,
        config.seed_lattice_budget,
        rounds,
    )


def _classical_programs(
    problem: Problem, ops: tuple[str, ...], max_ops: int, dtype: str, lattice_budget: int = 0
) -> tuple[Program, ...]:
    """The classical seeds with the plain lattice refinement (no exchange)."""
    return _classical_memo(
        _ByContent(problem.search), _FinalOf(problem), ops, max_ops, dtype, lattice_budget, 0
    ).programs


@lru_cache(maxsize=8)
def _classical_memo(
    search: _ByContent,
    final: _FinalOf,
    ops: tuple[str, ...],
    max_ops: int,
    dtype: str,
    lattice_budget: int,
    exchange_rounds: int,
) -> _Seeding:
    """The classical seeds of a search set, the best of each op count lattice-refined on the search
    points and a sample four times their size, with ``exchange_rounds`` rounds of final-set worst
    points (a pure function, memoised: a run asks for its initial population, its restart seeds
    and its reserve; the refined seeds are also cached on disk, ``evo.seedcache``)."""
    from evo.classical import classical_seeds

    data = search.data
    if dtype != "float32" or not lattice_budget:
        fitted = classical_seeds(data.x, data.ref_hi + data.ref_lo, data.inv_scale, ops, max_ops, dtype)
        return _Seeding(tuple(s.program for s in fitted))
    from evo.seedcache import cached_seeds

    def compute():
        fitted = classical_seeds(data.x, data.ref_hi + data.ref_lo, data.inv_scale, ops, max_ops, dtype)
        programs = [s.program for s in fitted]
        if data.target.anchor is None:  # no fpminimax polynomials shipped: the exact minimax ones
            from evo.minimax import with_minimax_seeds

            programs = with_minimax_seeds(fitted, data, ops, max_ops, dtype)
        first = {(s.program.op_count(), s.kind): s.program for s in reversed(fitted)}  # best of a kind
        leaders = frozenset(first.values())
        return _refined_seeds(programs, search, final, ops, max_ops, lattice_budget, exchange_rounds, leaders)

    parts = (search.key, final.key, list(ops), max_ops, dtype, lattice_budget, exchange_rounds)
    return _Seeding(*cached_seeds(parts, compute))


def _refined_seeds(
    programs: list[Program],
    search: _ByContent,
    final: _FinalOf,
    ops: tuple[str, ...],
    max_ops: int,
    lattice_budget: int,
    exchange_rounds: int,
    leaders: frozenset[Program] = frozenset(),
) -> tuple[tuple[Program, ...], tuple[tuple[Program, float], ...], tuple[tuple[Program, float], ...]]:
    """The lattice refinement (and exchange) of the best seed of each op count, and the minimax
    fallbacks where the exchange reads the final set; see ``_classical_memo``.

    The first seed of an op count is refined, and so is every one of ``leaders`` (the best of each
    kind: polynomial, rational, reciprocal): which kind refines best is not known before refining
    (on 2^x over [-1/2, 1/2] at 6 ops the reciprocal is the better seed, 0.92 against 0.97 ULP
    on every float, but the refined polynomial reaches 0.79 and the refined reciprocal 0.96).
    The refined seeds of a count come first, by their max error on the refinement set; the
    exchange refines the best of them."""
    if not programs:
        return (), (), ()
    data = search.data
    from evo.exchange import ExchangeSettings, exchange_refine
    from evo.lattice import LatticeSettings, refine
    from targets.dataset import refine_dataset

    select = final.data  # the select set (what the final set is keyed by)
    dense = refine_dataset(data.target, data, select, seed=0, n=4 * data.size)
    settings = LatticeSettings(budget=lattice_budget)
    anchors = _anchor_starts(data.target, ops, max_ops) if exchange_rounds else {}
    final_set = final.build() if exchange_rounds else None
    exchange = ExchangeSettings(rounds=exchange_rounds)
    by_count: dict[int, list[Program]] = {}
    for program in programs:  # ordered by op count, then error: the first of a count is its best
        by_count.setdefault(program.op_count(), []).append(program)
    refined, reserve = [], []
    for group in by_count.values():
        tried = [refine(p, dense, settings) for i, p in enumerate(group) if i == 0 or p in leaders]
        tried.sort(key=lambda r: r.max_err)  # stable: the first of equals is the classical best
        plain, head = tried[0], [r.program for r in tried]
        if final_set is not None and plain.max_err <= EXCHANGE_BELOW:
            results = [exchange_refine(plain.program, dense, final_set, select.x, settings, exchange)]
            for start, known in anchors.get(plain.program.op_count(), ()):
                if known <= results[0].estimate:  # a polynomial known to be better: start from it too
                    results.append(exchange_refine(start, dense, final_set, select.x, settings, exchange))
            head[:1] = [r.program for r in results]  # the exchanged seeds in place of the plain one
            best = min(results, key=lambda r: r.estimate)  # the first of equals: the classical seed
            reserve.append((best.program, best.estimate))
        refined.extend(head)
        refined.extend(p for i, p in enumerate(group) if i and p not in leaders)
    fallbacks = []
    if final_set is not None and not _shipped_polynomials(data.target, ops, max_ops):
        fallbacks = _minimax_fallbacks(dense, final_set, ops, max_ops)
    return tuple(refined), tuple(reserve), tuple(fallbacks)


def _minimax_fallbacks(
    dense: Dataset, final_set, ops: tuple[str, ...], max_ops: int
) -> list[tuple[Program, float]]:
    """Without shipped polynomials (a user expression, or a built-in off its own domain): the
    minimax polynomials of each op count fitted on the dense set (``evo.minimax``, what a user
    would compare with), each with its final-set probe (exact on an explicit set, a lower bound
    on an exhaustive one) as the estimate, or without a final set its error on the dense points."""
    from evo.exchange import ExchangeSettings, probe
    from evo.minimax import minimax_seeds

    fitted = minimax_seeds(dense.x, dense.ref_hi + dense.ref_lo, dense.inv_scale, ops, max_ops, "float32")
    if final_set is None:
        return [(seed.program, seed.error) for seed in fitted if math.isfinite(seed.error)]
    found = []
    for seed in fitted:
        _, errors = probe(seed.program, final_set, 1, ExchangeSettings())
        if len(errors) and math.isfinite(errors[0]):
            found.append((seed.program, float(errors[0])))
    return found


def _shipped_polynomials(target, ops: tuple[str, ...], max_ops: int) -> list:
    """A built-in's shipped fpminimax polynomials (``targets.baselines``) that use only ``ops``
    and at most ``max_ops`` ops, where the target's domain is the one they were measured on."""
    from targets.baselines import anchors_data, baselines

    key = target.anchor
    if key is None:
        return []
    entry = anchors_data()["targets"].get(key)
    if entry is None or [np.float32(v) for v in entry["domain"]] != [np.float32(v) for v in target.domain()]:
        return []
    return [
        b
        for b in baselines(key)
        if b.program.op_count() <= max_ops and set(b.program.op_histogram()) <= set(ops)
    ]


def _anchor_starts(target, ops: tuple[str, ...], max_ops: int, per_count: int = 2) -> dict:
    """A built-in's shipped fpminimax polynomials on its own domain, per op count: the best
    ``per_count`` that use only ``ops``, with their measured error on every float of the domain
    (known answers to start from)."""
    found: dict[int, list] = {}
    for baseline in _shipped_polynomials(target, ops, max_ops):
        found.setdefault(baseline.program.op_count(), []).append(baseline)
    return {
        count: tuple(
            (b.program, b.max_ulp_exhaustive)
            for b in sorted(group, key=lambda b: b.max_ulp_exhaustive)[:per_count]
        )
        for count, group in found.items()
    }


def _anchor_fallbacks(target, ops: tuple[str, ...], max_ops: int) -> tuple[tuple[Program, float], ...]:
    """Every shipped fpminimax polynomial of a built-in on its own domain within ``ops`` and
    ``max_ops``, with its error on every float of the domain as shipped (exact: the estimate a
    reserve entry needs, at no cost; read from the package, never from the seed cache)."""
    return tuple(
        (b.program, b.max_ulp_exhaustive)
        for b in _shipped_polynomials(target, ops, max_ops)
        if math.isfinite(b.max_ulp_exhaustive)
    )


def initial_state(config: RunConfig, problem: Problem) -> SearchState | ArchipelagoState:
    """A new run's state: one population, or ``islands`` of them (each with its own seed)."""
    count = config.islands or 1
    if count == 1:
        return SearchState(
            Population(config.population_size),
            ParetoFront(),
            driver_rng(config.seed),
            pending_seeds=population_seeds(config, problem),
        )
    return island_state(config, problem, count)


def island_state(config: RunConfig, problem: Problem, count: int) -> ArchipelagoState:
    """``count`` new islands, island i seeded from the run seed and i, taking child ids i, i + count, ..."""
    records = []
    for index in range(count):
        seed = island_seed(config.seed, index)
        state = SearchState(
            Population(config.population_size),
            ParetoFront(),
            driver_rng(seed),
            next_id=index,
            pending_seeds=population_seeds(config, problem),
        )
        records.append(IslandRecord(index, seed, 0, state))
    return ArchipelagoState(tuple(records), ParetoFront(), migration_rng(config.seed))


def resume_state(checkpoint: dict, capacity: int) -> SearchState | ArchipelagoState:
    """The state of a checkpoint: one population (also every run written before islands), or islands."""
    if isinstance(checkpoint, dict) and checkpoint.get("format") == ArchipelagoState.schema():
        return ArchipelagoState.from_dict(checkpoint, capacity)
    return SearchState.from_dict(checkpoint, capacity)


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
        reserve=lambda: reserve_seeds(config, problem),  # computed when the end of the run asks
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
    config: RunConfig, problem: Problem, executor: Executor, state, recorder: Recorder
) -> Engine:
    setting = setting_for(config.mode)
    final = FinalSet(problem.final, setting, problem.target.fast_ref is not None, problem.select)
    polish = plan_for(config)  # the search stops early enough to leave the polish its share
    budget = Budget(config.max_evals, search_seconds(config.max_seconds, polish), config.stop_when_certified)
    if isinstance(state, ArchipelagoState):
        engine = _island_engine(config, problem, executor, state, recorder, budget, final)
    else:
        search = build_search(config, problem, state, executor)
        engine = Engine(search, executor, recorder, budget, final, config.sync_batch)
    engine.polish = polish
    return engine


def make_recorder(config: RunConfig, writer, on_progress=None) -> Recorder:
    return Recorder(
        writer,
        setting_for(config.mode),
        config.checkpoint_every,
        config.progress_every,
        on_progress,
        (config.max_evals, config.max_seconds),
    )


def _island_engine(
    config, problem, executor, state: ArchipelagoState, recorder, budget, final
) -> IslandEngine:
    """The driver of an island run: islands in this process (serial) or on the executor's actors."""
    rules = search_rules(config, problem)
    factory = IslandFactory(
        rules,
        _Scorer(config),
        evaluator_spec(config),
        problem.search,
        config.population_size,
        len(state.islands),
    )
    pool = LocalIslands() if getattr(executor, "local", True) else executor
    state = state.with_islands(pool.start(factory, state.islands))  # as the pool holds them now
    search_set = problem.search
    if state.hard_points:
        search_set = with_extra_points(search_set, np.array(state.hard_points))
    driver = Search(rules, state, search_set, _Scorer(config))  # merged front and sign-offs only
    plan = IslandPlan(config.migrate_every, config.migrants, config.migration, config.sync_migration)
    return IslandEngine(driver, pool, recorder, budget, final, plan)
