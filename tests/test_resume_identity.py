"""Resume checks identity (defect 3 of the hardening list): an edited config.json is refused, exit 2.

Before the check, changing ``target`` from exp2 to erf in config.json and resuming scored new
children against erf and the old front against exp2, while reports still said exp2.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest

from evo.api import resume
from evo.cli import main
from evo.errors import RunError

RUN_ARGS = [
    "--target",
    "exp2",
    "--domain",
    "1,1.001",
    "--max-evals",
    "120",
    "--seed",
    "5",
    "--set",
    "population_size=10",
    "--set",
    "tournament_size=3",
    "--set",
    "search_points=256",
    "--set",
    "select_points=1024",
    "--set",
    "checkpoint_every=50",
    "--signoff",
    "none",
    "--quiet",
]


def cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("identity-runs")
    code, _, err = cli("evolve", *RUN_ARGS, "--runs-dir", runs)
    assert code == 0, err
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    return run_dir


def edited(tiny_run: Path, tmp_path: Path, meta_identity: bool = True, **changes) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    config = json.loads((copy / "config.json").read_text())
    config.update(changes)
    (copy / "config.json").write_text(json.dumps(config))
    if not meta_identity:  # a run written before meta.json recorded its identity
        meta = json.loads((copy / "meta.json").read_text())
        meta.pop("identity")
        (copy / "meta.json").write_text(json.dumps(meta))
    return copy


def files(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_meta_records_the_identity(tiny_run):
    identity = json.loads((tiny_run / "meta.json").read_text())["identity"]
    assert identity["target"] == "exp2_0_1_custom" and identity["mode"] == "float32"
    assert identity["ops"] == ["add", "sub", "mul", "div", "fma"]
    assert len(identity["search"]) == 32 and len(identity["select"]) == 32


@pytest.mark.parametrize("meta_identity", [True, False], ids=["recorded", "older-run"])
@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"target": "erf"}, "target"),
        ({"domain": "1,1.002"}, "domain"),
        ({"target": None, "expr": "2**x + x/1000", "domain": "1,1.001"}, "expr"),
        ({"data_seed": 1}, "search"),
        ({"select_points": 2048}, "select"),
        ({"mode": "real"}, "mode"),
        ({"ops": ["add", "mul"]}, "ops"),
    ],
    ids=["target", "domain", "expr", "data_seed", "select_points", "mode", "ops"],
)
def test_an_edited_config_is_refused_on_resume(tiny_run, tmp_path, changes, fragment, meta_identity):
    if not meta_identity and fragment == "ops" and changes["ops"] == ["add", "mul"]:
        changes = {"ops": ["add", "sub"]}  # without a record, only ops the programs use can be checked
    run_dir = edited(tiny_run, tmp_path, meta_identity, **changes)
    before = files(run_dir)
    code, out, err = cli("resume", run_dir, "--max-evals", "400", "--quiet")
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "does not match the run" in lines[0] and fragment in lines[0], lines[0]
    assert files(run_dir) == before  # refused before anything was written or moved


def test_the_api_raises_a_run_error(tiny_run, tmp_path):
    run_dir = edited(tiny_run, tmp_path, target="erf")
    with pytest.raises(
        RunError, match="target is 'erf_0_1_custom' in config.json but 'exp2_0_1_custom' in meta.json"
    ):
        resume(run_dir, max_evals=400)


def test_an_unedited_run_resumes(tiny_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    code, out, err = cli("resume", copy, "--max-evals", "160", "--quiet")
    assert code == 0, err
    assert "front after 160 evaluations" in out
