"""The run's cost model: built once from the config, with the host's cycle table derived once and cached.

``--cost ops`` is the weighted op count; ``latency`` and ``throughput`` are cycles on this host
(``primitives.cycles``), from a table that ``cost_source`` says where to get: ``measure`` (timed
microkernels, ``codegen.cycletable``) or ``llvm-mca`` (the same microkernels simulated by llvm-mca for
the host CPU, ``codegen.mca``; without a working llvm-mca, one line says so and the table is
measured). It is cached on disk per source, CPU name, CPU features and llvmlite version. The table
a run uses is written into its config (``cost_table``, hence config.json) and meta.json (its
``source`` names where it came from), and a resumed run reads it from there: the model never
changes within a run and never looks at a clock.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from evo.config import RunConfig
from primitives.cycles import CostModel, CycleTable, CycleTableError

TABLE_VERSION = 2  # 2: the vectoriser's width and port sharing of op pairs
COST_SOURCES = ("measure", "llvm-mca")


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

    return dataclasses.replace(config, cost_table=host_table(cache_dir, source=config.cost_source))


def _table_dir(cache_dir: Path | None) -> Path:
    if cache_dir is None:
        from targets.reference import default_cache_dir

        cache_dir = default_cache_dir()
    return Path(cache_dir) / "cycle-tables"


def table_key(cpu: str, features: str, llvmlite_version: str, source: str = "measure") -> str:
    text = f"v{TABLE_VERSION}|{cpu}|{features}|{llvmlite_version}"
    if source != "measure":  # the measured tables keep the key they were cached under
        text += f"|{source}"
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


def _notice(text: str) -> None:
    print(text, file=sys.stderr)


def host_table(
    cache_dir: Path | None = None,
    measure=None,
    source: str = "measure",
    notice: Callable[[str], None] = _notice,
) -> CycleTable:
    """This host's cycle table from ``source`` ("measure" or "llvm-mca"): from the cache, else derived
    now (a second or two) and cached.

    ``measure`` replaces the measurement (tests only). A cache file that does not parse, or that
    belongs to another CPU, llvmlite or source, is derived again and overwritten. When llvm-mca is
    missing or fails, ``notice`` gets one line saying so and the measured table is returned.
    """
    from codegen.cycletable import host_target, measure_table

    if source not in COST_SOURCES:
        raise ValueError(f"unknown cost source {source!r} (known: {', '.join(COST_SOURCES)})")
    cpu, features, llvmlite_version = host_target()
    path = _table_dir(cache_dir) / f"{cpu}-{table_key(cpu, features, llvmlite_version, source)}.json"
    try:
        table = CycleTable.from_dict(json.loads(path.read_text()))
        from_mca = table.source.startswith("llvm-mca")
        wanted = (cpu, features, llvmlite_version, source == "llvm-mca")
        if (table.cpu, table.features, table.llvmlite, from_mca) == wanted:
            return table
    except (OSError, ValueError, CycleTableError):
        pass
    if source == "llvm-mca":
        from codegen.mca import McaError, mca_table

        try:
            table = mca_table()
        except (McaError, OSError, subprocess.SubprocessError) as exc:
            notice(f"cost_source llvm-mca: {exc}; using the measured cycle table instead")
            return host_table(cache_dir, measure, "measure", notice)
    else:
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
    if config.cost_table is not None:
        return config.cost_table
    return host_table(cache_dir, source=config.cost_source)


def anchor_points(config: RunConfig, anchor_key: str | None) -> list[tuple[float, float, str]]:
    """(cost under the run's model, exhaustive max ULP, name) of the target's classical polynomials."""
    if anchor_key is None:
        return []
    from targets.baselines import baselines

    model = cost_model(config)
    return [(model.cost(b.program), b.max_ulp_exhaustive, b.name) for b in baselines(anchor_key)]
