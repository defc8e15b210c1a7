"""The composition root: workers are built from a frozen, picklable spec (never the config), and
the infrastructure modules do not import the API."""

from __future__ import annotations

import ast
import dataclasses
import pickle
from pathlib import Path

import pytest

from evo.assemble import evaluator_spec, make_executor, population_seeds
from evo.config import resolve
from evo.evaluate import Job
from evo.executors import EvaluatorSpec, SerialExecutor
from evo.problem import build_problem
from primitives.program import Program

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(
    target="exp2",
    domain="1,1.001",
    population_size=20,
    tournament_size=4,
    search_points=512,
    select_points=2048,
    data_seed=0,
    seed=3,
    max_evals=10,
)


def test_the_evaluator_spec_is_frozen_and_picklable_and_builds_the_same_evaluator():
    config = resolve(SMALL)
    spec = evaluator_spec(config)
    assert isinstance(spec, EvaluatorSpec)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.seed = 4  # type: ignore[misc]
    copy = pickle.loads(pickle.dumps(spec))
    assert copy == spec
    problem = build_problem(config)
    executor = make_executor(config, problem)
    assert isinstance(executor, SerialExecutor)
    job = Job(7, Program.identity(), mutate=True)
    a, b = spec.build(problem.search).run(job), copy.build(problem.search, worker=1).run(job)
    assert (a.program, a.score, a.mutation) == (b.program, b.score, b.mutation)


def test_population_seeds_fill_the_population():
    config = resolve({**SMALL, "seed_from": "identity"})
    seeds = population_seeds(config, build_problem(config))
    assert len(seeds) == config.population_size and all(s == Program.identity() for s in seeds)


@pytest.mark.parametrize("module", ["ray_executor", "executors", "engine", "search", "policies", "recorder"])
def test_infrastructure_does_not_import_the_api(module):
    tree = ast.parse((ROOT / "evo" / f"{module}.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not imported & {"evo.api", "evo.assemble", "evo.cli"}, module
    assert "hasattr" not in (ROOT / "evo" / f"{module}.py").read_text()


def test_the_search_is_pure():
    """No file I/O and no clock in the search: it imports nothing that does either."""
    source = (ROOT / "evo" / "search.py").read_text()
    tree = ast.parse(source)
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not imported & {"time", "os", "pathlib", "evo.runlog", "evo.recorder", "targets.reference"}
    assert "open(" not in source and len(source.splitlines()) <= 150
