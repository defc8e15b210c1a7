"""The Ray backend: real workers, the same results as serial in synchronous mode, survival of a killed
worker, and joining an existing cluster by address. Marked ``ray`` (each test starts Ray)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys

import pytest

from evo.api import evolve
from evo.config import resolve
from evo.errors import UsageError
from evo.runlog import RunReader, strip_nondeterministic

SMALL = {
    "target": "exp2",
    "max_ops": 6,
    "population_size": 30,
    "tournament_size": 5,
    "search_points": 512,
    "select_points": 2048,
    "signoff": "none",
    "mine_every": 0,
}


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("EVO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "refs"))


def _events(run_dir) -> list[dict]:
    return [
        strip_nondeterministic(e) for e in RunReader(run_dir).events() if e["kind"] not in ("start", "end")
    ]


def test_without_ray_the_backend_is_refused_with_install_advice(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(UsageError, match=r"pip install -e '\.\[ray\]'"):
        evolve(**SMALL, max_evals=50, seed=1, runs_dir=str(tmp_path), backend="ray")


@pytest.mark.ray
def test_synchronous_batches_on_ray_equal_serial_ones(tmp_path):
    """Same seed, same batches: two Ray workers must file exactly what one process files."""
    common = {**SMALL, "max_evals": 600, "seed": 4, "runs_dir": str(tmp_path), "sync_batch": 32}
    serial = evolve(**common)
    ray_run = evolve(**common, backend="ray", workers=2)
    assert _events(serial.run_dir) == _events(ray_run.run_dir)
    assert serial.best.select.max_err == ray_run.best.select.max_err


@pytest.mark.ray
def test_async_ray_run_reaches_serial_quality(tmp_path):
    budget = {**SMALL, "max_evals": 4000, "seed": 2, "runs_dir": str(tmp_path)}
    serial = evolve(**budget)
    ray_run = evolve(**budget, backend="ray", workers=2)
    assert ray_run.n_evals == 4000
    assert RunReader(ray_run.run_dir).meta["executor"] == {"backend": "ray", "workers": 2}
    # asynchronous parents are a little stale, so allow slack, but it must be a real search
    assert ray_run.best.select.max_err <= 10 * serial.best.select.max_err
    assert ray_run.best.select.max_err < 1e4


@pytest.mark.ray
def test_a_killed_worker_is_replaced_and_nothing_is_lost(tmp_path):
    from evo.assemble import make_executor
    from evo.problem import build_problem

    config = resolve(
        {
            **SMALL,
            "max_evals": 3000,
            "seed": 3,
            "runs_dir": str(tmp_path),
            "backend": "ray",
            "workers": 2,
            "islands": 1,
        }
    )  # one population: jobs on workers
    executor = make_executor(config, build_problem(config))
    killed: list[int] = []

    def kill_once(snapshot: dict) -> None:
        if not killed and snapshot["n_evals"] >= 800:
            pid = executor.worker_pids()[0]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    try:
        result = evolve(config, executor=executor, on_progress=kill_once)
    finally:
        executor.close()
    assert killed, "the worker was never killed"
    assert result.n_evals == 3000 and result.reason == "max_evals"
    kinds = [e["kind"] for e in RunReader(result.run_dir).events()]
    assert "worker_lost" in kinds
    assert "job_dropped" not in kinds
    filed = [e["n_evals"] for e in RunReader(result.run_dir).events("progress")]
    assert filed == sorted(filed) and filed[-1] == 3000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.ray
def test_joining_a_running_cluster_by_address(tmp_path):
    ray_cli = shutil.which("ray")
    assert ray_cli, "the ray command line comes with the ray extra"
    port = _free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run(
        [
            ray_cli,
            "start",
            "--head",
            "--node-ip-address=127.0.0.1",
            f"--port={port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
        ],
        check=True,
        capture_output=True,
        env=env,
        timeout=120,
    )
    try:
        result = evolve(
            **SMALL,
            max_evals=500,
            seed=5,
            runs_dir=str(tmp_path),
            backend="ray",
            ray_address=f"127.0.0.1:{port}",
            workers=2,
        )
        assert result.n_evals == 500
        assert result.best is not None
    finally:
        subprocess.run([ray_cli, "stop", "--force"], capture_output=True, env=env, timeout=120)
