"""The run directory: the only code that knows its file names and formats (documented in runs/README.md).

    config.json      the fully resolved RunConfig (with the seed actually used)
    meta.json        versions, host, start time, dataset digests
    events.jsonl     append-only event log, one JSON object per line, flushed per line
    checkpoint.json  the whole search state (written atomically; JSON, never pickle)
    front.json       the Pareto front with search, select and final scores (written atomically)
    run.log          the human-readable log
    exports/         generated kernels (``evo export``)
    writer.lock      flock'ed by the one process writing the run (holds its pid; never blocks once it exits)

Every write either completes or fails with a one-line error that leaves no temporary file behind:
a full disk is a StorageError (exit 1), an unwritable location a RunError (exit 2). What is read back
is validated (file shapes here, search-state invariants in ``evo.state``): a damaged file is a
one-line RunError, never a traceback.

Every event carries ``v`` (schema), ``kind`` and ``t`` (seconds since the run started, continued
across resumes). Fields listed in ``NONDETERMINISTIC_FIELDS`` depend on timing or caching; two
serial runs with one seed write identical events once those fields are removed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evo.config import RunConfig, from_mapping
from evo.errors import RunError, StorageError, UsageError
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
LOCK = "writer.lock"
FILE_MODE = 0o600
#: errno values that mean "this location is not writable" (a path the user chose: exit 2); any other
#: OSError on a write is the disk failing under us (full, quota, I/O: exit 1).
_UNWRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class RawJSON(str):
    """Text that is already standard JSON, written as it is (an island's state, kept as the text the
    island sent, is not parsed and encoded again for every checkpoint)."""


def _clean(value: Any, raws: list[str], mark: list[str]) -> Any:
    """Non-finite floats as strings ("inf", "nan"), so the files stay standard JSON; a RawJSON goes
    to ``raws`` and becomes the string ``mark[0]`` (drawn at the first one)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, RawJSON):
        if not mark:
            mark.append(f"raw-json-{secrets.token_hex(8)}")  # cannot occur in the data by chance
        raws.append(value)
        return mark[0]
    if isinstance(value, dict):
        return {k: _clean(v, raws, mark) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v, raws, mark) for v in value]
    return value


def dumps(value: Any, indent: int | None = None) -> str:
    return "".join(dump_pieces(value, indent))


def dump_pieces(value: Any, indent: int | None = None) -> list[str]:
    """``dumps(value)`` as the pieces it joins (a large document's RawJSON texts are not copied)."""
    raws: list[str] = []
    mark: list[str] = []
    text = json.dumps(_clean(value, raws, mark), default=_json_default, indent=indent, allow_nan=False)
    if not raws:
        return [text]
    # json.dumps visits values in the order _clean did, so the marks stand in the order of ``raws``
    pieces = text.split(f'"{mark[0]}"')
    if len(pieces) != len(raws) + 1:
        raise ValueError("a raw JSON text's mark occurs in the data")
    out = [pieces[0]]
    for raw, piece in zip(raws, pieces[1:], strict=True):
        out += (raw, piece)
    return out


def event_text(record: dict[str, Any]) -> str:
    """``dumps(record)`` for an event (which never holds a RawJSON): encoded at once, and cleaned
    first only if it holds a non-finite float (an event is written for every few evaluations)."""
    try:
        return json.dumps(record, default=_json_default, allow_nan=False)
    except ValueError:
        return dumps(record)


def storage_error(exc: OSError, path: str | Path, doing: str = "write") -> Exception:
    """A one-line error for an OSError on ``path``: RunError if the location is not writable,
    else StorageError."""
    reason = (os.strerror(exc.errno) if exc.errno else str(exc)).lower()
    if exc.errno in _UNWRITABLE:
        return RunError(f"cannot {doing} {path}: {reason}")
    return StorageError(f"cannot {doing} {path}: {reason} (files written before are intact)")


def write_atomic(path: Path, text: str | list[str]) -> None:
    """Write a whole file so that readers see the old or the new content, never a torn one. On any
    failure (a full disk, an interrupt) the temporary file is removed and the old file is untouched.
    """
    path = Path(path)
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise storage_error(exc, path) from None
    _fill(fd, text, leftover=temporary, path=path, then=lambda: os.replace(temporary, path))


def write_new(path: Path, text: str) -> None:
    """Create ``path`` (never overwriting a file) with ``text``; on failure nothing is left behind."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        raise RunError(f"{path} exists; not overwriting it") from None
    except OSError as exc:
        raise storage_error(exc, path) from None
    _fill(fd, text, leftover=path, path=path)


def _fill(fd: int, text: str | list[str], leftover, path: Path, then=None) -> None:
    """Write ``text`` to ``fd``, sync and close it, then run ``then``; on any failure remove
    ``leftover`` so nothing is left behind, and report an OSError as a storage error of ``path``."""
    try:
        try:
            data = text if isinstance(text, str) else "".join(text)
            _write_all(fd, data.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        if then is not None:
            then()
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(leftover)
        if isinstance(exc, OSError):
            raise storage_error(exc, path) from None
        raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _open_append(path: Path) -> int:
    try:
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    except OSError as exc:
        raise storage_error(exc, path, "open") from None


def _append_line(fd: int, data: bytes, path: Path, size: int) -> int:
    """Append ``data`` (whole lines) at ``size``; on failure cut the file back so no torn line stays."""
    try:
        _write_all(fd, data)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        raise storage_error(exc, path) from None
    return size + len(data)


def new_run_dir(runs_dir: str | Path, target: str, seed: int, when: float | None = None) -> Path:
    """A fresh directory ``<runs_dir>/<YYYYmmdd-HHMMSS>_<target>_s<seed>[-k]`` (never an existing one)."""
    root = Path(runs_dir)
    if root.exists() and not root.is_dir():
        raise UsageError(f"runs directory {str(root)!r} is a file")
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    base = f"{stamp}_{target}_s{seed}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        for k in range(1000):
            candidate = root / (base if k == 0 else f"{base}-{k}")
            try:
                candidate.mkdir()
                return candidate
            except FileExistsError:
                continue
    except OSError as exc:
        raise storage_error(exc, root, "create a run directory in") from None
    raise RunError(f"cannot create a new run directory under {str(root)!r}")


class RunLock:
    """One writer per run: an exclusive ``flock`` on ``writer.lock`` inside the run directory, held
    by an open descriptor, so it is released when the process exits however it exits (the file
    may stay; it never blocks anyone). The holder's pid is written into it for the refusal message.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        return self.run_dir / LOCK

    def acquire(self) -> RunLock:
        if self._fd is not None:
            return self
        if not self.run_dir.is_dir():
            raise RunError(f"run directory {str(self.run_dir)!r} does not exist")
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        except OSError as exc:
            raise storage_error(exc, self.run_dir, "write to run directory") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise storage_error(exc, self.path, "lock") from None
            who = f"pid {holder}" if holder.isdigit() else "another process"
            raise RunError(
                f"{self.run_dir} is in use by another evo process ({who}); one writer per run"
            ) from None
        try:  # informational only: a full disk must not stop a run from being locked
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _checkpoint_event(checkpoint: dict[str, Any]) -> bytes:
    """The ``checkpoint`` event line that follows a periodic checkpoint (rebuilt from the checkpoint
    itself, to repair a run that stopped between the two writes)."""
    record = {
        "v": SCHEMA_VERSION,
        "kind": "checkpoint",
        "t": round(float(checkpoint["elapsed"]), 4),
        "n_evals": checkpoint["n_evals"],
    }
    return (dumps(record) + "\n").encode()


class RunWriter:
    """Appends events and writes the state files of one run directory, holding its RunLock."""

    def __init__(self, run_dir: Path, elapsed_before: float = 0.0, lock: RunLock | None = None) -> None:
        self.run_dir = Path(run_dir)
        self._started = time.monotonic() - elapsed_before
        self._lock = lock if lock is not None else RunLock(run_dir).acquire()
        try:
            self._events_path, self._log_path = self.run_dir / EVENTS, self.run_dir / LOG
            self._events = _open_append(self._events_path)
            self._size = os.fstat(self._events).st_size
            self._log = _open_append(self._log_path)
        except BaseException:
            self._lock.release()
            raise

    @classmethod
    def create(cls, run_dir: Path, config: RunConfig, meta: dict[str, Any]) -> RunWriter:
        lock = RunLock(run_dir).acquire()
        try:
            write_atomic(run_dir / CONFIG, dumps(config.to_dict(), indent=1) + "\n")
            write_atomic(run_dir / META, dumps({"schema": SCHEMA_VERSION, **meta}, indent=1) + "\n")
            return cls(run_dir, lock=lock)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def reopen(cls, run_dir: Path, checkpoint: dict[str, Any]) -> RunWriter:
        """Continue a run from its checkpoint (which the caller read and validated).

        Under the run's lock: the checkpoint must still be the one on disk (else another writer got
        there first). Events written after it by a run that was killed are moved to
        ``events.after-checkpoint-<n>.jsonl`` (kept, never deleted) so that the resumed run continues
        one consistent stream; ``export`` events there are legitimate history and stay. What was
        moved or kept is said in run.log.
        """
        run_dir = Path(run_dir)
        lock = RunLock(run_dir).acquire()
        try:
            if RunReader(run_dir).checkpoint() != checkpoint:
                raise RunError(
                    f"{run_dir} changed while it was being opened (another evo process wrote it); try again"
                )
            note = _cut_back_to(run_dir, checkpoint)
            writer = cls(run_dir, float(checkpoint.get("elapsed", 0.0)), lock)
        except BaseException:
            lock.release()
            raise
        if note:
            writer.log(note)
        return writer

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        record = {"v": SCHEMA_VERSION, "kind": kind, "t": round(self.elapsed, 4), **fields}
        self._size = _append_line(
            self._events, (event_text(record) + "\n").encode(), self._events_path, self._size
        )
        return record

    def log(self, line: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        size = os.fstat(self._log).st_size
        _append_line(self._log, f"{stamp} {line}\n".encode(), self._log_path, size)

    def checkpoint(self, state: dict[str, Any], announce: bool = False) -> None:
        """Write the search state atomically. With ``announce``, the ``checkpoint`` event follows,
        written only once the state it describes is safely on disk (``events_offset`` covers it)."""
        elapsed = self.elapsed
        state = {"schema": SCHEMA_VERSION, **state, "elapsed": elapsed}
        line = _checkpoint_event(state) if announce else b""
        state["events_offset"] = self._size + len(line)
        write_atomic(self.run_dir / CHECKPOINT, [*dump_pieces(state), "\n"])
        if line:
            self._size = _append_line(self._events, line, self._events_path, self._size)

    def write_front(self, front: list[dict[str, Any]]) -> None:
        write_atomic(self.run_dir / FRONT, dumps({"schema": SCHEMA_VERSION, "front": front}, indent=1) + "\n")

    def close(self) -> None:
        """Close the files and release the lock (idempotent)."""
        for name in ("_events", "_log"):
            fd = getattr(self, name, None)
            if fd is not None:
                setattr(self, name, None)
                os.close(fd)
        self._lock.release()


def _cut_back_to(run_dir: Path, checkpoint: dict[str, Any]) -> str:
    """Make events.jsonl end where the checkpoint says; returns what run.log should say about it."""
    path = run_dir / EVENTS
    offset = int(checkpoint["events_offset"])
    if offset == 0 and not path.exists():
        return ""
    try:
        with open(path, "a+b") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size < offset:
                line = _checkpoint_event(checkpoint)
                if size + len(line) == offset and (size == 0 or _last_byte(path, size) == b"\n"):
                    # the run stopped between the checkpoint and its event: write the event
                    handle.write(line)
                    return "resume: wrote the checkpoint event that the run stopped before writing"
                raise RunError(f"{path} is shorter than its checkpoint says: the run directory is damaged")
            handle.seek(offset)
            tail = handle.read()
            if not tail:
                return ""
            kept, moved = _split_tail(tail)
            aside = run_dir / f"events.after-checkpoint-{checkpoint['n_evals']}.jsonl"
            if moved:
                fd = os.open(aside, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
                try:
                    size = os.fstat(fd).st_size
                    lead = b"\n" if size and os.pread(fd, 1, size - 1) != b"\n" else b""
                    _append_line(fd, lead + moved + (b"" if moved.endswith(b"\n") else b"\n"), aside, size)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            handle.truncate(offset)
            handle.write(kept)  # append mode: lands at the new end
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise storage_error(exc, path) from None
    parts = []
    if moved:
        n_moved = moved.count(b"\n") + (not moved.endswith(b"\n"))
        parts.append(
            f"moved {n_moved} line(s) written after the checkpoint at {checkpoint['n_evals']} evaluations to "
            f"{aside.name}"
        )
    if kept:
        parts.append(f"kept {len(_lines(kept))} export event(s) written after it")
    return "resume: " + "; ".join(parts)


def _split_tail(tail: bytes) -> tuple[bytes, bytes]:
    """Events after a checkpoint: complete ``export`` lines (kept) and everything else (moved aside)."""
    kept, moved = [], []
    for raw in _lines(tail):
        record = _parse_line(raw) if raw.endswith(b"\n") else None
        (kept if isinstance(record, dict) and record.get("kind") == "export" else moved).append(raw)
    return b"".join(kept), b"".join(moved)


def _lines(data: bytes) -> list[bytes]:
    """``data`` cut after each newline (the last piece may lack one); only ``\n`` ends a line."""
    pieces = data.split(b"\n")
    return [piece + b"\n" for piece in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])


def _parse_line(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def append_event(run_dir: str | Path, kind: str, **fields: Any) -> dict[str, Any]:
    """Append one event to a run that is not running (e.g. an export; the caller holds the RunLock);
    ``t`` is then null. A last line without its newline (a torn write) is ended first, so the new
    event is never glued to it."""
    record = {"v": SCHEMA_VERSION, "kind": kind, "t": None, **fields}
    path = Path(run_dir) / EVENTS
    fd = _open_append(path)
    try:
        size = os.fstat(fd).st_size
        lead = b"\n" if size and _last_byte(path, size) != b"\n" else b""
        _append_line(fd, lead + (dumps(record) + "\n").encode(), path, size)
    finally:
        os.close(fd)
    return record


def _last_byte(path: Path, size: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(size - 1)
        return handle.read(1)


def _shape_error(path: Path, what: str) -> RunError:
    return RunError(f"{path} is damaged: {what}")


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value: Any) -> bool:
    if isinstance(value, str):
        return value in ("inf", "-inf", "nan")
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


_SCORE_KEYS = ("max_err", "mean_err", "worst_x", "n_points", "metric", "points")


def _check_score(path: Path, where: str, score: Any) -> None:
    if not isinstance(score, dict) or any(k not in score for k in _SCORE_KEYS):
        raise _shape_error(path, f"{where} is not a score")
    if not all(_is_number(score[k]) for k in ("max_err", "mean_err", "worst_x")):
        raise _shape_error(path, f"{where} has a non-numeric error")


def check_front_entry(path: Path, index: int, entry: Any) -> None:
    """The shape of one front entry (as in front.json and the checkpoint), and its program's hash."""
    from primitives.jsonform import from_dict as program_from_dict
    from primitives.program import ProgramError

    where = f"front entry {index}"
    if not isinstance(entry, dict):
        raise _shape_error(path, f"{where} is not an object")
    for key in ("program", "hash", "cost", "ops", "id", "score", "select", "mutation"):
        if key not in entry:
            raise _shape_error(path, f"{where} has no {key!r}")
    if (
        not isinstance(entry["hash"], str)
        or not _is_real(entry["cost"])
        or not _is_count(entry["ops"])
        or not _is_count(entry["id"])
        or not isinstance(entry["mutation"], str)
    ):
        raise _shape_error(path, f"{where} has a field of the wrong type")
    _check_score(path, f"{where} score", entry["score"])
    _check_score(path, f"{where} select", entry["select"])
    if entry.get("final") is not None:
        _check_score(path, f"{where} final", entry["final"])
    try:
        program = program_from_dict(entry["program"])
    except (ProgramError, RecursionError, TypeError, ValueError) as exc:
        raise _shape_error(path, f"{where} program: {exc}") from None
    if program.canonical_hash() != entry["hash"]:
        raise _shape_error(path, f"{where} program does not match its hash {entry['hash'][:12]}")


class RunReader:
    """Reads a run directory, with one-line RunErrors for missing, corrupt or ill-shaped files."""

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
            return json.loads(path.read_bytes().decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise RunError(f"{path} is corrupt ({type(exc).__name__})") from None
        except OSError as exc:
            raise RunError(
                f"cannot read {path}: {(os.strerror(exc.errno) if exc.errno else str(exc)).lower()}"
            ) from None

    @property
    def config(self) -> RunConfig:
        data = self._load(CONFIG)
        if not isinstance(data, dict):
            raise _shape_error(self.run_dir / CONFIG, "not an object")
        try:
            return from_mapping(data)
        except (UsageError, TypeError, ValueError) as exc:
            raise RunError(f"{self.run_dir / CONFIG} is not a valid config: {exc}") from None

    @property
    def meta(self) -> dict[str, Any]:
        path = self.run_dir / META
        data = self._load(META, required=False)
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise _shape_error(path, "not an object")
        target = data.get("target")
        if target is not None and (
            not isinstance(target, dict)
            or not all(isinstance(target.get(k), str | None) for k in ("name", "expr", "domain"))
        ):
            raise _shape_error(path, "'target' is not an object of name, expr and domain")
        return data

    def checkpoint(self) -> dict[str, Any] | None:
        """The checkpoint, with its file-level invariants checked (the search state's own are
        checked by ``SearchState.from_dict``): schema, counters, and an ``events_offset`` that ends a
        line of events.jsonl."""
        path = self.run_dir / CHECKPOINT
        data = self._load(CHECKPOINT, required=False)
        if data is None:
            return None
        if not isinstance(data, dict) or data.get("schema") != SCHEMA_VERSION:
            raise RunError(f"{path} has an unknown schema")
        for key in ("n_evals", "events_offset"):
            if not _is_count(data.get(key)):
                raise _shape_error(path, f"{key!r} is not a non-negative integer")
        elapsed = data.get("elapsed", 0.0)
        if not isinstance(elapsed, int | float) or isinstance(elapsed, bool) or not 0 <= elapsed < math.inf:
            raise _shape_error(path, "'elapsed' is not a non-negative number")
        self._check_offset(path, data["events_offset"], data)
        return data

    def _check_offset(self, path: Path, offset: int, checkpoint: dict[str, Any]) -> None:
        events = self.run_dir / EVENTS
        if offset == 0:
            return
        size = events.stat().st_size if events.exists() else 0
        if size < offset:
            if size + len(_checkpoint_event(checkpoint)) == offset:
                return  # stopped between the checkpoint and its event: resume writes the event
            raise RunError(f"{events} is shorter than its checkpoint says: the run directory is damaged")
        with open(events, "rb") as handle:
            handle.seek(offset - 1)
            if handle.read(1) != b"\n":
                raise _shape_error(path, f"'events_offset' {offset} is not at the end of a line of {EVENTS}")

    def front(self) -> list[dict[str, Any]]:
        path = self.run_dir / FRONT
        data = self._load(FRONT, required=False)
        if data is None:
            checkpoint = self.checkpoint()
            path = self.run_dir / CHECKPOINT
            entries = [] if checkpoint is None else checkpoint.get("front", [])
        else:
            if not isinstance(data, dict) or not isinstance(data.get("front"), list):
                raise _shape_error(path, "no list 'front'")
            entries = data["front"]
        if not isinstance(entries, list):
            raise _shape_error(path, "'front' is not a list")
        for index, entry in enumerate(entries):
            check_front_entry(path, index, entry)
        return list(entries)

    def events(self, kind: str | None = None) -> Iterator[dict[str, Any]]:
        """Events in order. A torn line (the last write of a killed run, later ended by a newline)
        is skipped; anything else that is not an event object makes the run damaged (RunError)."""
        path = self.run_dir / EVENTS
        if not path.exists():
            return
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, 1):
                if not raw.strip():
                    continue
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise _shape_error(
                        path, f"line {number} is not UTF-8 text (byte 0x{raw[exc.start]:02x})"
                    ) from None
                try:
                    record = json.loads(text)
                except RecursionError:
                    raise _shape_error(path, f"line {number} is nested too deeply") from None
                except ValueError:
                    if text.startswith('{"v": '):
                        continue  # a fragment of one of our own events: a torn write
                    raise _shape_error(path, f"line {number} is not JSON") from None
                if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
                    raise _shape_error(path, f"line {number} is not an event")
                if kind is None or record.get("kind") == kind:
                    yield record

    def finished(self) -> bool:
        return any(True for _ in self.events("end"))


def strip_nondeterministic(record: dict[str, Any]) -> dict[str, Any]:
    """An event without its timing/caching fields (what the determinism contract compares)."""
    return {k: v for k, v in record.items() if k not in NONDETERMINISTIC_FIELDS}
