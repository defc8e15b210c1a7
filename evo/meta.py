"""What meta.json records about a run: evo's version and git commit, library versions, the host,
the executor, the cost table, the target and the exact search and select sets."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from evo.config import RunConfig
from evo.problem import Problem


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # not installed, or no metadata
        return None


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
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
        "cost": {
            "model": config.cost,
            "table": None if config.cost_table is None else config.cost_table.to_dict(),
        },
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
