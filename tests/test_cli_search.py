"""The search commands of the ``evo`` CLI: evolve, inspect, score of an exported program, resume, and
the one-line error contract (exit 2, no traceback, no run directory created or touched)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evo.cli import main
from primitives.jsonform import from_dict as program_from_dict
from primitives.textform import to_text

RUN_FILES = ("config.json", "meta.json", "events.jsonl", "checkpoint.json", "front.json", "run.log")
SEARCH_ARGS = [
    "--target",
    "exp2",
    "--max-evals",
    "600",
    "--set",
    "population_size=20",
    "--set",
    "search_points=512",
    "--set",
    "select_points=2048",
    "--signoff",
    "best",
    "--quiet",
]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("evo: error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def snapshot(root: Path) -> dict:
    """Every path under ``root`` with, for files, mtime and content."""
    state = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        state[key] = (path.stat().st_mtime_ns, path.read_bytes()) if path.is_file() else "dir"
    return state


def entry_error(entry: dict) -> float:
    return float((entry["final"] or entry["select"])["max_err"])


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """One in-process ``evo evolve`` run shared by the tests below (read-only for them)."""
    runs = tmp_path_factory.mktemp("cli-runs")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["evolve", *SEARCH_ARGS, "--seed", "1", "--runs-dir", str(runs)])
    dirs = [p for p in runs.iterdir() if p.is_dir()]
    return {
        "code": code,
        "out": out.getvalue(),
        "err": err.getvalue(),
        "runs": runs,
        "run": dirs[0] if len(dirs) == 1 else None,
        "dirs": dirs,
    }


def front_of(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "front.json").read_text())["front"]


# ----------------------------------------------------------------------------- evolve
def test_evolve_in_process(cli_run):
    assert cli_run["code"] == 0, cli_run["err"]
    assert "Traceback" not in cli_run["err"]
    assert len(cli_run["dirs"]) == 1
    run_dir = cli_run["run"]
    first = cli_run["out"].splitlines()[0]
    assert "seed 1" in first and str(run_dir) in first
    for name in RUN_FILES:
        assert (run_dir / name).is_file(), name
    # --set and flags reached the run's config; --signoff best signed off exactly one program
    config = json.loads((run_dir / "config.json").read_text())
    assert config["population_size"] == 20 and config["search_points"] == 512 and config["signoff"] == "best"
    assert config["seed"] == 1 and config["max_evals"] == 600
    front = front_of(run_dir)
    signed = [e for e in front if e["final"] is not None]
    assert len(signed) == 1 and "exhaustive" in signed[0]["final"]["points"]
    assert "front after 600 evaluations (max_evals)" in cli_run["out"]


def _console_script() -> list[str]:
    beside = Path(sys.executable).parent / "evo"
    found = str(beside) if beside.exists() else shutil.which("evo")
    assert found, "the 'evo' console script is not installed"
    return [found]


def test_evolve_console_script(tmp_path):
    runs = tmp_path / "runs"
    done = subprocess.run(
        [*_console_script(), "evolve", *SEARCH_ARGS, "--seed", "2", "--runs-dir", str(runs)],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    assert done.stdout.splitlines()[0] == f"evo: seed 2, run {run_dir}"
    for name in RUN_FILES:
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "config.json").read_text())["seed"] == 2


# ----------------------------------------------------------------------------- inspect
def test_inspect_text(capsys, cli_run):
    run_dir = cli_run["run"]
    code, out, err = run(capsys, "inspect", run_dir)
    assert code == 0 and err == ""
    assert "finished" in out and "max_evals" in out and "seed 1" in out and "exp2_0_1" in out
    for entry in front_of(run_dir):
        assert entry["hash"][:12] in out


def test_inspect_json(capsys, cli_run):
    run_dir = cli_run["run"]
    code, out, err = run(capsys, "inspect", run_dir, "--json")
    assert code == 0 and err == ""
    summary = json.loads(out)
    assert summary["status"] == "finished" and summary["end_reason"] == "max_evals"
    assert summary["seed"] == 1 and summary["n_evals"] == 600 and summary["target"] == "exp2_0_1"
    front = front_of(run_dir)
    assert [e["hash"] for e in summary["front"]] == [e["hash"] for e in front]
    assert len(summary["front"]) >= 3
    assert len(summary["signoffs"]) == 1


def test_inspect_best_program(capsys, cli_run):
    run_dir = cli_run["run"]
    front = front_of(run_dir)
    best = min(
        front, key=lambda e: (entry_error(e), e["cost"])
    )  # lowest error (final if signed off), then cost
    code, out, err = run(capsys, "inspect", run_dir, "--program", "best")
    assert code == 0 and err == ""
    assert to_text(program_from_dict(best["program"])).rstrip() in out
    # a hash prefix of a front entry works too
    other = front[0]
    code, out, _ = run(capsys, "inspect", run_dir, "--program", other["hash"][:8])
    assert code == 0
    assert to_text(program_from_dict(other["program"])).rstrip() in out


def test_inspect_runs_directory(capsys, cli_run, tmp_path):
    root = tmp_path / "many"
    root.mkdir()
    for name in ("run-a", "run-b"):
        shutil.copytree(cli_run["run"], root / name)
    (root / "not-a-run").mkdir()
    code, out, err = run(capsys, "inspect", root)
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("run-a") and lines[1].startswith("run-b")
    for line in lines:
        assert "finished" in line and "600 evals" in line


# ----------------------------------------------------------------------------- score and resume
def test_score_an_exported_program(capsys, cli_run, tmp_path):
    run_dir = cli_run["run"]
    (signed,) = [e for e in front_of(run_dir) if e["final"] is not None]
    program_file = tmp_path / "best.json"
    program_file.write_text(json.dumps(signed["program"]))
    code, out, err = run(capsys, "score", program_file, "--target", "exp2", "--points", "final", "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["program"]["hash"] == signed["hash"]
    # the same program on the same exhaustive set gives the run's sign-off score
    assert info["score"]["points"] == signed["final"]["points"]
    assert info["score"]["max_err"] == signed["final"]["max_err"]
    assert info["score"]["n_points"] == signed["final"]["n_points"]


def test_score_a_run_program_by_directory_and_hash(capsys, cli_run):
    run_dir = cli_run["run"]
    (signed,) = [e for e in front_of(run_dir) if e["final"] is not None]
    for spec in (f"{run_dir}:{signed['hash'][:10]}", str(run_dir)):
        code, out, err = run(capsys, "score", spec, "--target", "exp2", "--points", "final", "--json")
        assert code == 0, err
        info = json.loads(out)
        if spec != str(run_dir):
            assert info["program"]["hash"] == signed["hash"]
            assert info["score"]["max_err"] == signed["final"]["max_err"]
    code, out, err = run(capsys, "score", f"{run_dir}:ffffffffffff", "--target", "exp2")
    assert_one_line_error(code, out, err, "no program with hash")


def test_resume_command(capsys, cli_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(cli_run["run"], copy)
    code, out, err = run(capsys, "resume", copy, "--max-evals", "900", "--quiet")
    assert code == 0, err
    assert out.splitlines()[0] == f"evo: seed 1, run {copy} (resumed)"
    assert "front after 900 evaluations (max_evals)" in out
    events = [json.loads(line) for line in (copy / "events.jsonl").read_text().splitlines()]
    assert [e["kind"] for e in events].count("end") == 2
    assert [e["n_evals"] for e in events if e["kind"] == "resume"] == [600]
    assert events[-1]["kind"] == "end" and events[-1]["n_evals"] == 900
    assert json.loads((copy / "checkpoint.json").read_text())["n_evals"] == 900


# ----------------------------------------------------------------------------- errors
EVOLVE_COMMON = [
    "--max-evals",
    "600",
    "--seed",
    "1",
    "--set",
    "population_size=20",
    "--signoff",
    "none",
    "--quiet",
]
EVOLVE_ERRORS = [
    (["--target", "nope", *EVOLVE_COMMON], ["unknown target 'nope'"]),
    (["--target", "exp2", "--domain", "1,0", *EVOLVE_COMMON], ["reversed"]),
    (["--target", "exp2", "--domain", "a,b", *EVOLVE_COMMON], ["'a'"]),
    (["--target", "exp2", "--ops", "add,pow", *EVOLVE_COMMON], ["unknown op 'pow'"]),
    (
        ["--target", "exp2", "--set", "populaton_size=3", *EVOLVE_COMMON],
        ["populaton_size", "did you mean 'population_size'"],
    ),
    (["--target", "exp2", "--seed", "1", "--quiet"], ["budget"]),
    (["--expr", "x*x", *EVOLVE_COMMON], ["domain"]),
]


@pytest.mark.parametrize(
    ("args", "fragments"),
    EVOLVE_ERRORS,
    ids=[
        "unknown-target",
        "reversed-domain",
        "non-numeric-domain",
        "unknown-op",
        "unknown-set-key",
        "missing-budget",
        "expr-without-domain",
    ],
)
def test_bad_evolve_input(capsys, cli_run, args, fragments):
    runs = cli_run["runs"]
    before = snapshot(runs)
    code, out, err = run(capsys, "evolve", *args, "--runs-dir", runs)
    assert_one_line_error(code, out, err, *fragments)
    assert snapshot(runs) == before


def test_bad_evolve_input_creates_no_runs_directory(capsys, tmp_path):
    missing = tmp_path / "fresh-runs"
    code, out, err = run(capsys, "evolve", "--target", "nope", *EVOLVE_COMMON, "--runs-dir", missing)
    assert_one_line_error(code, out, err, "unknown target")
    assert not missing.exists()


def test_resume_missing_directory(capsys, cli_run, tmp_path):
    before = snapshot(cli_run["runs"])
    code, out, err = run(capsys, "resume", tmp_path / "nope", "--max-evals", "900")
    assert_one_line_error(code, out, err, "does not exist")
    assert not (tmp_path / "nope").exists()
    assert snapshot(cli_run["runs"]) == before


def test_resume_directory_that_is_not_a_run(capsys, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("hello")
    before = snapshot(plain)
    code, out, err = run(capsys, "resume", plain, "--max-evals", "900")
    assert_one_line_error(code, out, err, "not a run directory")
    assert snapshot(plain) == before


@pytest.mark.parametrize(
    "garbage", ["garbage\n", '{"schema": 1}\n', "[1, 2]\n", ""], ids=["text", "no-fields", "list", "empty"]
)
def test_resume_corrupt_checkpoint(capsys, cli_run, tmp_path, garbage):
    copy = tmp_path / "run"
    shutil.copytree(cli_run["run"], copy)
    (copy / "checkpoint.json").write_text(garbage)
    before, before_runs = snapshot(copy), snapshot(cli_run["runs"])
    code, out, err = run(capsys, "resume", copy, "--max-evals", "900")
    assert_one_line_error(code, out, err, "checkpoint.json")
    assert snapshot(copy) == before
    assert snapshot(cli_run["runs"]) == before_runs


def test_inspect_missing_directory(capsys, tmp_path):
    code, out, err = run(capsys, "inspect", tmp_path / "nope")
    assert_one_line_error(code, out, err, "does not exist")


def test_inspect_unknown_program_hash(capsys, cli_run):
    before = snapshot(cli_run["runs"])
    code, out, err = run(capsys, "inspect", cli_run["run"], "--program", "deadbeef")
    assert_one_line_error(code, out, err, "deadbeef")
    assert snapshot(cli_run["runs"]) == before
