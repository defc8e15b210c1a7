"""The island scaling benchmark's same-work comparison: its helpers, and the premise it rests on."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

from evo.assemble import make_executor
from evo.problem import build_problem


@pytest.fixture(scope="module")
def bench():
    path = Path(__file__).resolve().parents[1] / "bench" / "ray_scaling.py"
    spec = importlib.util.spec_from_file_location("bench_ray_scaling", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_rate_ratio_compares_rates_not_walls(bench):
    assert bench.rate_ratio(6000, 3.0, 6000, 6.0) == pytest.approx(2.0)
    assert bench.rate_ratio(6000, 3.0, 3000, 6.0) == pytest.approx(4.0)
    assert bench.median_and_worst([1.95, 1.8, 2.1]) == (1.95, 1.8)
    assert bench.at_full_cores(1.2, 0.5, 0.8) == pytest.approx(1.92)  # 2 workers got half a core each


def test_busy_cores_of_the_whole_machine(bench):
    cores = bench.os.cpu_count()
    assert bench.busy_cores((100, 1000), (150, 1100)) == pytest.approx(0.5 * cores)
    assert math.isnan(bench.busy_cores(None, (1, 2)))
    assert math.isnan(bench.busy_cores((1, 2), (1, 2)))


def test_process_cpu_counts_this_process_and_not_a_missing_one(bench):
    before = bench.process_cpu(bench.os.getpid())
    sum(i * i for i in range(3_000_000))  # spend some CPU
    assert bench.process_cpu(bench.os.getpid()) > before
    assert math.isnan(bench.process_cpu(-1))


def test_mismatches_name_every_difference(bench):
    work = bench.IslandWork
    a = (work(0, 3000, 0.5, "aa"), work(1, 3000, 0.7, "bb"))
    assert bench.mismatches(a, a) == []
    b = (work(0, 3000, 0.5, "aa"), work(1, 2750, 0.7, "cc"))
    assert bench.mismatches(a, b) == ["island 1: n_evals 3000 against 2750", "island 1: state bb against cc"]
    assert bench.mismatches(a, a[:1]) == ["2 islands against 1"]
    assert bench.mismatches((work(0, 1, math.inf, "x"),), (work(0, 1, 0.25, "x"),)) != []


def run_pair(bench, tmp_path, migrants: int):
    """A serial 2-island run, then each island alone from its start state for the count it ran."""
    config = bench.paired_config(120, 3, str(tmp_path), 40, backend="serial")
    config = config.replace(population_size=30, migrants=migrants)
    problem = build_problem(config)
    parallel = bench.run_paired(config, make_executor(config, problem), str(tmp_path), 0)
    counts = tuple(w.n_evals for w in parallel["works"])
    *_, alone = bench.run_alone(bench.island_factory(config, problem), parallel["starts"], counts, 25, 0)
    return parallel["works"], alone


def test_islands_that_never_migrate_do_the_work_they_do_alone(bench, tmp_path):
    together, alone = run_pair(bench, tmp_path, migrants=0)
    assert [w.n_evals for w in together] == [120, 120]
    assert bench.mismatches(together, alone) == []


def test_migration_changes_the_work(bench, tmp_path):
    together, alone = run_pair(bench, tmp_path, migrants=2)
    assert bench.mismatches(together, alone) != []
