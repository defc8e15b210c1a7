"""Reading run directories as typed values (``evo.run.Run``): finished, resumed, interrupted and
damaged runs, and what ``evo inspect``, ``evo export`` and program loading print for a fixture run.

``tests/golden/run_exp2_s3`` is a small finished, resumed and exported exp2 run. The outputs in
``tests/golden/run_reading.json`` were printed for it by the reader of run directories before it
was typed (``EVO_UPDATE_GOLDEN=1`` rewrites them).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest

from evo.config import from_mapping
from evo.errors import RunError
from evo.loading import load_program
from evo.objective import Objective
from evo.run import DamagedRun, Run, load_run, scan_runs
from primitives.jsonform import from_dict
from primitives.textform import to_text
from tests.runfiles_helpers import events_of, run_cli

GOLDEN_DIR = Path(__file__).parent / "golden"
FIXTURE = GOLDEN_DIR / "run_exp2_s3"
GOLDEN = GOLDEN_DIR / "run_reading.json"
RUN_NAME = FIXTURE.name


def _copy_fixture(where: Path, name: str = RUN_NAME) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copytree(FIXTURE, where / name))


def _front_json() -> list[dict]:
    return json.loads((FIXTURE / "front.json").read_text())["front"]


def _event_only_hash() -> str:
    """The first program of the fixture's events that is not on its front."""
    on_front = {e["hash"] for e in _front_json()}
    return next(e["hash"] for e in events_of(FIXTURE) if "program" in e and e.get("hash") not in on_front)


def _exported(root: Path, *argv: str) -> dict:
    """stdout and the files one ``evo export`` of a fresh copy of the fixture writes."""
    run = _copy_fixture(root)
    code, out, err = run_cli("export", run, *argv)
    files = {p.name: p.read_text() for p in sorted((run / "exports").iterdir())}
    return {"code": code, "out": out, "err": err, "files": files}


def reading_outputs(root: Path) -> dict:
    """What inspect, export and program loading print for the fixture run (under ``root``)."""
    runs = root / "runs"
    run = _copy_fixture(runs)
    damaged = _copy_fixture(runs, "run_damaged")
    raw = (damaged / "events.jsonl").read_bytes()
    (damaged / "events.jsonl").write_bytes(raw[:200] + b"\xff" + raw[200:])
    event_hash = _event_only_hash()[:8]
    outputs = {
        "inspect": run_cli("inspect", run),
        "inspect_json": run_cli("inspect", run, "--json"),
        "inspect_damaged": run_cli("inspect", damaged),
        "list": run_cli("inspect", runs),
        "list_json": run_cli("inspect", runs, "--json"),
        "program_best": run_cli("inspect", run, "--program", "best", "--latex"),
        "program_best_json": run_cli("inspect", run, "--program", "best", "--json"),
        "program_event_json": run_cli("inspect", run, "--program", event_hash, "--json"),
        "program_unknown": run_cli("inspect", run, "--program", "ffffffffff"),
        "load_best": to_text(load_program(str(run))),
        "load_event": to_text(load_program(f"{run}:{event_hash}")),
        "export_best_numpy": _exported(root / "e1", "--lang", "numpy"),
        "export_front_c": _exported(root / "e2", "--pick", "front", "--lang", "c"),
        "export_front_llvm": _exported(root / "e3", "--pick", "front", "--lang", "llvm", "--name", "k"),
    }
    return json.loads(json.dumps(outputs).replace(str(root), "<ROOT>"))


def _golden() -> dict:
    return json.loads(GOLDEN.read_text())


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict:
    found = reading_outputs(tmp_path_factory.mktemp("reading"))
    if os.environ.get("EVO_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    return found


@pytest.mark.parametrize("key", sorted(json.loads(GOLDEN.read_text())) if GOLDEN.exists() else [])
def test_outputs_match_the_untyped_reader(outputs, key):
    """inspect (run, list, programs), export and load_program print what they printed before."""
    assert outputs[key] == _golden()[key]


def test_a_front_program_named_by_hash_is_its_front_entry(tmp_path):
    """By hash, a front program is its front entry (with its scores), as ``best`` and ``front`` give it:
    its export carries its measured error, and ``inspect --program`` shows the entry."""
    golden = _golden()
    best = Run.load(FIXTURE).best
    best_hash = best.individual.program.canonical_hash()
    code, out, err = run_cli("inspect", FIXTURE, "--program", best_hash[:10], "--json")
    assert [code, out, err] == golden["program_best_json"]
    for entry in _front_json():
        found = _exported(tmp_path / entry["hash"], "--pick", entry["hash"][:10], "--lang", "c")
        (name,) = [n for n in found["files"] if n.endswith(".c")]
        assert entry["hash"][:8] in name
        expected = golden["export_front_c"]["files"][name].replace(RUN_NAME, f"{entry['hash']}/{RUN_NAME}")
        assert found["files"][name] == expected.replace("<ROOT>/e2", str(tmp_path))
        assert "not measured" not in found["files"][name]


def test_a_finished_and_resumed_run_reads_as_its_files_say():
    run = load_run(FIXTURE)
    assert run == Run.load(FIXTURE)
    config = json.loads((FIXTURE / "config.json").read_text())
    meta = json.loads((FIXTURE / "meta.json").read_text())
    events = events_of(FIXTURE)
    # a run written before a config key existed reads with that key at its default
    assert run.config.to_dict() == from_mapping(config).to_dict() and run.meta == meta
    assert run.front.to_list() == _front_json()
    assert (run.target.name, run.target.expr, run.target.domain) == tuple(
        meta["target"][k] for k in ("name", "expr", "domain")
    )
    history = run.history
    assert history.resumes == [e["kind"] for e in events].count("resume") == 1
    assert history.n_evals == max(e.get("n_evals", 0) for e in events)
    assert history.seconds == max(e["t"] for e in events if e["t"] is not None)
    improve = [e for e in events if e["kind"] == "improve"]
    assert [(i.n_evals, i.max_err, i.cost, i.ops) for i in history.improvements] == [
        (e["n_evals"], e["max_err"], e["cost"], e["ops"]) for e in improve
    ]
    signoffs = [e for e in events if e["kind"] == "signoff"]
    assert [(s.hash, s.final, s.certified) for s in history.signoffs] == [
        (e["hash"], float(e["final"]["max_err"]), e["certified"]) for e in signoffs
    ]
    assert [r.n_evals for r in history.progress] == [e["n_evals"] for e in events if e["kind"] == "progress"]
    ends = [e for e in events if e["kind"] == "end"]
    assert len(ends) == 2 and run.end().reason == ends[-1]["reason"]
    assert run.finished and run.has_checkpoint and run.status == "finished" and not history.unfinished
    # best: the objective's, over the entries' best available errors (final where signed off)
    objective = Objective(config["target_ulp"])
    raw_best = min(_front_json(), key=lambda e: objective_key(objective, e))
    assert run.best.individual.program.canonical_hash() == raw_best["hash"]
    assert run.find("best") == run.best == run.lookup("best").entry


def objective_key(objective: Objective, entry: dict) -> tuple:
    from evo.objective import entry_key

    error = float((entry.get("final") or entry["select"])["max_err"])
    return entry_key(entry["cost"], error, objective.target_error)


def test_an_event_only_program_is_found_in_the_events():
    """A program that left the front is still found by hash, from the last event naming it."""
    program_hash = _event_only_hash()
    found = Run.load(FIXTURE).lookup(program_hash[:8])
    last = [e for e in events_of(FIXTURE) if e.get("hash") == program_hash and "program" in e][-1]
    assert found.entry is None and found.event == last and found.record() == last
    assert found.program == from_dict(last["program"])
    with pytest.raises(RunError, match="ambiguous"):
        Run.load(FIXTURE).lookup("")


SMALL = dict(
    target="exp2",
    domain="1,1.001",
    seed=1,
    population_size=20,
    search_points=512,
    select_points=2048,
    checkpoint_every=100,
    progress_every=50,
    max_evals=300,
    signoff="best",
)


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> Path:
    """A run stopped by Ctrl-C after 120 evaluations (an ``interrupted`` end, then a checkpoint)."""
    from evo.api import evolve

    def stop(progress):
        if progress.get("n_evals", 0) >= 120:
            raise KeyboardInterrupt

    result = evolve(SMALL, runs_dir=str(tmp_path_factory.mktemp("interrupted")), on_progress=stop)
    assert result.reason == "interrupted"
    return result.run_dir


def test_an_interrupted_run_reads_as_unfinished_and_resumes_to_its_budget(interrupted, tmp_path):
    run = Run.load(interrupted)
    assert run.end().reason == "interrupted" and run.history.unfinished
    assert run.finished and run.status == "finished" and run.has_checkpoint
    assert 120 <= run.history.n_evals < 300
    copy = Path(shutil.copytree(interrupted, tmp_path / interrupted.name))
    code, out, err = run_cli("resume", copy, "--quiet")  # no new budget: it continues to its old one
    assert code == 0, err
    resumed = Run.load(copy)
    assert resumed.end().reason == "max_evals" and not resumed.history.unfinished
    assert resumed.history.resumes == 1 and resumed.history.n_evals == 300
    assert resumed.front.to_list() == json.loads((copy / "front.json").read_text())["front"]
    summary = run_cli("inspect", copy, "--json")
    assert json.loads(summary[1])["resumes"] == 1 and json.loads(summary[1])["end_reason"] == "max_evals"


def _killed_after_a_checkpoint(run_dir: Path, where: Path) -> Path:
    """The run as a kill right after its first periodic checkpoint would leave it (no end event)."""
    copy = Path(shutil.copytree(run_dir, where / run_dir.name))
    raw = (copy / "events.jsonl").read_bytes()
    lines = raw.splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if json.loads(line)["kind"] == "checkpoint")
    offset = len(b"".join(lines[: first + 1]))
    (copy / "events.jsonl").write_bytes(raw[:offset])
    checkpoint = json.loads((copy / "checkpoint.json").read_text())
    checkpoint["events_offset"] = offset
    (copy / "checkpoint.json").write_text(json.dumps(checkpoint))
    return copy


def test_a_killed_run_reads_as_stopped_or_incomplete(interrupted, tmp_path):
    killed = _killed_after_a_checkpoint(interrupted, tmp_path)
    run = Run.load(killed)
    assert run.end() is None and not run.finished and run.history.unfinished
    assert run.status == "stopped" and run.has_checkpoint
    assert run.history.n_evals == 100
    (killed / "checkpoint.json").unlink()
    assert Run.load(killed).status == "incomplete"
    rows = {row["run"]: row for row in json.loads(run_cli("inspect", tmp_path, "--json")[1])}
    assert rows[killed.name]["status"] == "incomplete"


def _edit(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _prepend(path: Path, data: bytes) -> None:
    path.write_bytes(data + path.read_bytes())


def _bad_improve(lines: list[str]) -> list[str]:
    index = next(i for i, line in enumerate(lines) if '"improve"' in line)
    record = json.loads(lines[index])
    record["max_err"] = "many"
    return [*lines[:index], json.dumps(record), *lines[index + 1 :]]


DAMAGE = {
    "events-not-utf8": (lambda r: _prepend(r / "events.jsonl", b"\xff\n"), "not UTF-8"),
    "event-of-the-wrong-shape": (
        lambda r: (r / "events.jsonl").write_text(
            "\n".join(_bad_improve((r / "events.jsonl").read_text().splitlines())) + "\n"
        ),
        "wrong shape",
    ),
    "front-score-with-an-unknown-field": (
        lambda r: _edit(r / "front.json", lambda d: d["front"][0]["select"].__setitem__("extra", 1)),
        "front",
    ),
    "meta-not-an-object": (lambda r: (r / "meta.json").write_text("[]"), "meta.json"),
    "checkpoint-offset-mid-line": (
        lambda r: _edit(
            r / "checkpoint.json", lambda d: d.__setitem__("events_offset", d["events_offset"] - 7)
        ),
        "damaged",
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_run_is_one_line_and_marked_in_a_scan(tmp_path, damage):
    good = _copy_fixture(tmp_path)
    bad = _copy_fixture(tmp_path, "damaged")
    apply, fragment = DAMAGE[damage]
    apply(bad)
    with pytest.raises(RunError) as caught:
        Run.load(bad)
    message = str(caught.value)
    assert fragment in message and "\n" not in message
    scanned = {r.run_dir.name: r for r in scan_runs(tmp_path)}
    assert isinstance(scanned["damaged"], DamagedRun) and scanned["damaged"].reason == message
    assert isinstance(scanned[good.name], Run) and scanned[good.name] == Run.load(good)
    code, out, err = run_cli("inspect", bad)
    assert code == 2 and err.strip() == f"evo: error: {message}"
    assert math.isfinite(scanned[good.name].best.error)
