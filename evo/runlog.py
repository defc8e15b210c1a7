"""The run directory: the only code that knows its file names and formats (documented in runs/README.md).

    config.json      the fully resolved RunConfig (with the seed actually used)
    meta.json        versions, host, start time, dataset digests
    events.jsonl     append-only event log, one JSON object per line, flushed per line
    checkpoint.json  the whole search state (written atomically; JSON, never pickle)
    front.json       the Pareto front with search, select and final scores (written atomically)
    run.log          the human-readable log
    exports/         generated kernels (``evo export``)

Every event carries ``v`` (schema), ``kind`` and ``t`` (seconds since the run started, continued
across resumes). Fields listed in ``NONDETERMINISTIC_FIELDS`` depend on timing or caching; two
serial runs with one seed write identical events once those fields are removed.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evo.config import RunConfig, from_mapping
from evo.errors import RunError, UsageError
from evo.events import NONDETERMINISTIC_FIELDS  # one list, declared with the event kinds

SCHEMA_VERSION = 1
CONFIG, META, EVENTS, CHECKPOINT, FRONT, LOG = (
    "config.json",
    "meta.json",
    "events.jsonl",
    "checkpoint.json",
    "front.json",
    "run.log",
)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _clean(value: Any) -> Any:
    """Non-finite floats as strings ("inf", "nan"), so the files stay standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def dumps(value: Any, indent: int | None = None) -> str:
    return json.dumps(_clean(value), default=_json_default, indent=indent, allow_nan=False)


def write_atomic(path: Path, text: str) -> None:
    """Write a whole file so that readers see the old or the new content, never a torn one."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False) as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
        temporary = handle.name
    os.replace(temporary, path)


def new_run_dir(runs_dir: str | Path, target: str, seed: int, when: float | None = None) -> Path:
    """A fresh directory ``<runs_dir>/<YYYYmmdd-HHMMSS>_<target>_s<seed>[-k]`` (never an existing one)."""
    root = Path(runs_dir)
    if root.exists() and not root.is_dir():
        raise UsageError(f"runs directory {str(root)!r} is a file")
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    base = f"{stamp}_{target}_s{seed}"
    for k in range(1000):
        candidate = root / (base if k == 0 else f"{base}-{k}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RunError(f"cannot create a new run directory under {str(root)!r}")


class RunWriter:
    """Appends events and writes the state files of one run directory."""

    def __init__(self, run_dir: Path, elapsed_before: float = 0.0) -> None:
        self.run_dir = Path(run_dir)
        self._started = time.monotonic() - elapsed_before
        self._events = open(self.run_dir / EVENTS, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
        self._log = open(self.run_dir / LOG, "a", encoding="utf-8")  # noqa: SIM115

    @classmethod
    def create(cls, run_dir: Path, config: RunConfig, meta: dict[str, Any]) -> RunWriter:
        write_atomic(run_dir / CONFIG, dumps(config.to_dict(), indent=1) + "\n")
        write_atomic(run_dir / META, dumps({"schema": SCHEMA_VERSION, **meta}, indent=1) + "\n")
        return cls(run_dir)

    @classmethod
    def reopen(cls, run_dir: Path, checkpoint: dict[str, Any]) -> RunWriter:
        """Continue a run from its checkpoint. Events written after that checkpoint (by a run that
        was killed) are moved to ``events.after-checkpoint-<n>.jsonl`` (kept, never deleted) and the
        log is cut back to the checkpoint, so the resumed run continues one consistent stream.
        """
        path = run_dir / EVENTS
        offset = int(checkpoint["events_offset"])
        size = path.stat().st_size if path.exists() else 0
        if size < offset:
            raise RunError(f"{path} is shorter than its checkpoint says: the run directory is damaged")
        if size > offset:
            with open(path, "rb") as handle:
                handle.seek(offset)
                tail = handle.read()
            kept = run_dir / f"events.after-checkpoint-{checkpoint['n_evals']}.jsonl"
            with open(kept, "ab") as handle:
                handle.write(tail)
            with open(path, "r+b") as handle:
                handle.truncate(offset)
        return cls(run_dir, float(checkpoint.get("elapsed", 0.0)))

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    @property
    def events_offset(self) -> int:
        self._events.flush()
        return self._events.tell()

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        record = {"v": SCHEMA_VERSION, "kind": kind, "t": round(self.elapsed, 4), **fields}
        self._events.write(dumps(record) + "\n")
        self._events.flush()
        return record

    def log(self, line: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self._log.write(f"{stamp} {line}\n")
        self._log.flush()

    def checkpoint(self, state: dict[str, Any]) -> None:
        state = {"schema": SCHEMA_VERSION, **state, "events_offset": self.events_offset, "elapsed": self.elapsed}
        write_atomic(self.run_dir / CHECKPOINT, dumps(state) + "\n")

    def write_front(self, front: list[dict[str, Any]]) -> None:
        write_atomic(self.run_dir / FRONT, dumps({"schema": SCHEMA_VERSION, "front": front}, indent=1) + "\n")

    def close(self) -> None:
        self._events.close()
        self._log.close()


def append_event(run_dir: str | Path, kind: str, **fields: Any) -> dict[str, Any]:
    """Append one event to a run that is not running (e.g. an export); ``t`` is then null."""
    record = {"v": SCHEMA_VERSION, "kind": kind, "t": None, **fields}
    with open(Path(run_dir) / EVENTS, "a", encoding="utf-8") as handle:
        handle.write(dumps(record) + "\n")
    return record


class RunReader:
    """Reads a run directory, with one-line RunErrors for missing or corrupt files."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        if not self.run_dir.exists():
            raise RunError(f"run directory {str(self.run_dir)!r} does not exist")
        if not self.run_dir.is_dir():
            raise RunError(f"{str(self.run_dir)!r} is not a run directory")
        if not (self.run_dir / CONFIG).exists():
            raise RunError(f"{str(self.run_dir)!r} is not a run directory (no {CONFIG})")

    def _load(self, name: str, required: bool = True) -> Any:
        path = self.run_dir / name
        if not path.exists():
            if required:
                raise RunError(f"{path} is missing")
            return None
        try:
            return json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RunError(f"{path} is corrupt ({type(exc).__name__})") from None

    @property
    def config(self) -> RunConfig:
        data = self._load(CONFIG)
        try:
            return from_mapping(data)
        except (UsageError, TypeError) as exc:
            raise RunError(f"{self.run_dir / CONFIG} is not a valid config: {exc}") from None

    @property
    def meta(self) -> dict[str, Any]:
        return self._load(META, required=False) or {}

    def checkpoint(self) -> dict[str, Any] | None:
        data = self._load(CHECKPOINT, required=False)
        if data is not None and (not isinstance(data, dict) or data.get("schema") != SCHEMA_VERSION):
            raise RunError(f"{self.run_dir / CHECKPOINT} has an unknown schema")
        return data

    def front(self) -> list[dict[str, Any]]:
        data = self._load(FRONT, required=False)
        if data is None:
            checkpoint = self.checkpoint()
            return [] if checkpoint is None else list(checkpoint.get("front", []))
        if not isinstance(data, dict) or "front" not in data:
            raise RunError(f"{self.run_dir / FRONT} is corrupt")
        return list(data["front"])

    def events(self, kind: str | None = None) -> Iterator[dict[str, Any]]:
        """Events in order (a torn last line from a killed run is skipped)."""
        path = self.run_dir / EVENTS
        if not path.exists():
            return
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                line = line.strip()
                if not line:
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if kind is None or record.get("kind") == kind:
                    yield record

    def finished(self) -> bool:
        return any(True for _ in self.events("end"))


def strip_nondeterministic(record: dict[str, Any]) -> dict[str, Any]:
    """An event without its timing/caching fields (what the determinism contract compares)."""
    return {k: v for k, v in record.items() if k not in NONDETERMINISTIC_FIELDS}
