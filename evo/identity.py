"""Run identity: what a run searches (target, domain, mode, ops, datasets).

It is recorded at start and checked on resume.

A resumed run rebuilds its problem from ``config.json``; if that file was edited (another target, a
moved domain, another mode or op set), new children would be scored against one problem and the
checkpoint's front against another. ``check_resume_identity`` compares the rebuilt problem with
what ``meta.json`` recorded (its ``identity`` block where present, else its target and dataset
records), with the run's ``start`` event and with the checkpoint's programs and scores, and refuses
a mismatch in one line that says what differs.
"""

from __future__ import annotations

import re
from typing import Any

from evo.errors import RunError

IDENTITY_KEYS = ("mode", "target", "expr", "domain", "ops", "search", "select")  # most telling first
_LABEL_DIGEST = re.compile(r", ([0-9a-f]{8})\)$")


def identity_record(config, problem) -> dict[str, Any]:
    """What the run searches, as recorded in meta.json (``identity``) at its start."""
    return {
        "target": problem.target.name,
        "expr": problem.target.expr,
        "domain": problem.target.domain_text(config.dtype),
        "mode": config.mode,
        "ops": list(config.ops),
        "search": problem.search.digest,
        "select": problem.select.digest,
    }


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 70 else text[:67] + "..."


def _recorded_sources(reader) -> list[tuple[str, dict[str, Any]]]:
    """(where, partial identity) from meta.json and the start event, whatever each of them holds."""
    sources: list[tuple[str, dict[str, Any]]] = []
    meta = reader.meta
    meta = meta if isinstance(meta, dict) else {}
    recorded = meta.get("identity")
    if isinstance(recorded, dict):
        sources.append(("meta.json", {k: recorded[k] for k in IDENTITY_KEYS if k in recorded}))
    from_meta: dict[str, Any] = {}
    target = meta.get("target")
    if isinstance(target, dict):
        from_meta.update({k: target[k] for k in ("expr", "domain") if k in target})
        if "name" in target:
            from_meta["target"] = target["name"]
    datasets = meta.get("datasets")
    if isinstance(datasets, dict):
        for kind in ("search", "select"):
            if isinstance(datasets.get(kind), dict) and "digest" in datasets[kind]:
                from_meta[kind] = datasets[kind]["digest"]
            if isinstance(datasets.get(kind), dict) and datasets[kind].get("metric") in ("ulp", "rel"):
                from_meta["mode"] = "float32" if datasets[kind]["metric"] == "ulp" else "real"
    sources.append(("meta.json", from_meta))
    try:
        start = next(reader.events("start"), None)
    except (OSError, ValueError):
        start = None
    if isinstance(start, dict):
        sources.append(
            ("events.jsonl", {k: start[k] for k in ("target", "expr", "domain", "mode") if k in start})
        )
    return sources


def _checkpoint_differences(config, problem, state) -> list[str]:
    """What the checkpoint's programs and scores say that the config contradicts."""
    individuals = [*state.population, *(e.individual for e in state.front.entries)]
    if state.best is not None:
        individuals.append(state.best)
    found: list[str] = []
    dtypes = sorted({ind.program.dtype for ind in individuals} - {config.dtype})
    if dtypes:
        found.append(f"mode is {config.mode!r} in config.json but the checkpoint holds {dtypes[0]} programs")
    metrics = sorted({ind.score.metric for ind in individuals} - {problem.search.metric})
    if metrics and not dtypes:
        found.append(f"mode is {config.mode!r} in config.json but the checkpoint's errors are {metrics[0]!r}")
    used = sorted({op for ind in individuals for op in ind.program.op_histogram()} - set(config.ops))
    if used:
        found.append(f"ops in config.json lack {', '.join(used)}, which the checkpoint's programs use")
    for entry in state.front.entries:
        match = _LABEL_DIGEST.search(entry.select.points)
        if match and not problem.select.digest.startswith(match.group(1)):
            found.append(
                f"select set is {problem.select.digest[:8]} from config.json but {match.group(1)} in the "
                "checkpoint's front"
            )
            break
    return found


def check_resume_identity(reader, config, problem, state) -> None:
    """Refuse (RunError, one line) a resume whose config.json no longer describes the run."""
    current = identity_record(config, problem)
    differences: list[str] = []
    seen: set[str] = set()
    for where, recorded in _recorded_sources(reader):
        for key, value in sorted(recorded.items(), key=lambda item: IDENTITY_KEYS.index(item[0])):
            if key in seen:
                continue
            mine = current[key]
            if key == "ops" and isinstance(value, list | tuple):
                value = list(value)
            if value != mine:
                seen.add(key)
                differences.append(f"{key} is {_short(mine)} in config.json but {_short(value)} in {where}")
    differences = sorted(differences, key=lambda text: IDENTITY_KEYS.index(text.split(" ", 1)[0]))
    differences += _checkpoint_differences(config, problem, state)
    if differences:
        extra = f" (and {len(differences) - 2} more)" if len(differences) > 2 else ""
        raise RunError(
            f"{reader.run_dir / 'config.json'} does not match the run: {'; '.join(differences[:2])}{extra}; "
            "resume refused (restore the run's config.json)"
        )
