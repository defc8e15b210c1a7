"""A run's problem (target and datasets), built from a RunConfig, and the metadata recorded with it."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evo.config import RunConfig
from evo.errors import UsageError
from evo.loading import resolve_target
from targets.dataset import Dataset, Sweep, build_dataset
from targets.target import Target


@dataclass(frozen=True, slots=True)
class Problem:
    """The target and its datasets (the final set is built on first use: it can be large)."""

    target: Target
    search: Dataset
    select: Dataset
    final: Callable[[], Dataset | Sweep]


def build_problem(config: RunConfig, cache_dir: Path | None = None) -> Problem:
    """The target named by the config and its search and select sets (references cached on disk)."""
    target = resolve_target(config.target, config.expr, config.domain, config.name)
    dtype = config.dtype
    search = build_dataset(target, "search", dtype, config.data_seed, config.search_points, cache_dir)
    select = build_dataset(target, "select", dtype, config.data_seed, config.select_points, cache_dir)
    assert isinstance(search, Dataset) and isinstance(select, Dataset)
    if search.size < 2:
        raise UsageError(f"the domain of {target.name} has too few points to search on")

    def final():
        return build_dataset(target, "final", dtype, config.data_seed, None, cache_dir)

    return Problem(target, search, select, final)


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # not installed, or no metadata
        return None


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def run_meta(config: RunConfig, problem: Problem, executor_info: dict[str, Any]) -> dict[str, Any]:
    """What meta.json records: versions, host and the exact datasets."""
    return {
        "evo_version": _version("evo"),
        "git_commit": _git_commit(),
        "python": sys.version.split()[0],
        "versions": {m: _version(m) for m in ("numpy", "numba", "llvmlite", "mpmath", "sympy", "ray")},
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "executor": executor_info,
        "cost": {"model": config.cost, "table": None if config.cost_table is None else config.cost_table.to_dict()},
        "target": {
            "name": problem.target.name,
            "expr": problem.target.expr,
            "domain": problem.target.domain_text(config.dtype),
            "anchor": problem.target.anchor,
        },
        "datasets": {
            d.kind: {"size": d.size, "digest": d.digest, "label": d.label, "metric": d.metric}
            for d in (problem.search, problem.select)
        },
    }
