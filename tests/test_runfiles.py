"""Run directories under faults: one writer per run, full disks, read-only locations, torn and
post-end events, validation of every file read back, file modes, the exit code of a stopped run and
the search -> final gap in ``evo inspect``."""

from __future__ import annotations

import errno
import json
import os
import stat
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

import evo.engine
from evo.errors import RunError, StorageError
from evo.runlog import RawJSON, RunLock, RunWriter, append_event, dumps, event_text, write_atomic
from tests.runfiles_helpers import (
    LOCK_FILE,
    SMALL_RUN,
    assert_one_line_error,
    checksums,
    copy_run,
    events_of,
    make_run,
    remount_read_only,
    run_cli,
    tmpfs,
)


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    """A finished 300-evaluation run on a narrow domain (every float32 of it signed off quickly),
    checkpoints every 100 (read-only here)."""
    return make_run(tmp_path_factory.mktemp("base-runs"), "--max-evals", "300", "--signoff", "best")


def _console() -> list[str]:
    beside = Path(sys.executable).parent / "evo"
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "evo"]


# ----------------------------------------------------------------------------- one writer per run
def test_second_writer_is_refused_naming_the_holder(tmp_path):
    """Defect 2: a run directory has one writer; the second is refused with the holder's pid."""
    with RunLock(tmp_path) as lock:
        assert lock.held
        assert (tmp_path / LOCK_FILE).read_text().strip() == str(os.getpid())
        with pytest.raises(RunError, match=f"in use by another evo process \\(pid {os.getpid()}\\)"):
            RunLock(tmp_path).acquire()
    with RunLock(tmp_path) as again:  # released: no stale lock
        assert again.held


def test_lock_dies_with_its_process(base_run, tmp_path):
    """Defect 2: resume and export are refused while another process holds the run, and the lock
    goes away with that process (kill -9), leaving no stale lock behind."""
    run_dir = copy_run(base_run, tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from evo.runlog import RunLock; RunLock(sys.argv[1]).acquire(); "
            "print('locked', flush=True); "
            "time.sleep(120)",
            str(run_dir),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = checksums(run_dir)
        code, out, err = run_cli("resume", run_dir, "--max-evals", "400", "--quiet")
        assert_one_line_error(code, out, err, "in use by another evo process", f"pid {holder.pid}")
        code, out, err = run_cli("export", run_dir, "--lang", "numpy")
        assert_one_line_error(code, out, err, f"pid {holder.pid}")
        assert checksums(run_dir) == before
        assert not (run_dir / "exports").exists()
    finally:
        holder.kill()
        holder.wait()
    code, out, err = run_cli("export", run_dir, "--lang", "numpy")
    assert code == 0, err
    assert [e["kind"] for e in events_of(run_dir)][-1] == "export"


def test_two_concurrent_resumes(base_run, tmp_path):
    """Defect 2: two `evo resume` at once: one runs, the other is refused; the history stays
    monotonic, ids never repeat, and there is one end event per session."""
    run_dir = copy_run(base_run, tmp_path)
    argv = [*_console(), "resume", str(run_dir), "--max-evals", "800", "--quiet"]
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    _, out, err = next(r for r in results if r[0] == 2)
    line = assert_one_line_error(2, out, err)
    assert any(
        why in line
        for why in ("in use by another evo process", "changed while it was being opened", "already has")
    ), line
    events = events_of(run_dir)
    counts = [e["n_evals"] for e in events if isinstance(e.get("n_evals"), int)]
    assert counts == sorted(counts)
    for kind in ("improve", "front"):
        ids = [e["id"] for e in events if e["kind"] == kind]
        assert len(ids) == len(set(ids)), kind
    kinds = [e["kind"] for e in events]
    assert kinds.count("end") == kinds.count("start") + kinds.count("resume") == 2
    assert events[-1]["kind"] == "end" and events[-1]["n_evals"] == 800
    assert not list(run_dir.glob("events.after-checkpoint-*"))


# ----------------------------------------------------------------------------- full disk
def _failing_fsync(monkeypatch, matches, fail_on: int):
    """os.fsync raising ENOSPC on the ``fail_on``-th file whose path ``matches``."""
    real = os.fsync
    seen = []

    def fsync(fd):
        path = os.readlink(f"/proc/self/fd/{fd}")
        if matches(path):
            seen.append(path)
            if len(seen) >= fail_on:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


def test_full_disk_at_a_checkpoint(monkeypatch, tmp_path):
    """Defect 6: a checkpoint that cannot be written: one line, exit 1, no temporary file, no
    `checkpoint` event for it, the previous checkpoint intact and resumable once space returns."""
    runs = tmp_path / "runs"
    _failing_fsync(monkeypatch, lambda p: ".checkpoint.json." in p, fail_on=2)
    code, out, err = run_cli(
        "evolve", *SMALL_RUN, "--signoff", "none", "--max-evals", "300", "--runs-dir", runs
    )
    assert_one_line_error(code, out, err, "checkpoint.json", "no space left on device", exit_code=1)
    monkeypatch.undo()
    (run_dir,) = list(runs.iterdir())
    assert not list(run_dir.glob(".*.tmp"))
    checkpoint = json.loads((run_dir / "checkpoint.json").read_text())
    assert checkpoint["n_evals"] == 100
    assert [e["n_evals"] for e in events_of(run_dir) if e["kind"] == "checkpoint"] == [100]
    code, out, err = run_cli("resume", run_dir, "--max-evals", "300", "--quiet")
    assert code == 0, err
    assert events_of(run_dir)[-1]["kind"] == "end"


def test_write_atomic_leaves_nothing_on_failure(monkeypatch, tmp_path):
    """Defect 6: a failed atomic write removes its temporary file and keeps the old content."""
    target = tmp_path / "state.json"
    target.write_text("old\n")
    _failing_fsync(monkeypatch, lambda p: ".state.json." in p, fail_on=1)
    with pytest.raises(StorageError, match="no space left on device"):
        write_atomic(target, "new\n")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_event_append_on_full_disk_leaves_no_torn_line(monkeypatch, tmp_path):
    """Defect 6: an event that cannot be appended fails in one error and leaves the log whole."""
    import evo.runlog as runlog

    writer = RunWriter(tmp_path)
    writer.event("start", seed=1)
    size = (tmp_path / "events.jsonl").stat().st_size
    real = os.write

    def half_then_full(fd, data):
        if len(data) > 8:
            real(fd, bytes(data[:8]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(runlog.os, "write", half_then_full)
    with pytest.raises(StorageError):
        writer.event("progress", n_evals=5)
    monkeypatch.undo()
    writer.close()
    assert (tmp_path / "events.jsonl").stat().st_size == size
    assert [e["kind"] for e in events_of(tmp_path)] == ["start"]


def test_checkpoint_event_follows_the_state(monkeypatch, tmp_path):
    """Defect 6: the `checkpoint` event is written after checkpoint.json is on disk; a run that
    stopped between the two is completed by resume (the event is rebuilt), not called damaged."""
    import evo.runlog as runlog
    from evo.runlog import RunReader

    (tmp_path / "config.json").write_text("{}")
    writer = RunWriter(tmp_path)
    writer.event("start", seed=1)
    real = runlog._append_line

    def full(fd, data, path, size):
        if b'"checkpoint"' in data:
            raise StorageError("no space left on device")
        return real(fd, data, path, size)

    monkeypatch.setattr(runlog, "_append_line", full)
    with pytest.raises(StorageError):
        writer.checkpoint({"n_evals": 7}, announce=True)
    monkeypatch.undo()
    writer.close()
    assert [e["kind"] for e in events_of(tmp_path)] == ["start"]
    checkpoint = RunReader(tmp_path).checkpoint()
    assert (
        checkpoint["n_evals"] == 7
        and checkpoint["events_offset"] > (tmp_path / "events.jsonl").stat().st_size
    )
    note = runlog._cut_back_to(tmp_path, checkpoint)
    assert "wrote the checkpoint event" in note
    assert (tmp_path / "events.jsonl").stat().st_size == checkpoint["events_offset"]
    assert [(e["kind"], e.get("n_evals")) for e in events_of(tmp_path)] == [
        ("start", None),
        ("checkpoint", 7),
    ]


def test_disk_filled_mid_run_on_a_tmpfs(tmp_path):
    """Defect 6: a disk filled mid-run (a small tmpfs): one line, exit 1, no temporary files, and the
    last checkpoint resumes once space returns."""
    with tmpfs(tmp_path / "disk", "512k") as disk:
        if disk is None:
            pytest.skip("mounting a tmpfs is impossible here (needs root)")
        filler = disk / "filler"
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        filler.write_bytes(b"\0" * (free - 96 * 1024))
        code, out, err = run_cli(
            "evolve",
            *SMALL_RUN,
            "--signoff",
            "none",
            "--max-evals",
            "3000",
            "--set",
            "log_every_eval=1",
            "--runs-dir",
            disk / "runs",
        )  # an event per evaluation: the run outgrows the disk well before its end
        assert_one_line_error(code, out, err, "no space left on device", exit_code=1)
        (run_dir,) = list((disk / "runs").iterdir())
        assert not list(run_dir.glob(".*.tmp"))
        checkpoint = json.loads((run_dir / "checkpoint.json").read_text())
        assert 100 <= checkpoint["n_evals"] < 3000
        filler.unlink()
        code, out, err = run_cli(
            "resume", run_dir, "--max-evals", str(checkpoint["n_evals"] + 100), "--quiet"
        )
        assert code == 0, err
        assert events_of(run_dir)[-1]["kind"] == "end"


# ----------------------------------------------------------------------------- read-only locations
def test_read_only_locations(base_run, tmp_path):
    """Defect 7: resume, evolve --runs-dir and export (default --out, or --out elsewhere) on a
    read-only file system: one line each (exit 2), nothing written anywhere; inspect still works."""
    with tmpfs(tmp_path / "ro", "2m") as disk:
        if disk is None:
            pytest.skip("mounting a tmpfs is impossible here (needs root)")
        run_dir = copy_run(base_run, disk)
        (disk / "runs").mkdir()
        remount_read_only(disk)
        before = checksums(disk)
        code, out, err = run_cli("resume", run_dir, "--max-evals", "400", "--quiet")
        assert_one_line_error(code, out, err, "read-only file system")
        code, out, err = run_cli("evolve", *SMALL_RUN, "--max-evals", "50", "--runs-dir", disk / "runs")
        assert_one_line_error(code, out, err, "read-only file system")
        code, out, err = run_cli("export", run_dir, "--lang", "numpy")
        assert_one_line_error(code, out, err, "read-only file system")
        elsewhere = tmp_path / "kernels"
        code, out, err = run_cli("export", run_dir, "--lang", "numpy", "--out", elsewhere)
        assert_one_line_error(code, out, err, "read-only file system")
        assert not elsewhere.exists() or not list(elsewhere.iterdir())
        code, out, err = run_cli("inspect", run_dir)
        assert code == 0, err
        assert checksums(disk) == before


def test_export_writes_no_kernel_without_its_event(base_run, tmp_path, monkeypatch):
    """Defect 7: with --out elsewhere, a failing event append removes the kernel it would describe."""
    import evo.export

    run_dir = copy_run(base_run, tmp_path)

    def full(*args, **kwargs):
        raise StorageError("cannot write events.jsonl: no space left on device")

    monkeypatch.setattr(evo.export, "append_event", full)
    out_dir = tmp_path / "kernels"
    code, out, err = run_cli("export", run_dir, "--lang", "numpy", "--out", out_dir)
    assert_one_line_error(code, out, err, "no space left", exit_code=1)
    assert list(out_dir.iterdir()) == []


# ----------------------------------------------------------------------------- lost export events
def test_append_event_ends_a_torn_last_line(tmp_path):
    """Defect 10: appending after a last line without its newline never glues the new event to it."""
    (tmp_path / "events.jsonl").write_text('{"v": 1, "kind": "start"}\n{"v": 1, "kind": "progr')
    append_event(tmp_path, "export", lang="c")
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert lines[1] == '{"v": 1, "kind": "progr'
    assert json.loads(lines[2])["kind"] == "export"


def test_inspect_after_an_export(base_run, tmp_path):
    """Defect 10: a run whose last event is an export (no time, t is null) still inspects."""
    run_dir = copy_run(base_run, tmp_path)
    assert run_cli("export", run_dir, "--lang", "numpy")[0] == 0
    code, out, err = run_cli("inspect", run_dir)
    assert code == 0, err
    last_t = max(e["t"] for e in events_of(run_dir) if e["t"] is not None)
    assert f"300 evaluations in {last_t:.0f} s" in out


def test_resume_keeps_export_events_and_says_what_it_set_aside(base_run, tmp_path):
    """Defect 10: export events written after a run ended survive a resume; other events after the
    checkpoint are set aside with a line in run.log that says so."""
    run_dir = copy_run(base_run, tmp_path)
    code, out, err = run_cli("export", run_dir, "--lang", "numpy")
    assert code == 0, err
    with open(run_dir / "events.jsonl", "a") as handle:
        handle.write('{"v": 1, "kind": "progress", "t": 1.0, "n_evals": 301}\n')
    code, out, err = run_cli("resume", run_dir, "--max-evals", "350", "--quiet")
    assert code == 0, err
    kinds = [e["kind"] for e in events_of(run_dir)]
    assert kinds.count("export") == 1
    assert kinds.index("export") < kinds.index("resume")
    (aside,) = run_dir.glob("events.after-checkpoint-300.jsonl")
    assert [json.loads(line)["n_evals"] for line in aside.read_text().splitlines()] == [301]
    log = (run_dir / "run.log").read_text()
    assert "moved 1 line(s) written after the checkpoint at 300 evaluations" in log
    assert "kept 1 export event(s)" in log


# ------------------------------------------------------------------------ validation of what is read back
def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _set(key, value):
    return lambda d: d.__setitem__(key, value)


def _front_program_changed(data):
    entries = data["front"] if isinstance(data, dict) else data
    entries[-1]["program"]["out"] = "x"


def _append_text(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


def _insert_ff(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[:200] + b"\xff" + raw[200:])


INSPECT_DAMAGE = {
    "events-0xff": (lambda r: _insert_ff(r / "events.jsonl"), "not UTF-8"),
    "events-not-an-event": (lambda r: _append_text(r / "events.jsonl", "[1, 2]\n"), "not an event"),
    "meta-list": (lambda r: (r / "meta.json").write_text("[]"), "meta.json"),
    "meta-target-string": (lambda r: _edit_json(r / "meta.json", _set("target", "exp2")), "meta.json"),
    "front-not-a-list": (lambda r: (r / "front.json").write_text('{"schema": 1, "front": 5}'), "front.json"),
    "front-entry-missing-field": (
        lambda r: _edit_json(r / "front.json", lambda d: d["front"][0].pop("score")),
        "front.json",
    ),
    "front-hash-mismatch": (
        lambda r: _edit_json(r / "front.json", _front_program_changed),
        "does not match its hash",
    ),
    "checkpoint-offset-mid-line": (
        lambda r: _edit_json(
            r / "checkpoint.json", lambda d: d.__setitem__("events_offset", d["events_offset"] - 7)
        ),
        "mid",
    ),
}


@pytest.mark.parametrize("damage", list(INSPECT_DAMAGE), ids=list(INSPECT_DAMAGE))
def test_inspect_refuses_a_damaged_run_in_one_line(base_run, tmp_path, damage):
    """Defect 11: a damaged events.jsonl, meta.json or front.json: `evo inspect RUN` says so in one
    line (exit 2); `evo inspect runs/` lists it as damaged and goes on with the other runs."""
    runs = tmp_path / "runs"
    runs.mkdir()
    good = copy_run(base_run, runs)
    bad = good.rename(runs / "damaged")
    copy_run(base_run, runs)
    apply, fragment = INSPECT_DAMAGE[damage]
    apply(bad)
    before = checksums(runs)
    code, out, err = run_cli("inspect", bad)
    assert_one_line_error(code, out, err, "damaged" if fragment == "mid" else fragment)
    code, out, err = run_cli("inspect", runs)
    assert code == 0, err
    rows = {line.split()[0]: line for line in out.splitlines()}
    assert "damaged:" in rows["damaged"]
    assert "finished" in rows[base_run.name] and "evals" in rows[base_run.name]
    assert checksums(runs) == before


def _checkpoint_edit(edit):
    return lambda r: _edit_json(r / "checkpoint.json", edit)


def _reset_next_id(d):
    d["next_id"] = 0


def _duplicate_id(d):
    d["population"][1]["id"] = d["population"][0]["id"]


def _offset_mid_line(d):
    d["events_offset"] -= 7


RESUME_DAMAGE = {
    "rng-minus-one": (_checkpoint_edit(lambda d: d["rng"]["state"].__setitem__("state", -1)), "rng"),
    "rng-not-a-state": (_checkpoint_edit(_set("rng", -1)), "rng"),
    "wrong-format": (_checkpoint_edit(_set("format", "evo.checkpoint/99")), "format"),
    "negative-n-evals": (_checkpoint_edit(_set("n_evals", -5)), "n_evals"),
    "reset-next-id": (_checkpoint_edit(_reset_next_id), "next_id"),
    "duplicate-id": (_checkpoint_edit(_duplicate_id), "repeats an id"),
    "front-hash-mismatch": (_checkpoint_edit(_front_program_changed), "does not match its hash"),
    "offset-mid-line": (_checkpoint_edit(_offset_mid_line), "events_offset"),
    "events-0xff-before-offset": (lambda r: _insert_ff(r / "events.jsonl"), "events_offset"),
}


@pytest.mark.parametrize("damage", list(RESUME_DAMAGE), ids=list(RESUME_DAMAGE))
def test_resume_refuses_a_damaged_checkpoint_in_one_line(base_run, tmp_path, damage):
    """Defects 11 and 12: a checkpoint with a bad rng state, format, count, id or hash, or an
    events_offset in mid-line, is refused in one line (exit 2) and nothing in the run changes."""
    run_dir = copy_run(base_run, tmp_path)
    apply, fragment = RESUME_DAMAGE[damage]
    apply(run_dir)
    before = checksums(run_dir)
    code, out, err = run_cli("resume", run_dir, "--max-evals", "400", "--quiet")
    assert_one_line_error(code, out, err, fragment)
    assert checksums(run_dir) == before


def test_deeply_nested_program_file(tmp_path, capsys):
    """Defect 11: a JSON program nested 100,000 deep is a one-line error, not a RecursionError."""
    path = tmp_path / "deep.json"
    path.write_text('{"body": ' + "[" * 100_000 + "]" * 100_000 + "}")
    code, out, err = run_cli("score", path, "--target", "exp2", "--points", "search")
    assert_one_line_error(code, out, err, "deep.json", "nested too deeply")


def test_damaged_run_in_a_real_process(base_run, tmp_path):
    """Defect 11: the console script too prints one line for a run with a 0xff in its events."""
    run_dir = copy_run(base_run, tmp_path)
    _insert_ff(run_dir / "events.jsonl")
    done = subprocess.run([*_console(), "inspect", str(run_dir)], capture_output=True, text=True, timeout=120)
    assert_one_line_error(done.returncode, done.stdout, done.stderr, "not UTF-8")


# ----------------------------------------------------------------------------- smaller points
def test_event_log_and_run_log_are_private(base_run):
    """Defect 15: events.jsonl and run.log are 0600 like the other run files."""
    for name in ("events.jsonl", "run.log", "checkpoint.json", "front.json", "config.json", "meta.json"):
        assert stat.S_IMODE((base_run / name).stat().st_mode) == 0o600, name


def test_interrupted_run_exits_130(monkeypatch, tmp_path):
    """Defect 15: a run stopped by Ctrl-C (here: a stop requested after 50 evaluations) exits 130
    and ends with an `interrupted` end event, resumable."""
    real_file = evo.engine.Engine._file  # files one result (the search's tell and what follows)

    def file_result(self, *args, **kwargs):
        real_file(self, *args, **kwargs)
        if self.state.n_evals == 50:
            self.request_stop("interrupted")

    monkeypatch.setattr(evo.engine.Engine, "_file", file_result)
    runs = tmp_path / "runs"
    code, out, err = run_cli(
        "evolve", *SMALL_RUN, "--signoff", "none", "--max-evals", "300", "--runs-dir", runs
    )
    assert code == 130, err
    (run_dir,) = list(runs.iterdir())
    end = events_of(run_dir)[-1]
    assert end["kind"] == "end" and end["reason"] == "interrupted"


# ----------------------------------------------------------------------------- search -> final gap
def test_inspect_reports_the_search_to_final_gap(base_run):
    """`evo inspect` shows final / search per front entry and the median and max gap of the front."""
    front = json.loads((base_run / "front.json").read_text())["front"]
    signed = [e for e in front if e.get("final")]
    assert signed
    ratios = [float(e["final"]["max_err"]) / float(e["score"]["max_err"]) for e in signed]
    code, out, err = run_cli("inspect", base_run)
    assert code == 0, err
    header = next(line for line in out.splitlines() if line.lstrip().startswith("cost"))
    assert "final/search" in header
    assert f"search -> final gap: median {statistics.median(ratios):.3f}x, max {max(ratios):.3f}x" in out
    code, out, err = run_cli("inspect", base_run, "--json")
    gap = json.loads(out)["gap"]
    assert gap["n"] == len(ratios) and gap["max"] == pytest.approx(max(ratios))


def test_an_event_is_encoded_as_dumps_encodes_it_non_finite_values_included():
    import numpy as np

    plain = {"kind": "front", "t": 0.5, "front": [(1.0, 2.5)], "n": np.int64(3), "x": np.float32(0.25)}
    expected = json.dumps({**plain, "front": [[1.0, 2.5]], "n": 3, "x": 0.25})
    assert event_text(plain) == dumps(plain) == expected
    odd = {"kind": "improve", "max_err": float("inf"), "mean": [float("nan"), -float("inf")]}
    assert event_text(odd) == dumps(odd)
    assert json.loads(event_text(odd)) == {"kind": "improve", "max_err": "inf", "mean": ["nan", "-inf"]}
    assert dumps({"a": RawJSON('{"b": [1, 2]}'), "c": [RawJSON("3")]}) == '{"a": {"b": [1, 2]}, "c": [3]}'
