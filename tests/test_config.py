"""RunConfig: defaults, validation (one-line UsageErrors), ``--set`` overrides, TOML files, round trips."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evo.config import (
    DEFAULT_MUTATION_WEIGHTS,
    MUTATION_KINDS,
    RunConfig,
    apply_overrides,
    from_mapping,
    load_toml,
    parse_override,
    resolve,
)
from evo.errors import UsageError
from primitives.ops import get_op


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    return text


# ----------------------------------------------------------------------------- defaults
def test_defaults_are_valid():
    config = resolve()
    assert config.to_dict() == RunConfig().to_dict()
    assert from_mapping({}).to_dict() == RunConfig().to_dict()
    assert config.target == "exp2" and config.expr is None
    assert config.weights == dict(DEFAULT_MUTATION_WEIGHTS)
    assert config.objective == "error" and config.dtype == "float32"
    # the default op costs come from the op table
    assert config.costs == {op: get_op(op).cost for op in config.ops}


def test_views():
    assert resolve({"target_ulp": 2.0}).objective == "cost"
    assert resolve({"mode": "real"}).dtype == "float64"


# ----------------------------------------------------------------------------- unknown keys
@pytest.mark.parametrize(
    ("key", "suggestion"),
    [("populaton_size", "population_size"), ("max_eval", "max_evals"), ("tournamentsize", "tournament_size")],
)
def test_unknown_key_suggests_the_closest(key, suggestion):
    for call in (lambda: from_mapping({key: 3}), lambda: resolve({}, [f"{key}=3"])):
        with pytest.raises(UsageError) as info:
            call()
        text = one_line(info)
        assert repr(key) in text and f"did you mean {suggestion!r}" in text


def test_unknown_key_without_a_close_match_has_no_hint():
    with pytest.raises(UsageError) as info:
        from_mapping({"zzzzqqqq": 1})
    assert "did you mean" not in one_line(info)


def test_dotted_override_of_a_non_table_is_unknown():
    with pytest.raises(UsageError, match="unknown config key"):
        resolve({}, ["population_size.x=3"])


# ----------------------------------------------------------------------------- bad values
BAD = [
    ({"population_size": -1}, "population_size"),
    ({"population_size": 0}, "population_size"),
    ({"population_size": 2.5}, "population_size"),
    ({"population_size": True}, "population_size"),
    ({"population_size": "100"}, "population_size"),
    ({"population_size": 10, "tournament_size": 11}, "tournament_size"),
    ({"tournament_size": 0}, "tournament_size"),
    ({"max_ops": 0}, "max_ops"),
    ({"max_evals": 0}, "max_evals"),
    ({"max_seconds": -1.0}, "max_seconds"),
    ({"seed": -1}, "seed"),
    ({"target_ulp": 0.0}, "target_ulp"),
    ({"target_ulp": float("inf")}, "target_ulp"),
    ({"target_ulp": float("nan")}, "target_ulp"),
    ({"stop_when_certified": True}, "target_ulp"),
    ({"stop_when_certified": "yes", "target_ulp": 1.0}, "stop_when_certified"),
    ({"ops": []}, "ops"),
    ({"ops": ["add", "add"]}, "twice"),
    ({"mutation_weights": {"grow": 1.0}}, "grow"),
    ({"mutation_weights": {"insert": -1.0}}, "insert"),
    ({"mutation_weights": {k: 0.0 for k in MUTATION_KINDS}}, "positive"),
    ({"mutation_weights": 3}, "mutation_weights"),
    ({"cost_weights": {"div": -2}}, "div"),
    ({"fit": 1}, "fit"),
    ({"fit": "yes"}, "fit"),
    ({"mode": "double"}, "mode"),
    ({"signoff": "all"}, "signoff"),
    ({"backend": "mpi"}, "backend"),
    ({"seed_from": "zero"}, "seed_from"),
    ({"search_points": 8}, "search_points"),
    ({"runs_dir": ""}, "runs_dir"),
    ({"target": 5}, "target"),
    ({"expr": "x*x"}, "domain"),
    ({"target": "exp2", "expr": "x*x", "domain": "0,1"}, "not both"),
    ({"target": None}, "target"),
]


@pytest.mark.parametrize(
    ("data", "fragment"), BAD, ids=[f"{i}-{next(iter(d))}" for i, (d, _) in enumerate(BAD)]
)
def test_bad_values_raise_one_line_usage_errors(data, fragment):
    with pytest.raises(UsageError) as info:
        from_mapping(data)
    assert fragment in one_line(info)


@pytest.mark.parametrize(
    "data", [{"ops": ["add", "pow"]}, {"ops": "add,pow"}, {"cost_weights": {"pow": 2.0}}]
)
def test_unknown_op_is_a_usage_error(data):
    # from_mapping documents "unknown keys and bad values raise UsageError"
    with pytest.raises(UsageError) as info:
        from_mapping(data)
    assert "pow" in one_line(info)


def test_expression_with_domain_replaces_the_default_target():
    config = from_mapping({"expr": "x*x", "domain": "0,1"})
    assert config.target is None and config.expr == "x*x" and config.domain == "0,1"


def test_ops_as_comma_separated_text():
    assert from_mapping({"ops": "add, mul,fma"}).ops == ("add", "mul", "fma")


# ----------------------------------------------------------------------------- --set
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("population_size=50", ("population_size", 50)),
        ("target_ulp=1.5", ("target_ulp", 1.5)),
        ("fit=false", ("fit", False)),
        ("signoff=best", ("signoff", "best")),  # bare word: a string
        ("name=my fn", ("name", "my fn")),
        ('name="quoted"', ("name", "quoted")),
        ("ops=['add', 'mul']", ("ops", ["add", "mul"])),
        ("domain=-1,1", ("domain", "-1,1")),  # not TOML: kept as text
        (" seed = 7 ", ("seed", 7)),
        ("mutation_weights.insert=5", ("mutation_weights.insert", 5)),
        ("expr=a=b", ("expr", "a=b")),  # split at the first '='
    ],
)
def test_parse_override(text, expected):
    assert parse_override(text) == expected


@pytest.mark.parametrize("text", ["population_size", "=5", "  =5"])
def test_parse_override_needs_key_and_value(text):
    with pytest.raises(UsageError) as info:
        parse_override(text)
    assert "key=value" in one_line(info)


def test_overrides_apply_after_the_base():
    config = resolve({"population_size": 30, "tournament_size": 3}, ["population_size=40", "signoff=none"])
    assert config.population_size == 40 and config.tournament_size == 3 and config.signoff == "none"


def test_dotted_mutation_weight_keeps_the_other_defaults():
    config = resolve({}, ["mutation_weights.insert=5"])
    expected = dict(DEFAULT_MUTATION_WEIGHTS)
    expected["insert"] = 5.0
    assert config.weights == expected


def test_dotted_mutation_weight_merges_into_the_base_table():
    config = resolve({"mutation_weights": {"remove": 1.0, "insert": 1.0}}, ["mutation_weights.refit=2"])
    assert config.weights == {"remove": 1.0, "insert": 1.0, "refit": 2.0}


def test_dotted_cost_weight_changes_one_cost():
    config = resolve({}, ["cost_weights.div=4"])
    assert config.costs["div"] == 4.0
    assert all(config.costs[op] == get_op(op).cost for op in config.ops if op != "div")
    assert dict(config.cost_weights) == {"div": 4.0}


def test_bad_dotted_entries_are_usage_errors():
    with pytest.raises(UsageError, match="grow"):
        resolve({}, ["mutation_weights.grow=1"])
    with pytest.raises(UsageError, match="insert"):
        resolve({}, ["mutation_weights.insert=lots"])


def test_apply_overrides_does_not_mutate_its_input():
    base = {"population_size": 30}
    out = apply_overrides(base, ["population_size=40"])
    assert base == {"population_size": 30} and out["population_size"] == 40


# ----------------------------------------------------------------------------- TOML files
def test_load_toml_and_resolve(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(
        'target = "sin"\npopulation_size = 50\nops = ["add", "mul", "fma"]\n[mutation_weights]\ninsert = 4\n'
    )
    config = resolve(load_toml(path), ["tournament_size=5"])
    assert config.target == "sin" and config.population_size == 50 and config.tournament_size == 5
    assert config.ops == ("add", "mul", "fma")
    assert config.weights["insert"] == 4.0


def test_missing_toml_file(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(UsageError) as info:
        load_toml(path)
    text = one_line(info)
    assert str(path) in text and "does not exist" in text


def test_toml_file_that_is_a_directory(tmp_path):
    with pytest.raises(UsageError) as info:
        load_toml(tmp_path)
    assert str(tmp_path) in one_line(info)


@pytest.mark.parametrize(
    "content", ["population_size = \n", "[mutation_weights\n", "a = 1\na = 2\n", 'x = "unterminated\n']
)
def test_malformed_toml_file(tmp_path, content):
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(UsageError) as info:
        load_toml(path)
    text = one_line(info)
    assert str(path) in text and "not valid TOML" in text


def test_unknown_key_in_toml_file(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("populaton_size = 4\n")
    with pytest.raises(UsageError) as info:
        load_toml(path)
    assert "did you mean 'population_size'" in one_line(info)


# ----------------------------------------------------------------------------- round trips
def test_round_trip_of_a_non_trivial_config():
    config = resolve(
        {
            "expr": "exp(x) - 1",
            "domain": "-1,1",
            "name": "expm1",
            "ops": ["fma", "mul", "div"],
            "max_ops": 6,
            "target_ulp": 2.0,
            "stop_when_certified": True,
            "max_evals": 1000,
            "seed": 17,
            "population_size": 30,
            "tournament_size": 7,
            "fit": False,
            "signoff": "best",
            "workers": 3,
        },
        ["cost_weights.div=4", "mutation_weights.insert=5"],
    )
    data = config.to_dict()
    assert from_mapping(data) == config
    assert from_mapping(json.loads(json.dumps(data))) == config  # as config.json stores it
    assert config.replace() == config
    assert config.replace(seed=3).seed == 3 and config.replace(seed=3).ops == config.ops


@settings(deadline=None, max_examples=50)
@given(
    population=st.integers(2, 300),
    tournament=st.integers(1, 300),
    ops=st.lists(
        st.sampled_from(["add", "sub", "mul", "div", "fma", "neg", "sqrt"]),
        min_size=1,
        max_size=7,
        unique=True,
    ),
    weights=st.dictionaries(st.sampled_from(MUTATION_KINDS), st.floats(0.5, 10.0), min_size=1),
    costs=st.dictionaries(st.sampled_from(["add", "mul", "div"]), st.floats(0.0, 20.0)),
    target_ulp=st.one_of(st.none(), st.floats(0.01, 1e6)),
    seed=st.one_of(st.none(), st.integers(0, 2**31)),
)
def test_round_trip_property(population, tournament, ops, weights, costs, target_ulp, seed):
    tournament = min(tournament, population)
    config = from_mapping(
        {
            "population_size": population,
            "tournament_size": tournament,
            "ops": ops,
            "mutation_weights": weights,
            "cost_weights": costs,
            "target_ulp": target_ulp,
            "seed": seed,
        }
    )
    again = from_mapping(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert again.weights == {k: float(v) for k, v in weights.items()}
    assert again.ops == tuple(ops)
