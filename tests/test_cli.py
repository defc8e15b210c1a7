"""The ``evo`` command line: the targets and score verbs, and the one-line error contract (exit 2)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evo.cli import main
from primitives.jsonform import dumps
from primitives.program import X, instr, make_program
from primitives.textform import to_text


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """Keep the user's reference cache untouched: every test gets its own."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("EVO_CACHE_DIR", str(directory))
    return directory


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 2
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("evo: error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# ----------------------------------------------------------------------------- targets
def test_targets_lists_the_builtins(capsys):
    code, out, err = run(capsys, "targets")
    assert code == 0 and err == ""
    assert "exp2_0_1" in out and "sin_pi4" in out
    # the exp2 row shows the float32 count of [0, 1] and the 6-op FMA anchor
    row = next(line for line in out.splitlines() if line.startswith("exp2_0_1"))
    assert "1,065,353,217" in row and "6 ops" in row


def test_targets_json(capsys):
    code, out, _ = run(capsys, "targets", "--json")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)}
    exp2 = rows["exp2_0_1"]
    assert exp2["aliases"] == ["exp2"]
    assert exp2["float32_points"] == 0x3F800000 + 1
    assert exp2["domain"] == "[0x0p+0, 0x1p+0]"
    assert exp2["anchor_ops"] == 6 and exp2["anchor_max_ulp"] < 1
    assert rows["sin_pi4"]["domain"] == "[-0x1.921fb6p-1, 0x1.921fb6p-1]"


def _console_script() -> str:
    beside = Path(sys.executable).parent / "evo"
    found = str(beside) if beside.exists() else shutil.which("evo")
    assert found, "the 'evo' console script is not installed"
    return found


def test_console_script_targets(cache_dir):
    env = dict(os.environ, EVO_CACHE_DIR=str(cache_dir))
    done = subprocess.run(
        [_console_script(), "targets"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "exp2_0_1" in done.stdout
    assert done.stderr == ""


def test_console_script_error_contract(cache_dir, tmp_path):
    env = dict(os.environ, EVO_CACHE_DIR=str(cache_dir))
    missing = str(tmp_path / "missing.json")
    done = subprocess.run(
        [_console_script(), "score", missing, "--target", "exp2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert_one_line_error(done.returncode, done.stdout, done.stderr, "does not exist")


# ----------------------------------------------------------------------------- score
MAX_ERROR = re.compile(r"^max error\s+(\S+) ULP at x = ", re.MULTILINE)


def test_score_anchor_on_search_points(capsys, cache_dir):
    code, out, err = run(capsys, "score", "anchor:exp2", "--target", "exp2", "--points", "search")
    assert code == 0 and err == ""
    match = MAX_ERROR.search(out)
    assert match, out
    assert 0.0 < float(match.group(1)) < 1.0
    assert "6 ops" in out and "exp2_0_1" in out and "4096 points" in out
    assert any(cache_dir.iterdir())  # the references went to EVO_CACHE_DIR


def test_score_json_output(capsys):
    code, out, _ = run(capsys, "score", "anchor:exp2", "--target", "exp2", "--points", "search", "--json")
    assert code == 0
    info = json.loads(out)
    assert info["program"]["ops"] == 6
    assert info["target"]["name"] == "exp2_0_1"
    assert info["score"]["n_points"] == 4096 and info["score"]["max_err"] < 1.0
    assert info["score"]["n_nonfinite"] == 0


def test_score_program_files(capsys, tmp_path):
    square = make_program([instr("mul", X, X)])
    json_file = tmp_path / "square.json"
    json_file.write_text(dumps(square))
    text_file = tmp_path / "square.txt"
    text_file.write_text(to_text(square))
    outputs = []
    for path in (json_file, text_file):
        code, out, err = run(
            capsys, "score", str(path), "--expr", "x*x", "--domain", "-1,1", "--points", "search", "--json"
        )
        assert code == 0, err
        outputs.append(json.loads(out))
    for info in outputs:
        # x*x in float32 is the correctly rounded x^2: exact everywhere
        assert info["score"]["max_err"] <= 0.5
        assert info["score"]["n_exact"] == info["score"]["n_points"] == 4096
    assert outputs[0]["program"]["hash"] == outputs[1]["program"]["hash"] == square.canonical_hash()


def test_score_nan_program_is_reported_not_raised(capsys, tmp_path):
    path = tmp_path / "nan.json"
    path.write_text(json.dumps({"body": [{"op": "sqrt", "args": ["-1"]}], "out": "t1"}))
    code, out, err = run(capsys, "score", str(path), "--target", "exp2", "--points", "search", "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["score"]["max_err"] == "inf" and info["score"]["n_nonfinite"] == 4096


# ----------------------------------------------------------------------------- errors
def test_missing_program_file(capsys, tmp_path):
    code, out, err = run(capsys, "score", str(tmp_path / "nope.json"), "--target", "exp2")
    assert_one_line_error(code, out, err, "does not exist")


def test_program_file_is_a_directory(capsys, tmp_path):
    code, out, err = run(capsys, "score", str(tmp_path), "--target", "exp2")
    assert_one_line_error(code, out, err, "directory")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('{"body": [', "not valid JSON"),
        ('{"body": [{"op": "pow", "args": ["x", "x"]}], "out": "t1"}', "unknown op 'pow'"),
        ('{"body": [{"op": "add", "args": ["x", "0.1"]}], "out": "t1"}', "not exactly representable"),
        ('{"body": [{"op": "add", "args": ["x", "t2"]}], "out": "t1"}', "not defined before"),
        ('{"body": []}', "no 'out'"),
        ('{"dtype": ["float32"], "body": [], "out": "x"}', "float"),
        ("t1 = pow(x, x)\nreturn t1\n", "unknown op 'pow'"),
        ("t1 = mul(x, x)\n", "no 'return'"),
        ("this is not a program\n", "cannot parse"),
    ],
    ids=[
        "truncated-json",
        "unknown-op",
        "inexact-constant",
        "forward-reference",
        "missing-out",
        "dtype-not-a-string",
        "text-unknown-op",
        "text-no-return",
        "text-garbage",
    ],
)
def test_malformed_program_files(capsys, tmp_path, content, fragment):
    path = tmp_path / "program.json"
    path.write_text(content)
    code, out, err = run(capsys, "score", str(path), "--target", "exp2", "--points", "search")
    assert_one_line_error(code, out, err, fragment)
    assert str(path) in err  # the message says which file


def test_unknown_target(capsys):
    code, out, err = run(capsys, "score", "anchor:exp2", "--target", "nope")
    assert_one_line_error(code, out, err, "unknown target 'nope'")


def test_unknown_anchor(capsys):
    code, out, err = run(capsys, "score", "anchor:exp2:plain", "--target", "exp2")
    assert_one_line_error(code, out, err, "no plain anchor")


def test_bad_domain(capsys):
    code, out, err = run(capsys, "score", "anchor:exp2", "--target", "exp2", "--domain", "1,0")
    assert_one_line_error(code, out, err, "reversed")


def test_expression_not_real_with_negative_domain_start(capsys):
    code, out, err = run(capsys, "score", "anchor:exp2", "--expr", "sqrt(x)", "--domain", "-1,1")
    assert_one_line_error(code, out, err, "not real")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--expr", "x+", "--domain", "0,1"], "cannot parse expression"),
        (["--expr", "log(x)", "--domain", "0,1"], "not finite"),
        (["--expr", "exp(x)", "--domain", "0,100"], "overflows"),
        (["--expr", "x", "--domain", "0,0"], "empty"),
        (["--expr", "x"], "needs a domain"),
        (["--expr", "x", "--target", "exp2", "--domain", "0,1"], "either a target or an expression"),
        ([], "no target"),
    ],
)
def test_other_target_errors(capsys, args, fragment):
    code, out, err = run(capsys, "score", "anchor:exp2", *args)
    assert_one_line_error(code, out, err, fragment)


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["score"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2
