"""Scaling of the search: one central driver against islands, on Ray, real and simulated.

Five parts, each a table with its baseline measured in the same run:

- ``central``: serial against Ray with 1 and 2 workers running one population (the driver runs every
  tournament and files every result), asynchronous and in synchronous batches of 64.
- ``islands``: parallel efficiency of islands on this machine, on the same work. A run of 2 islands
  that never migrate (``migrants`` 0) on 2 workers (one actor each), against the same two islands
  on 1 worker: each island rebuilt from its start state and run for the count of evaluations it made
  in the 2-worker run, round-robin in one Ray task with one CPU. Without migration an island's
  trajectory is a function of its own start state (seed stream, interleaved child ids) and its
  count only, so both do the same evaluations; the table checks it (each island's count, best error
  and a digest of its final state must be equal) and prints the ratio of the two rates (evaluations
  / wall). Both are timed without their start: every worker first runs a throwaway island (numba's
  kernels load), and the 2-worker run is timed from its first request to its end (tail, driver and
  Ray included). The 1-worker side is not a 2-island run on one worker: a run's budget is shared,
  so the faster island makes more of it, and a 1-worker run would split the evaluations otherwise.
  Repeated ``--repeats`` times (seeds ``--seed``, ``--seed`` + 1, ...): median and worst ratio.
- ``islands-unpaired`` (not in ``all``): the earlier comparison, a 1-island run against a 2-island
  run (steady rate between progress callbacks after the first 20% of the evaluations; ``with
  start``: the whole run). It compares different work: each run evolves programs of its own sizes,
  so the 1-island rate alone varies by a third between seeds, and the ratio with it.
- ``simulated``: workers with a fake evaluator of fixed cost (it sleeps ``--eval-ms`` per
  evaluation, so 64-256 workers fit on 2 cores: they are threads of a few actors with no CPU
  reserved), driven by the central design and by the island design. It prints the driver's CPU per
  evaluation (``time.process_time`` of the driver process, all its threads, steady state) and
  splits it in two: a part that grows with wall time (Ray's own threads while the driver waits on
  the actors, measured right after the run on the same actors, each with the call the driver
  keeps pending on it and nothing arriving) and a part per evaluation (the rest). On 2 cores the
  simulated islands' own tournaments bound the rate to a few thousand evaluations per second, so
  the time part weighs far more per evaluation than it would with 256 real workers; the
  projection gives the driver's CPU per evaluation at the rate ``workers / eval_ms`` that many
  workers would reach, and the worker count at which the driver saturates (its CPU per second
  reaches one core).
- ``quality``: islands against one population at equal evaluations (serial, exp2 and erf, 3 seeds):
  the median select-set error of the best program.

The machine's 1-minute load average is printed at the start and the end (and per run in the
islands tables): the real runs want an otherwise idle machine.

    python bench/ray_scaling.py [--mode all|central|islands|islands-unpaired|simulated|quality]
        [--evals 3000] [--repeats 3] [--batch 250] [--simulated 64 256]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from evo.api import evolve
from evo.assemble import build_engine, island_state, make_recorder
from evo.config import resolve
from evo.evaluate import EvalResult, Job
from evo.islands import Request, state_text
from evo.meta import run_meta
from evo.problem import build_problem
from evo.runlog import RunReader, RunWriter, new_run_dir
from evo.state import SearchState
from targets.dataset import Dataset
from targets.scoring import Score

QUIET = dict(signoff="none", mine_every=0, restart_after=0, checkpoint_every=10**9)


# ----------------------------------------------------------------------------- simulated workers
@dataclass(frozen=True, slots=True)
class SimulatedSpec:
    """Builds a fake evaluator: each evaluation sleeps ``eval_ms`` and draws a score (no CPU)."""

    eval_ms: float
    seed: int

    def build(self, search: Dataset, worker: int = 0):
        return SimulatedEvaluator(search, self.eval_ms, self.seed, worker)


class SimulatedEvaluator:
    def __init__(self, search: Dataset, eval_ms: float, seed: int, worker: int) -> None:
        self.search, self.eval_ms, self.seed, self.worker = search, eval_ms, seed, worker

    def with_search(self, search: Dataset) -> SimulatedEvaluator:
        return SimulatedEvaluator(search, self.eval_ms, self.seed, self.worker)

    def run(self, job: Job) -> EvalResult:
        time.sleep(self.eval_ms / 1e3)
        rng = np.random.default_rng((self.seed, job.child_id + 1))  # the warm-up job has id -1
        err = float(rng.lognormal(8.0, 2.0))
        score = Score(err, err / 2, 0.5, self.search.size, 0, 0, 0, self.search.metric, self.search.label)
        return EvalResult(
            job.child_id,
            job.program,
            "seed" if not job.mutate else "perturb_const",
            score,
            self.search.digest,
            1,
            self.eval_ms,
            False,
            self.worker,
        )


class Steady:
    """Driver CPU and wall time between the first progress callback past warm-up and the last."""

    def __init__(self, warm: int) -> None:
        self.warm, self.first, self.last = warm, None, None
        self.whole = (0.0, 0)  # (wall seconds of the whole run, its evaluations), set by run_islands

    def __call__(self, snapshot: dict) -> None:
        mark = (time.perf_counter(), time.process_time(), snapshot["n_evals"])
        if self.first is None and snapshot["n_evals"] >= self.warm:
            self.first = mark
        self.last = mark

    def rates(self) -> tuple[float, float]:
        """(evaluations per second, driver CPU ms per evaluation)."""
        (w0, c0, n0), (w1, c1, n1) = self.first, self.last
        return (n1 - n0) / (w1 - w0), 1e3 * (c1 - c0) / max(1, n1 - n0)


def run_islands(config, count: int, executor, runs_dir: str, warm: int) -> Steady:
    """An island run of ``count`` islands on ``executor`` (also one island: a whole search in one actor)."""
    problem = build_problem(config)
    steady = Steady(warm)
    writer = RunWriter.create(
        new_run_dir(runs_dir, problem.target.name, config.seed),
        config,
        run_meta(config, problem, executor.describe()),
    )
    recorder = make_recorder(config, writer, steady)
    started = time.perf_counter()
    try:
        build_engine(config, problem, executor, island_state(config, problem, count), recorder).run()
    finally:
        recorder.close()
    steady.whole = (time.perf_counter() - started, config.max_evals)  # actors' start and compilation included
    return steady


def waiting_cpu(executor, seconds: float = 5.0) -> float:
    """Driver CPU (ms per second) while it waits on the island hosts: one ``collect`` pending on each
    (as during a run) and no batch arriving. Call once the run is over; the hosts are then closed."""
    calls = [host.collect.remote() for host in executor._hosts]
    time.sleep(0.5)  # let the calls reach the hosts
    cpu, wall = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    ms_per_s = 1e3 * (time.process_time() - cpu) / (time.perf_counter() - wall)
    del calls
    return ms_per_s


def ray_options(workers: int, actors: int = 0, batch: int = 16, simulated: bool = False):
    from evo.ray_executor import RayOptions

    if not simulated:
        return RayOptions(None, workers, 2, batch)
    slots = -(-workers // actors)
    return RayOptions(None, actors, 2 * slots, batch, actor_cpus=0.0, concurrency=slots)


def simulated(
    counts: list[int], eval_ms: float, actors: int, evals_per_worker: int, runs_dir: str
) -> list[dict]:
    import ray

    from evo.ray_executor import RayExecutor
    from evo.ray_islands import RayIslands

    rows = []
    base = dict(
        target="exp2",
        search_points=256,
        select_points=1024,
        population_size=50,
        tournament_size=5,
        **QUIET,
        progress_every=500,
        seed=1,
        runs_dir=runs_dir,
    )
    for workers in counts:
        spec = SimulatedSpec(eval_ms, 1)
        evals = 10 * workers * 16  # the central driver saturates early: enough batches to be steady
        config = resolve({**base, "islands": 1, "max_evals": evals, "backend": "ray"})
        problem = build_problem(config)
        executor = RayExecutor(spec, problem.search, ray_options(workers, actors, simulated=True))
        steady = Steady(evals // 4)
        try:
            evolve(config, executor=executor, on_progress=steady)
        finally:
            executor.close()
        rate, cpu = steady.rates()
        rows.append(dict(design="central", workers=workers, evals_per_s=rate, driver_ms=cpu, eval_ms=eval_ms))
        ray.shutdown()
        m = evals_per_worker // 2  # two batches per island: a batch runs to the next migration
        config = resolve(
            {
                **base,
                "islands": workers,
                "migrate_every": m,
                "max_evals": evals_per_worker * workers,
                "backend": "ray",
                "progress_every": 10 * m,
            }
        )
        executor = RayIslands(ray_options(workers, actors, simulated=True), spec=spec)
        try:
            steady = run_islands(config, workers, executor, runs_dir, warm=workers * m)
            waiting = waiting_cpu(executor)
        finally:
            executor.close()
        rate, cpu = steady.rates()
        per_eval = max(0.0, cpu - waiting / rate)  # ms per evaluation once the waiting cost is taken out
        rows.append(
            dict(
                design="islands",
                workers=workers,
                evals_per_s=rate,
                driver_ms=cpu,
                eval_ms=eval_ms,
                waiting_ms_per_s=waiting,
                per_eval_ms=per_eval,
                calls_per_batch=executor.actor_calls / max(1, executor.batches),
            )
        )
        ray.shutdown()
    return rows


def print_simulated(rows: list[dict]) -> None:
    print(f"\nsimulated workers (fake evaluator sleeping {rows[0]['eval_ms']:g} ms per evaluation)")
    print(
        f"{'design':8s} {'workers':>7s} {'evals/s':>9s} {'driver CPU ms/eval':>18s} {'% of eval':>9s}"
        f" {'saturates at':>12s} | {'waiting ms/s':>12s} {'per-eval ms':>11s} {'% at full rate':>14s}"
        f" {'saturates at':>12s}"
    )
    for r in rows:
        eval_ms, share = r["eval_ms"], 100 * r["driver_ms"] / r["eval_ms"]
        line = (
            f"{r['design']:8s} {r['workers']:>7d} {r['evals_per_s']:>9.0f} {r['driver_ms']:>18.4f}"
            f" {share:>8.2f}% {eval_ms / r['driver_ms']:>12.0f} |"
        )
        if "waiting_ms_per_s" in r:
            full_rate = 1e3 * r["workers"] / eval_ms  # evaluations per second of that many real workers
            at_full = r["waiting_ms_per_s"] / full_rate + r["per_eval_ms"]
            saturates = (1 - r["waiting_ms_per_s"] / 1e3) * eval_ms / max(r["per_eval_ms"], 1e-9)
            line += (
                f" {r['waiting_ms_per_s']:>12.2f} {r['per_eval_ms']:>11.5f} {100 * at_full / eval_ms:>13.3f}%"
                f" {saturates:>12.0f}"
            )
        print(line)
    for r in rows:
        if "calls_per_batch" in r:
            print(f"islands, {r['workers']} workers: {r['calls_per_batch']:.3f} driver actor calls per batch")
    print(
        "Left of |: as measured (the rate is bounded by this machine's 2 cores). Right of |: the driver's"
        " CPU split into\nwaiting ms/s (Ray's threads while the driver waits) and per-eval ms (the rest),"
        " projected to the rate the\nworkers would reach with a core each (workers / eval ms); saturates at"
        " = workers at which the driver's CPU\nreaches one core. Goals: islands driver CPU <= 1% of an"
        " evaluation at 256 workers, saturation >= 1000 workers."
    )


# ----------------------------------------------------------------------------- real runs
def islands_real(evals: int, runs_dir: str, repeats: int) -> list[dict]:
    import ray

    from evo.ray_islands import RayIslands

    rows = []
    for repeat in range(repeats):
        for count in (1, 2):
            config = resolve(
                dict(
                    target="exp2",
                    max_ops=6,
                    **QUIET,
                    progress_every=250,
                    seed=5 + repeat,
                    runs_dir=runs_dir,
                    islands=count,
                    migrate_every=500,
                    max_evals=evals * count,
                    backend="ray",
                    workers=count,
                )
            )
            executor = RayIslands(ray_options(count))
            try:
                steady = run_islands(config, count, executor, runs_dir, warm=evals * count // 5)
            finally:
                executor.close()
            ray.shutdown()
            rate, cpu = steady.rates()
            wall, total = steady.whole
            rows.append(
                dict(
                    repeat=repeat,
                    islands=count,
                    evals_per_s=rate,
                    with_start=total / wall,
                    driver_ms=cpu,
                    load=os.getloadavg()[0],
                )
            )
    return rows


def print_islands_real(rows: list[dict]) -> None:
    print("\nreal islands on Ray (exp2, each island a whole search in its own actor, one CPU each)")
    print(
        f"{'run':>3s} {'islands':>7s} {'evals/s':>9s} {'vs 1 island':>11s} {'with start':>10s}"
        f" {'vs 1 island':>11s} {'driver CPU ms/eval':>18s} {'load':>5s}"
    )
    ratios, whole = [], []
    for r in rows:
        one = next(x for x in rows if x["repeat"] == r["repeat"] and x["islands"] == 1)
        ratio, ratio_whole = r["evals_per_s"] / one["evals_per_s"], r["with_start"] / one["with_start"]
        if r["islands"] == 2:
            ratios.append(ratio)
            whole.append(ratio_whole)
        print(
            f"{r['repeat']:>3d} {r['islands']:>7d} {r['evals_per_s']:>9.0f} {ratio:>10.2f}x"
            f" {r['with_start']:>10.0f} {ratio_whole:>10.2f}x {r['driver_ms']:>18.4f} {r['load']:>5.1f}"
        )
    print(
        f"2 islands / 1: min {min(ratios):.2f}x, median {statistics.median(ratios):.2f}x steady"
        f" (with start: min {min(whole):.2f}x, median {statistics.median(whole):.2f}x)."
        "\nevals/s is the steady rate (after 20% of the evaluations: Ray's and the actors' start and"
        " numba's compilation\nexcluded); with start is the whole run's. load: the 1-minute load"
        " average after the run. Goal: 2 islands >= 1.9x one island in every run."
    )


# ----------------------------------------------------------------------------- real runs, same work
WARM_EVALS = 300  # evaluations a throwaway island runs on each worker before timing (numba kernels load)
WARM_ISLAND = 10**6  # its index: no island of the run has it


@dataclass(frozen=True, slots=True)
class IslandWork:
    """What one island did: its evaluations and the state they led to (equal values: the same work)."""

    island: int
    n_evals: int
    best_err: float
    state: str  # digest of the island's final state (population, front, RNG, counts)

    @staticmethod
    def of(index: int, state: SearchState) -> IslandWork:
        digest = hashlib.sha256(state_text(state).encode()).hexdigest()[:12]
        best = math.inf if state.best is None else state.best.score.max_err
        return IslandWork(index, state.n_evals, best, digest)


def mismatches(parallel: tuple[IslandWork, ...], serial: tuple[IslandWork, ...]) -> list[str]:
    """How the work of two runs differs, island by island (empty: the same evaluations led to the
    same states, so the two rates are rates of the same work)."""
    if len(parallel) != len(serial):
        return [f"{len(parallel)} islands against {len(serial)}"]
    out = []
    for a, b in zip(parallel, serial, strict=True):
        for name in ("island", "n_evals", "best_err", "state"):
            if getattr(a, name) != getattr(b, name):
                out.append(f"island {a.island}: {name} {getattr(a, name)} against {getattr(b, name)}")
    return out


def rate_ratio(evals_a: int, wall_a: float, evals_b: int, wall_b: float) -> float:
    """(evaluations per second of a) / (evaluations per second of b)."""
    return (evals_a / wall_a) / (evals_b / wall_b)


def at_full_cores(ratio: float, share_parallel: float, share_serial: float) -> float:
    """The ratio had every worker had its core: each rate scaled by the share of a core its workers
    got (a reading of a shared machine, not a measurement: it assumes a rate in proportion to the
    CPU a worker gets, and it leaves out the driver's and Ray's own CPU)."""
    return ratio * share_serial / share_parallel


def median_and_worst(ratios: list[float]) -> tuple[float, float]:
    return statistics.median(ratios), min(ratios)


def cpu_ticks() -> tuple[int, int] | None:
    """(busy, all) CPU ticks of the whole machine since boot, every process counted (None off Linux)."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(field) for field in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)  # idle and iowait are not busy


def busy_cores(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float:
    """Cores the whole machine kept busy on average between two ``cpu_ticks`` (nan if unknown)."""
    if before is None or after is None or after[1] == before[1]:
        return math.nan
    return (os.cpu_count() or 1) * (after[0] - before[0]) / (after[1] - before[1])


def process_cpu(pid: int) -> float:
    """CPU seconds a process (all its threads) has used (nan if unknown)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()  # after the command name, from the state
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    except (OSError, ValueError, IndexError):
        return math.nan


def wait_for_quiet(max_seconds: float, cores: float = 0.5, sample: float = 2.0) -> tuple[float, float]:
    """Wait (at most ``max_seconds``) until the machine keeps fewer than ``cores`` cores busy over
    ``sample`` seconds; returns the seconds waited and the last busy cores seen."""
    started = time.perf_counter()
    while True:
        before = cpu_ticks()
        time.sleep(sample)
        busy = busy_cores(before, cpu_ticks())
        waited = time.perf_counter() - started
        if not busy >= cores or waited >= max_seconds:  # nan (unknown) does not wait
            return waited, busy


class _FactoryProbe:
    """An island pool that only keeps the factory the run would hand its workers (so the serial
    replay builds its islands exactly as the run does)."""

    local = False
    snapshot_every = 0

    def start(self, factory, records):
        self.factory = factory
        return records


def island_factory(config, problem):
    probe = _FactoryProbe()
    build_engine(
        config, problem, probe, island_state(config, problem, config.islands), make_recorder(config, None)
    )
    return probe.factory


def run_alone(factory, starts: tuple[str, ...], counts: tuple[int, ...], batch: int, warm: int):
    """Each island from its start state for its count of evaluations, in this process, round-robin
    in batches of ``batch`` (as one worker hosting them all runs them). Returns the wall time of the
    evaluations (after ``warm`` evaluations of a throwaway island, untimed), the machine's busy cores
    meanwhile, the share of a core this process got and each island's work."""
    if warm:
        factory.build(WARM_ISLAND, json.loads(starts[0])).run(Request(WARM_ISLAND, warm))
    islands = [factory.build(index, json.loads(text)) for index, text in enumerate(starts)]
    left = list(counts)
    ticks, cpu, started = cpu_ticks(), time.process_time(), time.perf_counter()
    while any(left):
        for index, island in enumerate(islands):
            count = min(batch, left[index])
            if count:
                island.run(Request(index, count))
                left[index] -= count
    wall, busy = time.perf_counter() - started, busy_cores(ticks, cpu_ticks())
    share = (time.process_time() - cpu) / wall
    works = tuple(IslandWork.of(index, island.state) for index, island in enumerate(islands))
    return wall, busy, share, works


def island_states(engine, capacity: int) -> list[SearchState]:
    """Every island's state at the end of a run (live in this process, or JSON text from a worker)."""
    out = []
    for record in engine.state.islands:
        snap = record.snapshot
        out.append(
            snap if isinstance(snap, SearchState) else SearchState.from_dict(json.loads(snap), capacity)
        )
    return out


def run_paired(config, executor, runs_dir: str, warm: int) -> dict:
    """An island run timed from its first request to its end (workers built and warmed before)."""
    problem = build_problem(config)
    state = island_state(config, problem, config.islands)
    starts = tuple(state_text(record.snapshot) for record in state.islands)
    steady = Steady(config.max_evals // 5)
    writer = RunWriter.create(
        new_run_dir(runs_dir, problem.target.name, config.seed),
        config,
        run_meta(config, problem, executor.describe()),
    )
    recorder = make_recorder(config, writer, steady)
    try:
        engine = build_engine(config, problem, executor, state, recorder)  # starts and fills the workers
        if warm and not getattr(executor, "local", True):
            executor.warm_up(starts[0], warm, WARM_ISLAND)  # numba's kernels load in each worker
        pids = [] if getattr(executor, "local", True) else executor.host_pids()
        cpu = [process_cpu(pid) for pid in pids]
        ticks, started = cpu_ticks(), time.perf_counter()
        engine.run()
        wall, busy = time.perf_counter() - started, busy_cores(ticks, cpu_ticks())
        used = [process_cpu(pid) - before for pid, before in zip(pids, cpu, strict=True)]
    finally:
        recorder.close()
    share = statistics.mean(used) / wall if used else math.nan  # of a core, per worker
    works = tuple(IslandWork.of(i, s) for i, s in enumerate(island_states(engine, config.population_size)))
    return dict(wall=wall, busy=busy, share=share, works=works, starts=starts, steady=steady.rates()[0])


def on_one_worker(factory, starts, counts, batch: int, warm: int):
    """``run_alone`` as one Ray task with one CPU (a worker like each island's in the parallel run)."""
    from evo.ray_executor import RayOptions, start_ray

    ray, started = start_ray(RayOptions())
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(run_alone)
        return ray.get(task.remote(factory, tuple(starts), tuple(counts), batch, warm))
    finally:
        if started:
            ray.shutdown()


def paired_config(evals: int, seed: int, runs_dir: str, batch: int, backend: str = "ray"):
    """Two islands of ``evals`` evaluations each that never migrate (``migrants`` 0): each island's
    trajectory is then a function of its own start state and count only."""
    return resolve(
        dict(
            target="exp2",
            max_ops=6,
            **QUIET,
            progress_every=250,
            seed=seed,
            runs_dir=runs_dir,
            islands=2,
            migrants=0,
            migrate_every=batch,
            max_evals=2 * evals,
            backend=backend,
            workers=2 if backend == "ray" else None,
        )
    )


def islands_same_work(
    evals: int, runs_dir: str, repeats: int, batch: int, seed: int, quiet_wait: float
) -> Iterator[dict]:
    """One row per repeat, as each is done (a long series keeps what it measured if a run fails)."""
    import ray

    from evo.ray_islands import RayIslands

    for repeat in range(repeats):
        config = paired_config(evals, seed + repeat, runs_dir, batch)
        factory = island_factory(config, build_problem(config))
        waited, _ = wait_for_quiet(quiet_wait)
        load_start = os.getloadavg()[0]
        executor = RayIslands(ray_options(2))
        try:
            parallel = run_paired(config, executor, runs_dir, WARM_EVALS)
        finally:
            executor.close()
        ray.shutdown()
        counts = tuple(work.n_evals for work in parallel["works"])
        wall, busy, share, works = on_one_worker(factory, parallel["starts"], counts, batch, WARM_EVALS)
        total = sum(counts)
        yield (
            dict(
                repeat=repeat,
                seed=config.seed,
                parallel=total / parallel["wall"],
                parallel_wall=parallel["wall"],
                steady=parallel["steady"],
                serial=total / wall,
                serial_wall=wall,
                ratio=rate_ratio(total, parallel["wall"], total, wall),
                works=parallel["works"],
                serial_works=works,
                mismatches=mismatches(parallel["works"], works),
                load=(load_start, os.getloadavg()[0]),
                busy=(parallel["busy"], busy),
                share=(parallel["share"], share),
                waited=waited,
            )
        )


def print_same_work(rows: Iterable[dict], evals: int, batch: int) -> None:
    print(
        f"\n2 islands on 2 workers against the same islands on 1 worker (exp2, {evals} evaluations per"
        f" island in all, batches of {batch}, no migration)"
    )
    print(
        f"{'run':>3s} {'seed':>4s} {'2 workers evals/s':>17s} {'wall s':>7s} {'1 worker evals/s':>16s}"
        f" {'wall s':>7s} {'ratio':>6s} {'steady':>7s} {'same work':>9s} {'busy cores 2w/1w':>16s}"
        f" {'core share 2w/1w':>16s} {'at full cores':>13s} {'load start/end':>14s} {'waited s':>8s}"
    )
    done = []
    for r in rows:
        done.append(r)
        split = "/".join(str(w.n_evals) for w in r["works"])
        print(
            f"{r['repeat']:>3d} {r['seed']:>4d} {r['parallel']:>17.0f} {r['parallel_wall']:>7.2f}"
            f" {r['serial']:>16.0f} {r['serial_wall']:>7.2f} {r['ratio']:>5.2f}x {r['steady']:>7.0f}"
            f" {'yes' if not r['mismatches'] else 'NO':>9s} {r['busy'][0]:>8.2f}/{r['busy'][1]:<7.2f}"
            f" {r['share'][0]:>8.2f}/{r['share'][1]:<7.2f} {at_full_cores(r['ratio'], *r['share']):>12.2f}x"
            f" {r['load'][0]:>6.1f}/{r['load'][1]:<7.1f}"
            f" {r['waited']:>8.0f}"
        )
        for w in r["works"]:
            print(
                f"      island {w.island}: {w.n_evals} evaluations (split {split}),"
                f" best {w.best_err:.4g} ULP, state {w.state}"
            )
        for line in r["mismatches"]:
            print(f"      MISMATCH {line}")
        sys.stdout.flush()
    rows = done
    median, worst = median_and_worst([r["ratio"] for r in rows])
    matched = sum(not r["mismatches"] for r in rows)
    print(
        f"ratio over {len(rows)} runs: median {median:.2f}x, worst {worst:.2f}x; same work in {matched} of"
        f" {len(rows)}.\nratio = (evaluations / wall with 2 workers) / (the same evaluations / wall on 1"
        " worker); steady: the 2-worker run's\nrate after 20% of its evaluations (as the unpaired"
        " table measures it); busy cores: the whole machine's, every process\ncounted, during each"
        " timed part (about 2 and 1 on an idle machine; more on the 1-worker side: others were\nbusy);"
        " core share: CPU seconds per wall second of each worker process (near 1 when each had its\ncore;"
        " lower: the machine was shared and the ratio measures the sharing, not the islands); at full"
        "\ncores: the ratio with each rate scaled to a whole core per worker (a reading, not a"
        " measurement: it\nleaves out the driver's and Ray's CPU); load: 1-minute load average before"
        " the 2-worker run and after\nthe 1-worker one; waited: for an idle machine before the run."
        " Goal: ratio >= 1.9x in every run."
    )


def central(evals: int, workers: list[int], seed: int, runs_dir: str) -> list[dict]:
    rows = []
    for sync in (0, 64):
        rows.append(measure_central("serial", None, evals, seed, runs_dir, sync))
        for n in workers:
            rows.append(measure_central("ray", n, evals, seed, runs_dir, sync))
    return rows


def measure_central(
    backend: str, workers: int | None, evals: int, seed: int, runs_dir: str, sync_batch: int
) -> dict:
    started = time.perf_counter()
    cpu_started = time.process_time()
    result = evolve(
        target="exp2",
        max_ops=6,
        max_evals=evals,
        seed=seed,
        runs_dir=runs_dir,
        **QUIET,
        progress_every=500,
        backend=backend,
        workers=workers,
        sync_batch=sync_batch,
        islands=1,
    )
    wall = time.perf_counter() - started
    driver_cpu_ms = 1e3 * (time.process_time() - cpu_started) / evals
    progress = list(RunReader(result.run_dir).events("progress"))
    warm = [e for e in progress if e["n_evals"] >= evals // 5]
    rate = (warm[-1]["n_evals"] - warm[0]["n_evals"]) / (warm[-1]["t"] - warm[0]["t"])
    return {
        "backend": backend if not sync_batch else f"{backend} sync{sync_batch}",
        "workers": workers or 1,
        "evals_per_s": rate,
        "driver_ms_per_eval": statistics.median(e["driver_ms"] for e in warm[1:]),
        "driver_cpu_ms_per_eval": driver_cpu_ms,
        "worker_ms_per_eval": statistics.median(e["eval_ms"] for e in warm[1:] if e["eval_ms"] is not None),
        "wall_s": wall,
    }


def print_central(rows: list[dict]) -> None:
    for sync in (0, 64):
        label = "serial" if not sync else f"serial sync{sync}"
        group = [r for r in rows if r["backend"] in (label, "ray" if not sync else f"ray sync{sync}")]
        serial = group[0]["evals_per_s"]
        one = next(
            (r["evals_per_s"] for r in group if r["backend"].startswith("ray") and r["workers"] == 1), None
        )
        print(
            f"\n{'central':13s} {'workers':>7s} {'evals/s':>9s} {'vs serial':>9s} {'vs 1 worker':>11s} "
            f"{'loop ms/eval':>12s} {'driver CPU ms/eval':>18s} {'worker ms/eval':>14s}"
            f" {'workers/driver':>14s}"
        )
        for r in group:
            is_ray = r["backend"].startswith("ray")
            vs_one = f"{r['evals_per_s'] / one:.2f}x" if one and is_ray else "-"
            per_driver = r["worker_ms_per_eval"] / r["driver_cpu_ms_per_eval"] if is_ray else float("nan")
            print(
                f"{r['backend']:13s} {r['workers']:>7d} {r['evals_per_s']:>9.0f}"
                f" {r['evals_per_s'] / serial:>8.2f}x "
                f"{vs_one:>11s} {r['driver_ms_per_eval']:>12.3f} {r['driver_cpu_ms_per_eval']:>18.3f} "
                f"{r['worker_ms_per_eval']:>14.3f} {per_driver:>14.1f}"
            )


# ----------------------------------------------------------------------------- quality
def quality(
    evals: int, seeds: int, islands: int, runs_dir: str, members: int, targets: list[str], migrate_every: int
) -> list[dict]:
    """Best select-set error at equal evaluations and equal members in all (``members`` in one
    population, or ``members / islands`` on each island, migrating every ``migrate_every``
    evaluations per island; 0: six migrations per run)."""
    rows = []
    every = migrate_every or max(1, evals // islands // 6)
    for target in targets:
        for design, extra in (
            ("one population", dict(islands=1, population_size=members)),
            (
                f"{islands} islands",
                dict(islands=islands, population_size=members // islands, migrate_every=every),
            ),
        ):
            errors = []
            for seed in range(1, seeds + 1):
                result = evolve(
                    target=target,
                    max_evals=evals,
                    seed=seed,
                    runs_dir=runs_dir,
                    **QUIET,
                    progress_every=1000,
                    **extra,
                )
                errors.append(result.best.select.max_err)
            rows.append(dict(target=target, design=design, errors=errors, median=statistics.median(errors)))
    return rows


def print_quality(rows: list[dict], evals: int, members: int) -> None:
    print(
        f"\nquality at equal evaluations ({evals} per run, serial, {members} members in all;"
        " best program's select-set ULP)"
    )
    print(f"{'target':6s} {'design':15s} {'median':>10s}  per seed")
    for r in rows:
        print(
            f"{r['target']:6s} {r['design']:15s} {r['median']:>10.4g}  "
            + " ".join(f"{e:.4g}" for e in r["errors"])
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mode",
        choices=("all", "central", "islands", "islands-unpaired", "simulated", "quality"),
        default="all",
    )
    parser.add_argument("--evals", type=int, default=12000, help="evaluations per central row / per island")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--simulated", type=int, nargs="+", default=[64, 256], help="simulated worker counts")
    parser.add_argument("--actors", type=int, default=8, help="actors hosting the simulated workers")
    parser.add_argument("--eval-ms", type=float, default=1.0, help="simulated cost of one evaluation")
    parser.add_argument(
        "--sim-evals", type=int, default=2000, help="simulated evaluations per island (2 migrations)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=250, help="islands: evaluations per request")
    parser.add_argument(
        "--quiet-wait", type=float, default=60.0, help="islands: seconds to wait for an idle machine per run"
    )
    parser.add_argument("--quality-evals", type=int, default=3000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--islands", type=int, default=4, help="islands in the quality comparison")
    parser.add_argument("--members", type=int, default=100, help="members in all in the quality comparison")
    parser.add_argument("--targets", nargs="+", default=["exp2", "erf"], help="quality comparison targets")
    parser.add_argument(
        "--migrate-every", type=int, default=0, help="quality: evaluations per island between migrations"
    )
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs,"
        f" load {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as runs_dir:
        if args.mode in ("all", "simulated"):
            print_simulated(simulated(args.simulated, args.eval_ms, args.actors, args.sim_evals, runs_dir))
        if args.mode in ("all", "islands"):
            rows = islands_same_work(
                args.evals, runs_dir, args.repeats, args.batch, args.seed, args.quiet_wait
            )
            print_same_work(rows, args.evals, args.batch)
        if args.mode == "islands-unpaired":
            print_islands_real(islands_real(args.evals, runs_dir, args.repeats))
        if args.mode in ("all", "central"):
            print_central(central(args.evals, args.workers, args.seed, runs_dir))
        if args.mode in ("all", "quality"):
            rows = quality(
                args.quality_evals,
                args.seeds,
                args.islands,
                runs_dir,
                args.members,
                args.targets,
                args.migrate_every,
            )
            print_quality(rows, args.quality_evals, args.members)
    print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
