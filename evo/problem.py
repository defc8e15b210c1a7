"""A run's problem (target and datasets), built from a RunConfig."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
