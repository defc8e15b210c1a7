"""The search loop end to end (tiny searches): determinism, resume (also after SIGKILL), the run
directory, hard-point mining, restarts, certification and Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evo.api import evolve, load_run, resume
from evo.config import from_mapping
from evo.front import FrontEntry, ParetoFront
from evo.runlog import NONDETERMINISTIC_FIELDS, RunReader, strip_nondeterministic

# Tiny searches on exp2; every test uses the same data_seed and point-set sizes so the mpmath
# references are computed once per session (EVO_CACHE_DIR, see conftest.py).
BASE = dict(
    target="exp2",
    population_size=20,
    tournament_size=4,
    search_points=512,
    select_points=2048,
    signoff="none",
    data_seed=0,
)
# exp2 on [1, 1.001] has 8390 float32 values: sweeps (sign-off, mining) over it are instant.
SMALL = dict(BASE, domain="1,1.001")
RUN_FILES = ("config.json", "meta.json", "events.jsonl", "checkpoint.json", "front.json", "run.log")


def events(run_dir) -> list[dict]:
    return list(RunReader(run_dir).events())


def stripped(run_dir) -> list[dict]:
    return [strip_nondeterministic(e) for e in events(run_dir)]


def improvements(evs: list[dict]) -> list[tuple]:
    return [(e["kind"], e["n_evals"], e["hash"]) for e in evs if e["kind"] in ("improve", "front")]


def may_evict(a: dict, b: dict) -> bool:
    """front.json entries: a dominates b and may evict it (a sampled entry never evicts a verified one)."""

    def err(e):
        return float((e["final"] or e["select"])["max_err"])

    if b["final"] is not None and a["final"] is None:
        return False
    return a["cost"] <= b["cost"] and err(a) <= err(b) and (a["cost"] < b["cost"] or err(a) < err(b))


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    result = evolve(BASE, max_evals=600, seed=1, runs_dir=str(runs), checkpoint_every=200, progress_every=100)
    return result


# ----------------------------------------------------------------------------- determinism
def test_same_seed_same_events_different_seed_different_events(tmp_path):
    kw = dict(
        BASE,
        max_evals=700,
        checkpoint_every=200,
        progress_every=100,
        log_every_eval=25,
        runs_dir=str(tmp_path),
    )
    a = evolve(kw, seed=5)
    b = evolve(kw, seed=5)
    c = evolve(kw, seed=6)
    assert a.run_dir != b.run_dir  # a fresh directory for every run
    ea, eb, ec = stripped(a.run_dir), stripped(b.run_dir), stripped(c.run_dir)
    assert ea == eb
    kinds = {e["kind"] for e in ea}
    assert {"start", "improve", "front", "progress", "checkpoint", "eval", "end"} <= kinds
    for e in ea:
        assert not set(e) & NONDETERMINISTIC_FIELDS
    # the raw events do differ in timing fields, which is exactly what stripping removes
    assert all("t" in e for e in events(a.run_dir))
    # another seed takes another path (not only another "seed" field in the start event)
    assert improvements(ea) != improvements(ec)
    assert len(improvements(ea)) >= 4
    # the fronts agree too
    assert json.loads((a.run_dir / "front.json").read_text()) == json.loads(
        (b.run_dir / "front.json").read_text()
    )


# ----------------------------------------------------------------------------- resume
def _without_boundary(evs: list[dict], at: int) -> list[dict]:
    return [e for e in evs if not (e["kind"] in ("end", "resume") and e["n_evals"] == at)]


@pytest.mark.parametrize(
    "extra",
    [
        {},
        # with hard-point mining and restarts: the checkpoint must carry hard points, epochs, seeds
        dict(domain="1,1.001", mine_every=100, mine_below=1e9, restart_after=150),
    ],
    ids=["plain", "mining-and-restarts"],
)
def test_resume_continues_the_uninterrupted_stream(tmp_path, extra):
    kw = dict(BASE, **extra, seed=3, checkpoint_every=200, progress_every=100, runs_dir=str(tmp_path))
    whole = evolve(kw, max_evals=1000)
    part = evolve(kw, max_evals=400)
    assert part.reason == "max_evals" and part.n_evals == 400
    resumed = resume(part.run_dir, max_evals=1000)
    assert resumed.run_dir == part.run_dir and resumed.n_evals == 1000 and resumed.reason == "max_evals"
    ew, ep = stripped(whole.run_dir), stripped(part.run_dir)
    boundary = [e["kind"] for e in ep if e["kind"] in ("end", "resume")]
    assert boundary == ["end", "resume", "end"]
    assert [e for e in ep if e["kind"] == "resume"][0]["max_evals"] == 1000
    # The stopped run's `end` and the `resume` at the boundary are the only differences: the
    # checkpoint after `end` holds the full state (population, RNG, counters, hard points, epoch),
    # sign-off is off (signoff="none") so `end` changed nothing, and progress/checkpoint events are
    # driven by n_evals. Nothing else needs filtering (verified: the remaining streams are equal).
    assert _without_boundary(ep, 400) == ew
    if extra:
        kinds = {e["kind"] for e in ew}
        assert {"harden", "restart"} <= kinds  # the variant really exercises both
    assert json.loads((whole.run_dir / "front.json").read_text()) == json.loads(
        (part.run_dir / "front.json").read_text()
    )


def test_resume_with_per_eval_events_continues_the_uninterrupted_stream(tmp_path):
    """Same contract with ``log_every_eval`` on: eval events must match too (runs/README.md: "a run
    resumed from a checkpoint continues the same stream as an uninterrupted run (apart from its
    end and resume events at the boundary)"; fields that depend on caching are meant to be listed
    in NONDETERMINISTIC_FIELDS)."""
    kw = dict(
        BASE, seed=3, checkpoint_every=200, progress_every=100, log_every_eval=1, runs_dir=str(tmp_path)
    )
    whole = evolve(kw, max_evals=1000)
    part = evolve(kw, max_evals=400)
    resume(part.run_dir, max_evals=1000)
    ew, ep = stripped(whole.run_dir), _without_boundary(stripped(part.run_dir), 400)
    assert len(ew) == len(ep)
    diffs = [(a, b) for a, b in zip(ew, ep, strict=True) if a != b]
    assert not diffs, f"{len(diffs)} events differ, first: {diffs[0]}"


def _wait_for(predicate, timeout: float, what: str, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(
                f"process ended early ({proc.returncode}) waiting for {what}: {proc.stderr.read()}"
            )
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _single_run_dir(runs: Path) -> Path | None:
    found = [p for p in runs.iterdir() if (p / "checkpoint.json").exists()] if runs.exists() else []
    return found[0] if len(found) == 1 else None


def _checkpoint_events(run_dir: Path) -> int:
    return sum(1 for e in RunReader(run_dir).events("checkpoint"))


def test_resume_after_sigkill(tmp_path):
    runs = tmp_path / "runs"
    kw = dict(BASE, seed=11, checkpoint_every=200, log_every_eval=1, runs_dir=str(runs))
    code = f"from evo.api import evolve; evolve({kw!r}, max_evals=10**7)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        run_dir = _wait_for(lambda: _single_run_dir(runs), 120, "a checkpoint", proc)
        _wait_for(lambda: _checkpoint_events(run_dir) >= 2, 120, "two checkpoints", proc)
        # Freeze the process, and kill it only when events were written after its last checkpoint
        # (so there is a tail to preserve); otherwise let it run a little and try again.
        for _ in range(200):
            os.kill(proc.pid, signal.SIGSTOP)
            checkpoint = json.loads((run_dir / "checkpoint.json").read_text())
            if (run_dir / "events.jsonl").stat().st_size > checkpoint["events_offset"]:
                os.kill(proc.pid, signal.SIGKILL)
                break
            os.kill(proc.pid, signal.SIGCONT)
            time.sleep(0.02)
        else:
            raise AssertionError("never caught the run with events after its checkpoint")
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    checkpoint = json.loads((run_dir / "checkpoint.json").read_text())
    at, offset = checkpoint["n_evals"], checkpoint["events_offset"]
    assert at >= 200 and at % 200 == 0
    before = (run_dir / "events.jsonl").read_bytes()
    tail = before[offset:]
    assert tail and not any(e["kind"] == "end" for e in events(run_dir))

    result = resume(run_dir, max_evals=at + 300)
    assert result.n_evals == at + 300 and result.reason == "max_evals"

    kept = run_dir / f"events.after-checkpoint-{at}.jsonl"
    assert kept.read_bytes() == tail  # the killed run's tail is kept, byte for byte
    after = (run_dir / "events.jsonl").read_bytes()
    assert after.startswith(before[:offset])  # everything up to the checkpoint is untouched
    evs = events(run_dir)
    assert evs[-1]["kind"] == "end" and evs[-1]["n_evals"] == at + 300
    assert [e["n_evals"] for e in evs if e["kind"] == "resume"] == [at]
    for kind in ("checkpoint", "improve", "eval"):
        counts = [e["n_evals"] for e in evs if e["kind"] == kind]
        assert len(counts) == len(set(counts)), f"duplicated n_evals in {kind} events"
    n = [e["n_evals"] for e in evs if "n_evals" in e]
    assert n == sorted(n)
    assert [e["n_evals"] for e in evs if e["kind"] == "eval"] == list(range(1, at + 301))

    # and the stream is the one an uninterrupted run writes (the resume event aside)
    whole = evolve(kw, max_evals=at + 300, runs_dir=str(tmp_path / "whole"))

    def comparable(run):
        return [e for e in stripped(run) if e["kind"] != "resume"]

    assert comparable(run_dir) == comparable(whole.run_dir)


# ----------------------------------------------------------------------------- the run directory
def test_run_directory_has_every_file(plain_run):
    for name in RUN_FILES:
        path = plain_run.run_dir / name
        assert path.is_file() and path.stat().st_size > 0, name
    meta = json.loads((plain_run.run_dir / "meta.json").read_text())
    assert meta["schema"] == 1 and meta["target"]["name"] == "exp2_0_1"
    checkpoint = json.loads((plain_run.run_dir / "checkpoint.json").read_text())
    assert checkpoint["n_evals"] == 600
    # the final checkpoint is written after the end event: it covers the whole event log
    assert checkpoint["events_offset"] == (plain_run.run_dir / "events.jsonl").stat().st_size
    evs = events(plain_run.run_dir)
    assert evs[0]["kind"] == "start" and evs[-1]["kind"] == "end" and evs[-1]["reason"] == "max_evals"
    assert all(e["v"] == 1 for e in evs)
    assert [e["n_evals"] for e in evs if e["kind"] == "checkpoint"] == [200, 400, 600]
    assert [e["n_evals"] for e in evs if e["kind"] == "progress"] == list(range(100, 601, 100))
    assert "end (max_evals) after 600 evaluations" in (plain_run.run_dir / "run.log").read_text()


def test_config_json_round_trips_and_records_the_seed(plain_run):
    reader = RunReader(plain_run.run_dir)
    assert reader.config == plain_run.config
    assert reader.config.seed == 1
    assert reader.config.to_dict() == json.loads((plain_run.run_dir / "config.json").read_text())
    assert plain_run.run_dir.name.endswith("_exp2_0_1_s1")


def test_seed_drawn_when_none_is_given_is_recorded_and_replays(tmp_path):
    started = []
    result = evolve(
        BASE, max_evals=300, runs_dir=str(tmp_path / "a"), on_start=lambda d, c: started.append((d, c.seed))
    )
    seed = result.config.seed
    assert isinstance(seed, int) and seed >= 0
    assert started == [(result.run_dir, seed)]
    config = RunReader(result.run_dir).config
    assert config.seed == seed
    assert events(result.run_dir)[0]["seed"] == seed
    assert result.run_dir.name.endswith(f"_s{seed}")
    # config.json is enough to replay the run
    replay = evolve(from_mapping({**config.to_dict(), "runs_dir": str(tmp_path / "b")}))
    assert stripped(replay.run_dir) == stripped(result.run_dir)


def test_front_json_has_no_dominated_entries_and_load_run_agrees(plain_run):
    data = json.loads((plain_run.run_dir / "front.json").read_text())
    front = data["front"]
    assert data["schema"] == 1 and len(front) >= 3
    costs = [e["cost"] for e in front]
    assert costs == sorted(costs)
    for a in front:
        for b in front:
            if a is not b:
                assert not may_evict(a, b)
    run = load_run(plain_run.run_dir)
    assert run.finished
    assert run.front == plain_run.front
    assert run.front == ParetoFront.from_list(front)
    assert run.config == plain_run.config
    assert run.best == plain_run.best
    assert isinstance(run.best, FrontEntry)
    assert run.best.individual.program.canonical_hash() in {e["hash"] for e in front}
    # the last front event lists the same front
    last = [e for e in events(plain_run.run_dir) if e["kind"] == "front"][-1]
    assert [h for _, _, h in last["front"]] == [e["hash"] for e in front]


# ----------------------------------------------------------------------------- mining and restarts
POINTS = re.compile(r"\((?:sample|exhaustive), (\d+) points")


def test_hard_point_mining_grows_the_search_set(tmp_path):
    # selection=error and f(x) = x seeds: the best keeps moving, so every mining round finds fresh
    # worst points (classical seeds start near the optimum, where mining finds nothing new)
    result = evolve(
        SMALL,
        seed=2,
        seed_from="identity",
        max_evals=500,
        mine_every=100,
        mine_below=1e9,
        restart_after=0,
        selection="error",
        runs_dir=str(tmp_path),
    )
    evs = events(result.run_dir)
    base = int(POINTS.search(evs[0]["search"]).group(1))
    hardens = [e for e in evs if e["kind"] == "harden"]
    assert len(hardens) >= 2
    total = 0
    for e in hardens:
        assert e["n_evals"] % 100 == 0
        assert 0 < e["added"] <= 32  # mine_points default
        total += e["added"]
        assert e["hard_points"] == total
        # the new search set is the sampled one plus every hard point so far
        assert int(POINTS.search(e["search"]).group(1)) == base + total
    checkpoint = json.loads((result.run_dir / "checkpoint.json").read_text())
    assert len(checkpoint["hard_points"]) == total


def test_restart_on_stagnation(tmp_path):
    result = evolve(
        SMALL,
        seed=4,
        max_evals=800,
        restart_after=100,
        mine_every=0,
        log_every_eval=1,
        runs_dir=str(tmp_path),
    )
    assert result.reason == "max_evals" and result.n_evals == 800
    evs = events(result.run_dir)
    restarts = [e for e in evs if e["kind"] == "restart"]
    assert len(restarts) >= 2
    assert [e["epoch"] for e in restarts] == list(range(1, len(restarts) + 1))
    evals = {e["n_evals"]: e for e in evs if e["kind"] == "eval"}
    for e in restarts:
        assert e["stagnant_for"] >= 100
        # the population starts over from the seeds (population_size of them)
        following = [evals[n]["mutation"] for n in range(e["n_evals"] + 1, min(e["n_evals"] + 21, 801))]
        assert following and all(m == "seed" for m in following)
    # the best is kept across restarts: improve events never get worse
    best = [e["max_err"] for e in evs if e["kind"] == "improve"]
    assert best == sorted(best, reverse=True)
    assert evs[-1]["kind"] == "end"


# ----------------------------------------------------------------------------- certification
def test_stop_when_certified(tmp_path):
    result = evolve(
        dict(SMALL, signoff="front"),
        seed=2,
        max_evals=5000,
        target_ulp=1e6,
        stop_when_certified=True,
        runs_dir=str(tmp_path),
    )
    assert result.reason == "certified"
    assert result.n_evals < 5000
    evs = events(result.run_dir)
    certified = [e for e in evs if e["kind"] == "signoff" and e["certified"]]
    assert certified
    for e in certified:
        assert "exhaustive" in e["final"]["points"]
        assert float(e["final"]["max_err"]) <= 1e6
        assert e["final"]["n_points"] == 8390  # every float32 in [1, 1.001]
    assert evs[-1]["kind"] == "end" and evs[-1]["reason"] == "certified"
    assert result.best is not None and result.best.final is not None and result.best.final.max_err <= 1e6


# ----------------------------------------------------------------------------- Ctrl-C
def test_sigint_stops_cleanly(tmp_path):
    runs = tmp_path / "runs"
    beside = Path(sys.executable).parent / "evo"
    command = [str(beside)] if beside.exists() else [sys.executable, "-m", "evo"]
    argv = [
        *command,
        "evolve",
        "--target",
        "exp2",
        "--max-evals",
        "10000000",
        "--seed",
        "7",
        "--runs-dir",
        str(runs),
        "--set",
        "population_size=20",
        "--tournament",
        "4",
        "--set",
        "search_points=512",
        "--set",
        "select_points=2048",
        "--set",
        "checkpoint_every=200",
        "--signoff",
        "none",
        "--quiet",
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run_dir = _wait_for(lambda: _single_run_dir(runs), 120, "a checkpoint", proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err  # interrupted: resumable, but not finished
    assert "Traceback" not in err
    assert out.splitlines()[0] == f"evo: seed 7, run {run_dir}"
    evs = events(run_dir)
    end = evs[-1]
    assert end["kind"] == "end" and end["reason"] == "interrupted"
    assert end["n_evals"] < 10_000_000
    checkpoint = json.loads((run_dir / "checkpoint.json").read_text())
    assert checkpoint["n_evals"] == end["n_evals"]
    assert checkpoint["events_offset"] == (run_dir / "events.jsonl").stat().st_size
    assert "(interrupted)" in out
    # and the interrupted run can be resumed
    result = resume(run_dir, max_evals=end["n_evals"] + 100)
    assert result.n_evals == end["n_evals"] + 100
