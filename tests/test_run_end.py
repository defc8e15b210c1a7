"""How a run ends: Ctrl-C at any moment (search or sign-off) leaves a resumable run that finishes
with the uninterrupted front, resume budgets mean what they say, and ``signoff none`` is honoured."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evo.api import evolve, resume
from evo.cli import main
from evo.errors import UsageError
from evo.runlog import RunReader

SMALL = dict(
    target="exp2",
    domain="1,1.001",
    population_size=20,
    tournament_size=4,
    search_points=512,
    select_points=2048,
    data_seed=0,
    checkpoint_every=200,
    mine_every=0,
)
MAX_EVALS = 800


def _command() -> list[str]:
    beside = Path(sys.executable).parent / "evo"
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "evo"]


def _events(run_dir: Path) -> list[dict]:
    return list(RunReader(run_dir).events())


def _checkpoint(runs: Path) -> tuple[Path, dict] | None:
    found = [p for p in runs.iterdir() if (p / "checkpoint.json").exists()] if runs.exists() else []
    if len(found) != 1:
        return None
    try:
        return found[0], json.loads((found[0] / "checkpoint.json").read_text())
    except json.JSONDecodeError:
        return None


def _interrupt(runs: Path, seed: int, moment: str) -> Path:
    """Run ``evo evolve`` in a subprocess and Ctrl-C it at ``moment``: ``search`` (after the first
    checkpoint) or ``signoff`` (after the checkpoint written before the sign-off)."""
    argv = [
        *_command(),
        "evolve",
        "--target",
        "exp2",
        "--domain",
        "1,1.001",
        "--max-evals",
        str(MAX_EVALS),
        "--seed",
        str(seed),
        "--runs-dir",
        str(runs),
        "--signoff",
        "front",
        "--quiet",
        *[a for k, v in SMALL.items() if k not in ("target", "domain") for a in ("--set", f"{k}={v}")],
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            found = _checkpoint(runs)
            if found and (moment == "search" or found[1]["n_evals"] == MAX_EVALS):
                break
            assert proc.poll() is None, f"the run ended before the {moment}: {proc.stderr.read()}"
            time.sleep(0.01)
        else:
            raise AssertionError(f"never reached the {moment}")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "evo resume" in err
    run_dir = found[0]
    end = _events(run_dir)[-1]
    assert end["kind"] == "end" and end["reason"] == "interrupted"
    checkpoint = json.loads((run_dir / "checkpoint.json").read_text())
    assert checkpoint["events_offset"] == (run_dir / "events.jsonl").stat().st_size
    if moment == "search":
        assert end["n_evals"] < MAX_EVALS
    else:
        assert end["n_evals"] == MAX_EVALS and not any(
            e["final"] for e in json.loads((run_dir / "front.json").read_text())["front"][-1:]
        )
    return run_dir


@pytest.mark.parametrize("moments", [("search", "signoff")], ids=["search-and-signoff"])
def test_ctrl_c_at_any_moment_resumes_to_the_uninterrupted_front(tmp_path, moments):
    whole = evolve(SMALL, seed=9, max_evals=MAX_EVALS, signoff="front", runs_dir=str(tmp_path / "whole"))
    expected = json.loads((whole.run_dir / "front.json").read_text())
    assert len(expected["front"]) >= 2 and all(e["final"] for e in expected["front"])
    for moment in moments:
        run_dir = _interrupt(tmp_path / moment, 9, moment)
        result = resume(run_dir)  # no new budget: an interrupted run continues to its own
        assert result.reason == "max_evals" and result.n_evals == MAX_EVALS
        assert json.loads((run_dir / "front.json").read_text()) == expected, moment
        assert _events(run_dir)[-1]["front"] == _events(whole.run_dir)[-1]["front"]
        # and a finished run is not resumed again without a new budget
        with pytest.raises(UsageError, match="larger --max-evals"):
            resume(run_dir)


def test_resume_max_seconds_extends_a_run_that_ended_by_evaluations(tmp_path, capsys):
    part = evolve(SMALL, seed=4, max_evals=300, signoff="none", runs_dir=str(tmp_path))
    elapsed = json.loads((part.run_dir / "checkpoint.json").read_text())["elapsed"]
    # a time budget already spent is refused in one line, like a spent evaluation budget
    code = main(["resume", str(part.run_dir), "--max-seconds", f"{elapsed / 2:.3f}", "--quiet"])
    assert code == 2 and "larger --max-seconds" in capsys.readouterr().err
    result = resume(part.run_dir, max_seconds=elapsed + 2.0)
    assert result.reason == "max_seconds" and result.n_evals > 300


def test_signoff_none_is_honoured_in_real_mode(tmp_path):
    # a relative error of 1 certifies f(x) = x at once; with signoff none nothing is swept
    small = dict(SMALL, search_points=128, select_points=256)
    result = evolve(
        small,
        mode="real",
        ops=("add", "sub", "mul", "div"),
        target_error=1.0,
        seed=1,
        max_evals=100,
        signoff="none",
        runs_dir=str(tmp_path),
    )
    kinds = {e["kind"] for e in _events(result.run_dir)}
    assert "signoff" not in kinds and "end" in kinds
    assert all(e.final is None for e in result.front.entries)
    with pytest.raises(UsageError, match="sign-offs"):
        evolve(
            SMALL,
            target_ulp=1.0,
            stop_when_certified=True,
            signoff="none",
            max_evals=10,
            seed=1,
            runs_dir=str(tmp_path),
        )


def test_a_finished_run_with_an_export_after_its_end_still_needs_a_new_budget(tmp_path):
    from evo.runlog import append_event

    run = evolve(SMALL, seed=5, max_evals=200, signoff="none", runs_dir=str(tmp_path))
    append_event(run.run_dir, "export", lang="c", file=str(tmp_path / "k.c"), hash="0" * 16, verified=[])
    with pytest.raises(UsageError, match="larger --max-evals"):
        resume(run.run_dir)
    assert resume(run.run_dir, max_evals=260).n_evals == 260


def _holds_lock(run_dir: Path, pid: int) -> bool:
    try:
        return (run_dir / "writer.lock").read_text().strip() == str(pid)
    except OSError:
        return False


@pytest.mark.slow
def test_ctrl_c_at_ten_random_moments_resumes_to_the_uninterrupted_front(tmp_path):
    """Ctrl-C at 10 random moments of one run (search, checkpoints, sign-off), each time resumed:
    every stop exits 130 with an ``end`` event, and the run ends with the uninterrupted front."""
    import random

    whole = evolve(SMALL, seed=11, max_evals=MAX_EVALS, signoff="front", runs_dir=str(tmp_path / "whole"))
    expected = json.loads((whole.run_dir / "front.json").read_text())
    rng = random.Random(20261202)
    runs = tmp_path / "cut"
    set_args = [a for k, v in SMALL.items() if k not in ("target", "domain") for a in ("--set", f"{k}={v}")]
    argv = [
        *_command(),
        "evolve",
        "--target",
        "exp2",
        "--domain",
        "1,1.001",
        "--max-evals",
        str(MAX_EVALS),
        "--seed",
        "11",
        "--runs-dir",
        str(runs),
        "--signoff",
        "front",
        "--quiet",
        *set_args,
    ]
    interrupts, run_dir = 0, None
    for _ in range(40):
        if interrupts == 10:
            break
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and proc.poll() is None:
                found = _checkpoint(runs) if run_dir is None else (run_dir, None)
                if found and _holds_lock(found[0], proc.pid):
                    run_dir = found[0]
                    break
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.8))  # a random moment once the process owns the run
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=180)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert run_dir is not None, err
        assert "Traceback" not in err, err
        end = _events(run_dir)[-1]
        assert end["kind"] == "end", end
        if proc.returncode == 0:
            assert end["reason"] == "max_evals"
            break
        assert proc.returncode == 130, err
        assert end["reason"] == "interrupted"
        interrupts += 1
        argv = [*_command(), "resume", str(run_dir), "--quiet"]
    else:
        raise AssertionError("the run neither finished nor took 10 interrupts")
    if _events(run_dir)[-1]["reason"] == "interrupted":
        resume(run_dir)
    print(f"{interrupts} interrupts")
    assert interrupts >= 5, f"only {interrupts} interrupts landed before the run finished"
    assert json.loads((run_dir / "front.json").read_text()) == expected
