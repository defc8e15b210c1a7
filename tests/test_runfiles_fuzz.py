"""Fuzzing the files evo reads back: mutated checkpoints, meta, front and config files, corrupted
events.jsonl, and arbitrary program JSON. Every input ends in success or in a one-line error with
exit code 2, never a traceback, and a refusal changes no byte of any file that was there before."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.runfiles_helpers import assert_one_line_error, checksums, make_run, run_cli

FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**130), 2**130),
    st.sampled_from([-1, 0, 1, 2**64, 2**128]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(["inf", "nan", "x", "t1", ""]),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def fuzz_run(tmp_path_factory) -> Path:
    """A finished run (its files are copied for every example, never changed)."""
    return make_run(tmp_path_factory.mktemp("fuzz-runs"), "--max-evals", "200", "--signoff", "best")


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and indices) into a JSON value."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):
            found += _paths(item, (*prefix, index))
    return found


def _mutated(data: Any, path: tuple, action: str, value: Any) -> Any:
    if not path:
        return value
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    if action == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return data


def _check(code: int, out: str, err: str, before: dict, after: dict) -> None:
    assert code in (0, 2), (code, out, err)
    assert "Traceback" not in err
    if code == 2:
        assert_one_line_error(code, out, err)
        assert after == before, "a refusal changed a file"


class _Copy:
    """A fresh copy of the run for one example (hypothesis examples cannot use function fixtures)."""

    def __init__(self, run_dir: Path) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="evo-fuzz-"))
        self.run = self.root / "runs" / run_dir.name
        shutil.copytree(run_dir, self.run)

    def __enter__(self) -> _Copy:
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.mark.parametrize("name", ["checkpoint.json", "front.json", "meta.json", "config.json"])
@FUZZ
@given(data=st.data())
def test_mutated_json_files(fuzz_run, name, data):
    """Defects 11 and 12: a mutated checkpoint, front, meta or config file: `evo inspect RUN`,
    `evo inspect runs/` and `evo resume RUN` succeed or refuse in one line, changing nothing."""
    original = json.loads((fuzz_run / name).read_text())
    path = data.draw(st.sampled_from(_paths(original)), label="path")
    action = data.draw(st.sampled_from(["replace", "delete"] if path else ["replace"]), label="action")
    value = data.draw(JSON_VALUES, label="value")
    with _Copy(fuzz_run) as copy:
        (copy.run / name).write_text(
            json.dumps(_mutated(json.loads(json.dumps(original)), path, action, value))
        )
        for argv in (
            ("inspect", copy.run),
            ("inspect", copy.root / "runs"),
            ("resume", copy.run, "--max-evals", "1", "--quiet"),
        ):
            before = checksums(copy.root)
            code, out, err = run_cli(*argv)
            _check(code, out, err, before, checksums(copy.root))


EVENT_DAMAGE = st.one_of(
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 64)),
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
    st.tuples(
        st.just("append"),
        st.just(0),
        st.binary(max_size=40) | st.sampled_from([b'{"v": 1, "kind": "end"', b"[1]\n", b"\xff\n"]),
    ),
    st.tuples(st.just("retype"), st.integers(0, 10**6), st.tuples(st.integers(0, 30), JSON_VALUES)),
)


def _damaged(raw: bytes, damage: tuple) -> bytes:
    kind, where, what = damage
    at = where % (len(raw) + 1)
    if kind == "insert":
        return raw[:at] + what + raw[at:]
    if kind == "delete":
        return raw[:at] + raw[at + what :]
    if kind == "flip":
        return raw[:at] + bytes([raw[at] ^ what]) + raw[at + 1 :] if at < len(raw) else raw
    if kind == "truncate":
        return raw[:at]
    if kind == "retype":  # one field of one event gets a value of another type (valid JSON, wrong shape)
        lines = raw.splitlines(keepends=True)
        index = where % len(lines)
        try:
            record = json.loads(lines[index])
        except ValueError:
            return raw
        if not isinstance(record, dict) or not record:
            return raw
        key_index, value = what
        record[sorted(record)[key_index % len(record)]] = value
        lines[index] = (json.dumps(record) + "\n").encode()
        return b"".join(lines)
    return raw + what


@FUZZ
@given(damage=st.lists(EVENT_DAMAGE, min_size=1, max_size=3))
def test_corrupted_event_log(fuzz_run, damage):
    """Defect 11: events.jsonl with inserted, deleted, flipped or appended bytes (0xff among them):
    inspect and resume succeed or refuse in one line, and `inspect runs/` still lists the run."""
    with _Copy(fuzz_run) as copy:
        raw = (copy.run / "events.jsonl").read_bytes()
        for step in damage:
            raw = _damaged(raw, step)
        (copy.run / "events.jsonl").write_bytes(raw)
        for argv in (
            ("inspect", copy.run),
            ("inspect", copy.root / "runs"),
            ("resume", copy.run, "--max-evals", "1", "--quiet"),
        ):
            before = checksums(copy.root)
            code, out, err = run_cli(*argv)
            _check(code, out, err, before, checksums(copy.root))
            if argv[1] == copy.root / "runs":
                assert code == 0 and copy.run.name in out


PROGRAM = {
    "schema": "evo.program/1",
    "dtype": "float32",
    "out": "t2",
    "body": [
        {"op": "fma", "args": ["x", {"bits": 1065353216, "hex": "0x1p+0"}, "x"]},
        {"op": "mul", "args": ["t1", "t1"]},
    ],
}


@FUZZ
@given(data=st.data())
def test_program_json(tmp_path, data):
    """Defect 11: any JSON program file (mutated, arbitrary or deeply nested) scores or is refused
    in one line."""
    kind = data.draw(st.sampled_from(["mutated", "arbitrary", "nested"]), label="kind")
    if kind == "mutated":
        path = data.draw(st.sampled_from(_paths(PROGRAM)), label="path")
        action = data.draw(st.sampled_from(["replace", "delete"] if path else ["replace"]), label="action")
        text = json.dumps(
            _mutated(json.loads(json.dumps(PROGRAM)), path, action, data.draw(JSON_VALUES, label="value"))
        )
    elif kind == "arbitrary":
        text = json.dumps({"body": data.draw(JSON_VALUES), "out": data.draw(JSON_VALUES)})
    else:
        depth = data.draw(st.integers(1, 200_000), label="depth")
        text = '{"body": ' + "[" * depth + "]" * depth + ', "out": "x"}'
    program = tmp_path / "program.json"
    program.write_text(text)
    code, out, err = run_cli(
        "score", program, "--target", "exp2", "--domain", "1,1.001", "--points", "search"
    )
    assert code in (0, 2), (code, out, err)
    if code == 2:
        assert_one_line_error(code, out, err)
