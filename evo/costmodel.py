"""The run's cost model: built once from the config, with the host's cycle table measured once and cached.

``--cost ops`` is the weighted op count; ``latency`` and ``throughput`` are cycles on this host
(``primitives.cycles``), from a table measured at first use by ``codegen.cycletable`` and cached on
disk per CPU name, CPU features and llvmlite version. The table a run uses is written into its
config (``cost_table``, hence config.json) and meta.json, and a resumed run reads it from there:
the model never changes within a run and never looks at a clock.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from evo.config import RunConfig
from primitives.cycles import CostModel, CycleTable, CycleTableError

TABLE_VERSION = 1


def cost_model(config: RunConfig) -> CostModel:
    """The model of ``config.cost`` (its cycle table must already be in the config)."""
    weights = tuple(sorted(config.costs.items()))
    if config.cost == "ops":
        return CostModel("ops", weights)
    if config.cost_table is None:
        raise ValueError(f"the {config.cost} cost model needs config.cost_table (use with_cost_table)")
    return CostModel(config.cost, weights, config.cost_table)


def with_cost_table(config: RunConfig, cache_dir: Path | None = None) -> RunConfig:
    """``config`` with the host's cycle table filled in when its cost model needs one and has none."""
    if config.cost == "ops" or config.cost_table is not None:
        return config
    import dataclasses

    return dataclasses.replace(config, cost_table=host_table(cache_dir))


def _table_dir(cache_dir: Path | None) -> Path:
    if cache_dir is None:
        from targets.reference import default_cache_dir

        cache_dir = default_cache_dir()
    return Path(cache_dir) / "cycle-tables"


def table_key(cpu: str, features: str, llvmlite_version: str) -> str:
    text = f"v{TABLE_VERSION}|{cpu}|{features}|{llvmlite_version}"
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


def host_table(cache_dir: Path | None = None, measure=None) -> CycleTable:
    """This host's cycle table: from the cache, else measured now (about ten seconds) and cached.

    ``measure`` replaces the measurement (tests only). A cache file that does not parse, or that
    belongs to another CPU or llvmlite, is measured again and overwritten.
    """
    from codegen.cycletable import host_target, measure_table

    cpu, features, llvmlite_version = host_target()
    path = _table_dir(cache_dir) / f"{cpu}-{table_key(cpu, features, llvmlite_version)}.json"
    try:
        table = CycleTable.from_dict(json.loads(path.read_text()))
        if (table.cpu, table.features, table.llvmlite) == (cpu, features, llvmlite_version):
            return table
    except (OSError, ValueError, CycleTableError):
        pass
    table = (measure or measure_table)()
    _write_atomically(path, json.dumps(table.to_dict(), indent=1))
    return table


def _write_atomically(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.replace(temp, path)
    except OSError:
        pass  # an unwritable cache only costs a re-measurement next time


def cost_columns(program, table: CycleTable | None) -> dict[str, float | None]:
    """ops, latency and throughput of one program (the cycle figures are None without a table)."""
    from primitives.cycles import array_cycles, critical_path

    return {
        "ops": program.cost(),
        "latency": None if table is None else round(critical_path(program, table.latencies), 2),
        "throughput": None if table is None else round(array_cycles(program, table), 3),
    }


def run_table(config: RunConfig, cache_dir: Path | None = None) -> CycleTable:
    """The table a run's cycle figures use: the one it recorded, else this host's (cached)."""
    return config.cost_table if config.cost_table is not None else host_table(cache_dir)


def anchor_points(config: RunConfig, anchor_key: str | None) -> list[tuple[float, float, str]]:
    """(cost under the run's model, exhaustive max ULP, name) of the target's classical polynomials."""
    if anchor_key is None:
        return []
    from targets.baselines import baselines

    model = cost_model(config)
    return [(model.cost(b.program), b.max_ulp_exhaustive, b.name) for b in baselines(anchor_key)]
