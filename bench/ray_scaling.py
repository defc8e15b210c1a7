"""Throughput of the search: serial vs Ray with 1 and 2 workers, and the driver's cost per evaluation.

For each backend a fixed-budget exp2 search runs (no sign-off, no mining, no restarts, so only the
evolution loop is measured) and its steady-state rate is taken from the progress events after a
warm-up. Two modes: asynchronous (the default search: results filed as they finish) and synchronous
batches of 64 (``sync_batch``), where every backend evaluates exactly the same children, so the
rates compare identical work. The driver's CPU per evaluation against the workers' cost per
evaluation tells how many workers one driver can keep busy.

    python bench/ray_scaling.py [--evals 16000] [--workers 1 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time

from evo.api import evolve
from evo.runlog import RunReader


def measure(backend: str, workers: int | None, evals: int, seed: int, runs_dir: str, sync_batch: int = 0) -> dict:
    started = time.perf_counter()
    cpu_started = time.process_time()
    result = evolve(
        target="exp2", max_ops=6, max_evals=evals, seed=seed, runs_dir=runs_dir, signoff="none",
        mine_every=0, restart_after=0, progress_every=500, checkpoint_every=10**9,
        backend=backend, workers=workers, sync_batch=sync_batch,
    )
    wall = time.perf_counter() - started
    driver_cpu_ms = 1e3 * (time.process_time() - cpu_started) / evals
    progress = list(RunReader(result.run_dir).events("progress"))
    warm = [e for e in progress if e["n_evals"] >= evals // 5]
    rate = (warm[-1]["n_evals"] - warm[0]["n_evals"]) / (warm[-1]["t"] - warm[0]["t"])
    driver_ms = statistics.median(e["driver_ms"] for e in warm[1:])
    eval_ms = statistics.median(e["eval_ms"] for e in warm[1:] if e["eval_ms"] is not None)
    return {
        "backend": backend if not sync_batch else f"{backend} sync{sync_batch}",
        "workers": workers or 1,
        "evals_per_s": rate,
        "driver_ms_per_eval": driver_ms,
        "driver_cpu_ms_per_eval": driver_cpu_ms,
        "worker_ms_per_eval": eval_ms,
        "wall_s": wall,
        "best_select": None if result.best is None else result.best.select.max_err,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evals", type=int, default=12000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as runs_dir:
        for sync in (0, 64):
            rows.append(measure("serial", None, args.evals, args.seed, runs_dir, sync))
            for n in args.workers:
                rows.append(measure("ray", n, args.evals, args.seed, runs_dir, sync))
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; {args.evals} evaluations per row")
    for sync in (0, 64):
        label = "serial" if not sync else f"serial sync{sync}"
        group = [r for r in rows if r["backend"] in (label, "ray" if not sync else f"ray sync{sync}")]
        print_table(group)
    print("loop ms/eval: the engine's own tournament + filing time; driver CPU ms/eval: all CPU the driver "
          "process used (Ray calls and (de)serialisation included).\nworkers/driver = worker ms per "
          "evaluation / driver CPU ms per evaluation: how many busy workers one driver keeps fed before it "
          "becomes the bottleneck. Goal: 2 workers >= 1.8x one.")


def print_table(rows: list[dict]) -> None:
    serial = rows[0]["evals_per_s"]
    one = next((r["evals_per_s"] for r in rows if r["backend"].startswith("ray") and r["workers"] == 1), None)
    print()
    print(f"{'backend':13s} {'workers':>7s} {'evals/s':>9s} {'vs serial':>9s} {'vs 1 worker':>11s} "
          f"{'loop ms/eval':>12s} {'driver CPU ms/eval':>18s} {'worker ms/eval':>14s} {'workers/driver':>14s}")
    for r in rows:
        is_ray = r["backend"].startswith("ray")
        vs_one = f"{r['evals_per_s'] / one:.2f}x" if one and is_ray else "-"
        per_driver = r["worker_ms_per_eval"] / r["driver_cpu_ms_per_eval"] if is_ray else float("nan")
        print(f"{r['backend']:13s} {r['workers']:>7d} {r['evals_per_s']:>9.0f} {r['evals_per_s'] / serial:>8.2f}x "
              f"{vs_one:>11s} {r['driver_ms_per_eval']:>12.3f} {r['driver_cpu_ms_per_eval']:>18.3f} "
              f"{r['worker_ms_per_eval']:>14.3f} {per_driver:>14.1f}")


if __name__ == "__main__":
    main()
