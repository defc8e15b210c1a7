"""The llvm-mca cycle table: a real simulation of the host's microkernels, deterministic and cached; a
missing or broken llvm-mca gives one line and the measured table; the cost_source key and flag."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from codegen import cycletable, mca
from evo.config import resolve
from evo.costmodel import host_table, with_cost_table
from evo.errors import UsageError
from primitives.ops import OP_NAMES
from tests.test_cost_model import table

SAMPLE = """\
\t.text
lat_add:
\tmovl\t$1, %eax
.LBB0_1:
\tvaddss\t%xmm1, %xmm0, %xmm0
\t#APP
\t#NO_APP
\tvaddss\t%xmm1, %xmm0, %xmm0
\tdecq\t%rax
\tjne\t.LBB0_1
\tretq
other:
.LBB1_1:
\tvmulss\t%xmm1, %xmm0, %xmm0
\tjne\t.LBB1_1
"""


def test_loop_body_is_the_backward_jump_loop_of_the_function():
    assert mca.loop_body(SAMPLE, "lat_add") == [
        "vaddss\t%xmm1, %xmm0, %xmm0",
        "vaddss\t%xmm1, %xmm0, %xmm0",
        "decq\t%rax",
        "jne\t.LBB0_1",
    ]
    assert mca.loop_body(SAMPLE, "other") == ["vmulss\t%xmm1, %xmm0, %xmm0", "jne\t.LBB1_1"]
    with pytest.raises(mca.McaError, match="no function"):
        mca.loop_body(SAMPLE, "missing")
    with pytest.raises(mca.McaError, match="no loop"):
        mca.loop_body("f:\n\tretq\n", "f")


def _require_mca() -> str:
    found = mca.find_mca()
    if found is None:
        print("llvm-mca is not installed: the simulated table cannot be derived here")
        pytest.skip("llvm-mca not installed (an optional system tool)")
    return found


def test_mca_table_is_a_real_deterministic_simulation():
    _require_mca()
    first, second = mca.mca_table(), mca.mca_table()
    cpu, features, _ = cycletable.host_target()
    assert (first.cpu, first.features) == (cpu, features)
    assert first.source.startswith("llvm-mca ")
    assert set(first.latencies) == set(OP_NAMES) == set(first.rthroughputs)
    # simulated, not timed: two derivations agree exactly
    figures = (first.latency, first.rthroughput, first.loop_overhead, first.sharing)
    assert figures == (second.latency, second.rthroughput, second.loop_overhead, second.sharing)
    assert len(first.sharing) == len(cycletable.op_pairs()) and first.shares("add", "sub") >= 0.5
    lat, thr = first.latencies, first.rthroughputs
    assert lat["div"] > 1.5 * lat["add"] and lat["sqrt"] > 1.5 * lat["mul"] and lat["neg"] <= lat["add"]
    assert 1.0 <= lat["add"] <= 8.0 and thr["div"] > thr["add"]
    assert all(thr[op] < lat[op] for op in OP_NAMES)
    assert 0 < first.loop_overhead < 2.0


def test_mca_source_is_cached_apart_from_the_measured_table(tmp_path):
    _require_mca()
    measured = table(cpu=cycletable.host_target()[0])
    simulated = host_table(tmp_path, source="llvm-mca", notice=pytest.fail)
    assert simulated.source.startswith("llvm-mca")
    files = list((tmp_path / "cycle-tables").iterdir())
    assert len(files) == 1
    # the cache is read back (no second simulation), and the measured source has its own entry
    assert host_table(tmp_path, source="llvm-mca", notice=pytest.fail) == simulated
    assert host_table(tmp_path, measure=lambda: measured, source="measure") == measured
    assert len(list((tmp_path / "cycle-tables").iterdir())) == 2
    config = with_cost_table(resolve({"cost": "throughput", "cost_source": "llvm-mca"}), tmp_path)
    assert config.cost_table == simulated


def _empty_path(tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return empty


def test_missing_mca_says_so_in_one_line_and_falls_back_to_the_measurement(tmp_path, monkeypatch):
    _empty_path(tmp_path, monkeypatch)
    assert mca.find_mca() is None
    with pytest.raises(mca.McaError, match="llvm-mca not found"):
        mca.mca_table()
    notices: list[str] = []
    measured = table()
    got = host_table(tmp_path, measure=lambda: measured, source="llvm-mca", notice=notices.append)
    assert got == measured and got.source == "test"
    assert len(notices) == 1 and "\n" not in notices[0]
    assert "llvm-mca not found" in notices[0] and "measured cycle table" in notices[0]


def test_missing_mca_through_the_config_prints_one_line_on_stderr(tmp_path, monkeypatch, capsys):
    _empty_path(tmp_path, monkeypatch)
    monkeypatch.setattr(cycletable, "host_target", lambda: ("testcpu", "+avx2", "0"))
    monkeypatch.setattr(cycletable, "measure_table", lambda: table())
    config = with_cost_table(resolve({"cost": "latency", "cost_source": "llvm-mca"}), tmp_path)
    assert config.cost_table == table()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cost_source llvm-mca: llvm-mca not found")


def test_broken_mca_falls_back_too(tmp_path, monkeypatch):
    bin_dir = _empty_path(tmp_path, monkeypatch)
    fake = bin_dir / "llvm-mca"
    fake.write_text("#!/bin/sh\necho 'error: unsupported' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    assert mca.find_mca() == str(fake)
    notices: list[str] = []
    got = host_table(tmp_path, measure=lambda: table(), source="llvm-mca", notice=notices.append)
    assert got == table()
    assert len(notices) == 1 and "llvm-mca failed: error: unsupported" in notices[0]


def test_cost_source_key_and_flag(tmp_path):
    assert resolve({}).cost_source == "measure"
    config = resolve({"cost_source": "llvm-mca"})
    assert config.cost_source == "llvm-mca"
    assert resolve(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(UsageError, match="'cost_source' must be one of measure, llvm-mca"):
        resolve({"cost_source": "stopwatch"})
    with pytest.raises(ValueError, match="unknown cost source"):
        host_table(tmp_path, source="stopwatch")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "evo.cli",
            "evolve",
            "--target",
            "exp2",
            "--max-evals",
            "10",
            "--cost-source",
            "stopwatch",
        ],
        capture_output=True,
        text=True,
        env={**os.environ},
    )
    assert done.returncode == 2 and "invalid choice: 'stopwatch'" in done.stderr


def test_a_run_with_the_mca_source_records_the_simulated_table(tmp_path):
    _require_mca()
    from evo.api import evolve, load_run

    base = dict(
        target="exp2",
        population_size=16,
        tournament_size=4,
        search_points=256,
        select_points=1024,
        signoff="none",
        runs_dir=str(tmp_path / "runs"),
        checkpoint_every=100,
        progress_every=100,
    )
    result = evolve(base, max_evals=120, seed=5, cost="throughput", cost_source="llvm-mca")
    run = load_run(result.run_dir)
    assert run.config.cost_source == "llvm-mca"
    assert run.config.cost_table.source.startswith("llvm-mca")
    assert run.meta["cost"]["table"] == run.config.cost_table.to_dict()
    from primitives.cycles import array_cycles

    for entry in run.front.entries:
        assert entry.cost == round(array_cycles(entry.individual.program, run.config.cost_table), 6)
