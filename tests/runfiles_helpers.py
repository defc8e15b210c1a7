"""Shared helpers of the run-file tests: a small finished run, one-line error checks, checksums."""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
import subprocess
from pathlib import Path

from evo.cli import main

#: a small exp2 search on [1, 1.001] (8390 float32s: the final sign-off is exhaustive and quick)
SMALL_RUN = [
    "--target",
    "exp2",
    "--domain",
    "1,1.001",
    "--seed",
    "1",
    "--set",
    "population_size=20",
    "--set",
    "search_points=512",
    "--set",
    "select_points=2048",
    "--set",
    "checkpoint_every=100",
    "--quiet",
]
LOCK_FILE = "writer.lock"


def run_cli(*argv) -> tuple[int, str, str]:
    """``evo ARGV`` in-process; returns (exit code, stdout, stderr). An escaping exception fails the test."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def make_run(runs: Path, *extra: str) -> Path:
    code, out, err = run_cli("evolve", *SMALL_RUN, "--runs-dir", runs, *extra)
    assert code == 0, err
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    return run_dir


def assert_one_line_error(code: int, out: str, err: str, *fragments: str, exit_code: int = 2) -> str:
    assert code == exit_code, (code, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("evo: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def checksums(root: Path) -> dict[str, str]:
    """Content digest of every file under ``root`` (the lock file excepted: it holds the last
    writer's pid)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != LOCK_FILE
    }


def copy_run(run_dir: Path, where: Path) -> Path:
    copy = where / run_dir.name
    shutil.copytree(run_dir, copy)
    (copy / LOCK_FILE).unlink(missing_ok=True)
    return copy


def events_of(run_dir: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]


@contextlib.contextmanager
def tmpfs(where: Path, size: str = "1m"):
    """A small tmpfs mounted at ``where`` (yields None, with the reason printed, where mounting is
    impossible)."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        print(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})")
        yield None
        return
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def remount_read_only(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
