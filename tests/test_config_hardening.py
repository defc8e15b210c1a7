"""Config hardening: one-line errors instead of tracebacks (defect 11) and a threshold that means
what it says (defect 14: ``target_error``, relative in real mode; ``target_ulp`` its float32 spelling).
"""

from __future__ import annotations

import contextlib
import io
import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evo.cli import main
from evo.config import RunConfig, _field_names, from_mapping, load_toml, resolve
from evo.errors import UsageError


def cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def assert_refused(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("evo: error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# ----------------------------------------------------------------------------- defect 11
def test_non_utf8_toml_is_a_one_line_error(tmp_path):
    """Defect 11: a non-UTF-8 TOML file raised UnicodeDecodeError with a traceback."""
    path = tmp_path / "bad.toml"
    path.write_bytes(b'target = "exp2"\n# \xff\xfe\n')
    with pytest.raises(UsageError, match="not UTF-8 text .byte 0xff"):
        load_toml(path)
    assert_refused(
        *cli("evolve", "--config", path, "--max-evals", "10", "--runs-dir", tmp_path / "runs"), "UTF-8"
    )
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "override",
    [
        "mutation_weights=[1,2]",
        'cost_weights=["div"]',
        "cost_weights=[[1, 2]]",
        "mutation_weights=[['insert']]",
        "ops=[1, 2]",
        "ops=[['add']]",
        "mode=[1]",
        "signoff={a=1}",
        "max_seconds=1e999",
        "target_error=[1]",
    ],
)
def test_malformed_set_values_are_one_line_errors(override, tmp_path):
    """Defect 11: --set mutation_weights=[1,2] and --set 'cost_weights=["div"]' raised
    TypeError/ValueError."""
    with pytest.raises(UsageError):
        resolve({}, [override])
    assert_refused(
        *cli(
            "evolve",
            "--target",
            "exp2",
            "--max-evals",
            "10",
            "--set",
            override,
            "--runs-dir",
            tmp_path / "runs",
        )
    )
    assert not (tmp_path / "runs").exists()


def test_dotted_override_into_a_malformed_table(tmp_path):
    with pytest.raises(UsageError, match="cost_weights"):
        resolve({"cost_weights": [1, 2]}, ["cost_weights.div=4"])


def test_a_config_that_is_not_a_table():
    with pytest.raises(UsageError, match="table"):
        from_mapping([1, 2])


KEYS = [
    *_field_names(),
    "target_error",
    "populaton_size",
    "a.b",
    "mutation_weights.insert",
    "cost_weights.div",
    "x",
]
TOML_VALUES = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: repr(f).replace("inf", "inf")),
    st.sampled_from(
        [
            "true",
            "false",
            "[]",
            "[1, 2]",
            '["div"]',
            '[["add", 1]]',
            "{a = 1}",
            "{div = 4}",
            '"exp2"',
            '"x*x"',
            '"0,1"',
            '"serial"',
            '"real"',
            '"add,mul"',
            "1979-05-27",
            "\"__import__('os')\"",
            '"9**9**9"',
            "[[1]]",
        ]
    ),
    st.text(alphabet=string.printable, max_size=12).map(json.dumps),
)


@settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(KEYS), TOML_VALUES), max_size=6))
def test_fuzz_set_overrides_end_in_a_config_or_a_usage_error(pairs):
    """Fuzz (defect 11): any --set values give a RunConfig or a one-line UsageError, nothing else."""
    overrides = [f"{key}={value}" for key, value in pairs]
    try:
        config = resolve({}, overrides)
    except UsageError as exc:
        assert "\n" not in str(exc)
    else:
        assert from_mapping(json.loads(json.dumps(config.to_dict()))) == config


@settings(
    deadline=None,
    max_examples=200,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    st.one_of(
        st.lists(st.tuples(st.sampled_from(KEYS), TOML_VALUES), max_size=6).map(
            lambda ps: "\n".join(f"{k} = {v}" for k, v in ps)
        ),
        st.text(max_size=80),
        st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
    ),
    st.binary(max_size=4),
)
def test_fuzz_toml_files_end_in_a_config_or_a_usage_error(tmp_path, text, junk):
    """Fuzz (defect 11): any TOML file (text or bytes) gives a RunConfig or a one-line UsageError."""
    path = tmp_path / "fuzz.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass") + junk)
    try:
        resolve(load_toml(path))
    except UsageError as exc:
        assert "\n" not in str(exc)


# ----------------------------------------------------------------------------- defect 14
def test_target_error_is_the_threshold_and_target_ulp_its_float32_spelling():
    assert (
        from_mapping({"target_error": 2.0}).target_error
        == 2.0
        == from_mapping({"target_ulp": 2.0}).target_ulp
    )
    assert from_mapping({"target_error": 2.0}) == from_mapping({"target_ulp": 2.0})
    real = from_mapping({"mode": "real", "target_error": 1e-6})
    assert real.target_error == 1e-6 and real.objective == "cost"
    assert "target_error" in real.to_dict() and "target_ulp" not in real.to_dict()
    assert from_mapping(json.loads(json.dumps(real.to_dict()))) == real
    assert real.describe_target_error() == "target error: relative 1e-06 (|y - f(x)| / |f(x)|)"
    assert RunConfig(target_ulp=1.0).describe_target_error() == "target error: 1 ULP (float32)"


def test_target_ulp_in_real_mode_is_refused():
    """Defect 14: --mode real --target-ulp 1 was read as a relative error of 100% without a word."""
    with pytest.raises(UsageError, match="relative error.*target_error"):
        from_mapping({"mode": "real", "target_ulp": 1.0})
    with pytest.raises(UsageError, match="not both"):
        from_mapping({"target_ulp": 1.0, "target_error": 1.0})


def test_cli_target_error_flags(tmp_path):
    runs = tmp_path / "runs"
    assert_refused(
        *cli(
            "evolve",
            "--target",
            "exp2",
            "--mode",
            "real",
            "--target-ulp",
            "1",
            "--max-evals",
            "10",
            "--runs-dir",
            runs,
        ),
        "--target-error",
    )
    assert_refused(
        *cli(
            "evolve",
            "--target",
            "exp2",
            "--target-ulp",
            "1",
            "--target-error",
            "1",
            "--max-evals",
            "10",
            "--runs-dir",
            runs,
        ),
        "not both",
    )
    assert not runs.exists()


def test_real_mode_run_says_its_threshold_is_relative_in_its_first_lines(tmp_path):
    # a threshold no program reaches in 40 evaluations: no sign-off during the search (2^20 mpmath points)
    code, out, err = cli(
        "evolve",
        "--target",
        "exp2",
        "--domain",
        "1,1.001",
        "--mode",
        "real",
        "--target-error",
        "1e-12",
        "--max-evals",
        "40",
        "--seed",
        "1",
        "--runs-dir",
        tmp_path / "runs",
        "--set",
        "population_size=10",
        "--set",
        "tournament_size=3",
        "--set",
        "search_points=256",
        "--set",
        "select_points=1024",
        "--signoff",
        "none",
        "--quiet",
    )
    assert code == 0, err
    first = out.splitlines()[:2]
    assert (
        first[0].startswith("evo: seed 1, run ")
        and first[1] == "evo: target error: relative 1e-12 (|y - f(x)| / |f(x)|)"
    )
    (run_dir,) = list((tmp_path / "runs").iterdir())
    stored = json.loads((run_dir / "config.json").read_text())
    assert stored["target_error"] == 1e-12 and "target_ulp" not in stored
