"""targets: the registry, user expressions, point sets, references, datasets and scoring."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from importlib import resources

import mpmath
import numpy as np
import pytest

from primitives.floatbits import FLOAT32, FLOAT64, float_to_bits, ordinal
from primitives.program import Const, Program, Ref, X, const_of, instr, make_program
from targets.dataset import build_dataset
from targets.points import make_point_set
from targets.reference import reference_at
from targets.registry import ALIASES, BUILTIN_TARGETS, expression_target, get_target, target_names
from targets.scoring import Score, score
from targets.target import TargetError

ANCHORS = json.loads(resources.files("targets").joinpath("data/anchors.json").read_text())["targets"]
BUILTIN_NAMES = [
    "exp2_0_1",
    "exp2_m05_05",
    "exp_ln2h",
    "log2_1_2",
    "sin_pi4",
    "cos_pi4",
    "erf_0_1",
    "tanh_0_1",
]


def rn32(exact: Fraction) -> float:
    """Round an exact rational to float32, nearest with ties to even (independent of the library)."""
    guess = np.float32(float(exact))
    candidates = [
        np.nextafter(guess, np.float32(-np.inf)),
        guess,
        np.nextafter(guess, np.float32(np.inf)),
    ]
    best = min(candidates, key=lambda c: (abs(Fraction(float(c)) - exact), int(c.view(np.uint32)) & 1))
    return float(best)


def mpf_to_fraction(value) -> Fraction:
    sign, man, exp, _ = value._mpf_
    return (-1) ** sign * Fraction(int(man)) * Fraction(2) ** exp


# ----------------------------------------------------------------------------- registry
def test_builtin_names_and_aliases():
    assert target_names() == BUILTIN_NAMES
    assert [t.name for t in BUILTIN_TARGETS] == BUILTIN_NAMES
    assert ALIASES == {
        "exp2": "exp2_0_1",
        "exp": "exp_ln2h",
        "log2": "log2_1_2",
        "sin": "sin_pi4",
        "cos": "cos_pi4",
        "erf": "erf_0_1",
        "tanh": "tanh_0_1",
    }
    for alias, name in ALIASES.items():
        assert get_target(alias) is get_target(name)


def test_unknown_target_names_the_known_ones():
    with pytest.raises(TargetError, match="unknown target 'nope'.*exp2_0_1"):
        get_target("nope")


@pytest.mark.parametrize(
    ("name", "lo", "hi"),
    [
        ("sin_pi4", "-0x1.921fb6p-1", "0x1.921fb6p-1"),
        ("cos_pi4", "-0x1.921fb6p-1", "0x1.921fb6p-1"),
        ("exp_ln2h", "-0x1.62e43p-2", "0x1.62e43p-2"),
        ("exp2_0_1", "0x0p+0", "0x1p+0"),
        ("exp2_m05_05", "-0x1p-1", "0x1p-1"),
        ("log2_1_2", "0x1p+0", "0x1p+1"),
    ],
)
def test_builtin_domains_match_the_anchor_endpoints(name, lo, hi):
    target = get_target(name)
    assert target.domain(FLOAT32) == (float.fromhex(lo), float.fromhex(hi))
    assert target.domain_text("float32") == f"[{lo}, {hi}]"


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_builtin_domains_agree_with_anchors_file(name):
    """The float32 domain and its float count are the ones the classical anchors were measured on."""
    entry = ANCHORS[name]
    lo, hi = get_target(name).domain(FLOAT32)
    assert (lo, hi) == tuple(float.fromhex(h) for h in entry["domain_hex"])
    count = ordinal(float_to_bits(hi)) - ordinal(float_to_bits(lo)) + 1
    assert count == entry["domain_count"]


def test_domain_endpoints_are_correctly_rounded_from_300_bit_values():
    with mpmath.workprec(300):
        pi4 = mpf_to_fraction(mpmath.pi / 4)
        ln2h = mpf_to_fraction(mpmath.log(2) / 2)
    assert get_target("sin").domain(FLOAT32) == (-rn32(pi4), rn32(pi4))
    assert get_target("exp").domain(FLOAT32) == (-rn32(ln2h), rn32(ln2h))
    assert get_target("exp").domain(FLOAT64) == (-float(ln2h), float(ln2h))  # Fraction -> float is RN


def test_builtin_with_other_domain():
    t = get_target("exp2", "-1,1")
    assert t.name == "exp2_0_1_custom" and t.expr == get_target("exp2").expr
    assert t.domain(FLOAT32) == (-1.0, 1.0)
    with pytest.raises(TargetError, match="reversed"):
        get_target("exp2", "1,0")


# ----------------------------------------------------------------------------- user expressions
@pytest.mark.parametrize(
    ("expr", "domain", "pattern"),
    [
        ("x +", "0,1", "cannot parse expression"),
        ("exp(x", "0,1", "cannot parse expression"),
        ("", "0,1", "empty expression"),
        ("x*y", "0,1", "unknown symbol.*y"),
        ("foo(x)", "0,1", "unknown function.*foo"),
        ("x", "1,0", "reversed"),
        ("x", "0,0", "empty"),
        ("x", "0.5,0.5", "empty"),
        ("x", "0,inf", "inf"),
        ("x", "-oo,0", "not a finite real number"),
        ("x", "0,1e60", "outside the float32 range"),
        ("x", "0", "two endpoints"),
        ("x", "0,1,2", "two endpoints"),
        ("x", "a,1", "endpoint 'a'"),
        ("sqrt(x)", "-1,1", "sqrt\\(x\\) is not real at x = "),
        ("log(x)", "0,1", "log\\(x\\) is not finite at x = 0x0p\\+0"),
        ("1/x", "-1,1", "1/x is not (defined|finite) at x = 0x0p\\+0"),
        ("exp(x)", "0,100", "exp\\(x\\) overflows float32"),
        ("asin(x)", "0,2", "not real"),
    ],
)
def test_bad_user_targets_are_refused(expr, domain, pattern):
    with pytest.raises(TargetError, match=pattern):
        expression_target(expr, domain)


@pytest.mark.parametrize(("expr", "domain"), [("exp(x)-1", "0,1"), ("log(1+x)", "0,1"), ("x^2", "[-1, 1]")])
def test_good_user_targets_are_accepted(expr, domain):
    t = expression_target(expr, domain)
    assert t.domain(FLOAT32)[0] < t.domain(FLOAT32)[1]
    assert t.name.startswith("expr_")
    assert expression_target(expr, domain).name == t.name  # deterministic
    named = expression_target(expr, domain, name="mine")
    assert named.name == "mine"


def test_user_target_names_are_checked():
    with pytest.raises(TargetError, match="name"):
        expression_target("x", "0,1", name="bad name/with slash")


def test_another_domain_revalidates():
    t = expression_target("sqrt(x)", "0,1")
    assert expression_target(t.expr, "1,4").domain(FLOAT32) == (1.0, 4.0)
    with pytest.raises(TargetError, match="not real"):
        expression_target(t.expr, "-1,1")
    with pytest.raises(TargetError, match="not real"):
        get_target("log2", "-1,1")


# ----------------------------------------------------------------------------- point sets
EXP2 = get_target("exp2")


def _sorted_distinct_inside(ps, lo, hi):
    x = ps.x
    assert x is not None and not x.flags.writeable
    assert np.all(np.diff(x.astype(np.float64)) > 0)
    assert np.all((x >= lo) & (x <= hi))


@pytest.mark.parametrize(("kind", "size"), [("search", 4096), ("select", 65536)])
def test_point_sets_are_sorted_distinct_and_inside(kind, size):
    for target in (EXP2, get_target("sin"), get_target("log2")):
        lo, hi = target.domain(FLOAT32)
        ps = make_point_set(lo, hi, FLOAT32, kind, 0)
        assert ps.size == size and ps.kind == kind and ps.dtype == "float32"
        assert ps.x.dtype == np.float32 and not ps.exhaustive
        _sorted_distinct_inside(ps, lo, hi)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("kind", ["search", "select"])
@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_point_sets_include_both_endpoints(name, kind, seed):
    """The module documents the endpoints (and runs of floats next to them) as part of every sample."""
    lo, hi = get_target(name).domain(FLOAT32)
    x = make_point_set(lo, hi, FLOAT32, kind, seed).x
    assert (float(x[0]), float(x[-1])) == (lo, hi)


def test_point_sets_are_deterministic_and_seeded():
    a = make_point_set(0.0, 1.0, FLOAT32, "search", 7)
    b = make_point_set(0.0, 1.0, FLOAT32, "search", 7)
    assert np.array_equal(a.x, b.x) and a.digest == b.digest
    c = make_point_set(0.0, 1.0, FLOAT32, "search", 8)
    assert not np.array_equal(a.x, c.x) and a.digest != c.digest
    d = make_point_set(0.0, 1.0, FLOAT32, "select", 7, n=4096)
    assert d.size == a.size and not np.array_equal(a.x, d.x) and a.digest != d.digest


def test_point_sets_reach_zero_subnormals_and_binade_edges():
    ps = make_point_set(-1.0, 1.0, FLOAT32, "search", 0)
    x = ps.x.astype(np.float64)
    assert 0.0 in x and 2.0**-149 in x and -(2.0**-149) in x
    assert np.count_nonzero(x == 0.0) == 1
    ps = make_point_set(0.0, 1.0, FLOAT32, "search", 0)
    assert np.min(ps.x[ps.x > 0]) < 1e-30  # stratified in bit patterns: tiny magnitudes too


def test_float64_point_sets():
    ps = make_point_set(0.0, 1.0, FLOAT64, "search", 0)
    assert ps.x.dtype == np.float64 and ps.size == 4096 and ps.dtype == "float64"
    _sorted_distinct_inside(ps, 0.0, 1.0)
    assert (ps.x[0], ps.x[-1]) == (0.0, 1.0)


def test_exhaustive_final_set_of_exp2():
    ps = make_point_set(0.0, 1.0, FLOAT32, "final", 0)
    # float32 in [0, 1]: the bit patterns 0 .. 0x3f800000 (1.0)
    assert ps.exhaustive and ps.x is None
    assert ps.size == 0x3F800000 + 1 == 1065353217
    assert ps.size == ANCHORS["exp2_0_1"]["exhaustive_points"]


def test_small_domains_are_used_whole():
    hi = 1.0 + 16 * 2.0**-23
    ps = make_point_set(1.0, hi, FLOAT32, "search", 3)
    expected = 1.0 + np.arange(17) * 2.0**-23
    assert ps.size == 17 and ps.exhaustive
    assert ps.x.astype(np.float64).tolist() == expected.tolist()
    # also across zero: -2 .. 2 smallest subnormals (-0 and +0 are one point)
    ps = make_point_set(-2 * 2.0**-149, 2 * 2.0**-149, FLOAT32, "select", 0)
    assert ps.x.astype(np.float64).tolist() == [k * 2.0**-149 for k in (-2, -1, 0, 1, 2)]


def test_unknown_point_set_kind():
    with pytest.raises(ValueError):
        make_point_set(0.0, 1.0, FLOAT32, "everything", 0)


# ----------------------------------------------------------------------------- references
def test_exp2_references_at_exact_points():
    assert reference_at(EXP2, 0.0) == (1.0, 1.0, 0.0)
    assert reference_at(EXP2, 1.0) == (2.0, 2.0, 0.0)
    assert reference_at(EXP2, -1.0) == (0.5, 0.5, 0.0)
    rounded, hi, lo = reference_at(EXP2, 0.5)
    with mpmath.workprec(300):
        sqrt2 = mpf_to_fraction(mpmath.sqrt(2))
    assert rounded == rn32(sqrt2) == float.fromhex("0x1.6a09e6p+0")
    assert hi == float(sqrt2)  # float64 nearest
    assert abs(Fraction(hi) + Fraction(lo) - sqrt2) < Fraction(2) ** -100


def test_reference_halfway_case_rounds_to_even():
    t = expression_target("x*x", "0,2")
    x = 1 + 2.0**-12
    rounded, hi, lo = reference_at(t, x)
    # x^2 = 1 + 2^-11 + 2^-24 exactly: halfway between 1 + 2^-11 (even) and 1 + 2^-11 + 2^-23
    assert hi == 1 + 2.0**-11 + 2.0**-24 and lo == 0.0
    assert rounded == 1 + 2.0**-11


def test_reference_has_no_double_rounding_through_float64():
    """f(1) = 1 + 2^-24 + 2^-60 lies just above a float32 midpoint; the float64 nearest (1 + 2^-24)
    is the midpoint itself, so rounding through float64 would give 1.0 by ties to even."""
    t = expression_target("x + 2**-24 + 2**-60", "1,2")
    rounded, hi, lo = reference_at(t, 1.0)
    assert rounded == 1 + 2.0**-23
    assert hi == 1 + 2.0**-24 and lo == 2.0**-60


def test_reference_of_undefined_point_is_a_target_error():
    t = expression_target("1/x", "1,2")
    with pytest.raises(TargetError, match="x = 0x0p\\+0"):
        reference_at(t, 0.0)


# ----------------------------------------------------------------------------- datasets and scoring
@pytest.fixture(scope="module")
def exp2_search(tmp_path_factory):
    return build_dataset(EXP2, "search", cache_dir=tmp_path_factory.mktemp("refs"))


def test_dataset_shape_and_cache(exp2_search, tmp_path):
    data = exp2_search
    assert data.size == 4096 and data.metric == "ulp" and data.kind == "search" and data.dtype == "float32"
    for array in (data.x, data.ref_hi, data.ref_lo, data.inv_scale, data.rounded):
        assert array.shape == (4096,) and not array.flags.writeable
    assert data.x[0] == 0.0 and data.rounded[0] == 1.0 and data.x[-1] == 1.0 and data.rounded[-1] == 2.0
    assert data.inv_scale[0] == 2.0**23 and data.inv_scale[-1] == 2.0**22
    # the cache: a second build from the same directory gives the same references
    first = build_dataset(EXP2, "search", cache_dir=tmp_path)
    assert any(tmp_path.iterdir())
    again = build_dataset(EXP2, "search", cache_dir=tmp_path)
    assert np.array_equal(first.ref_hi, again.ref_hi) and np.array_equal(first.rounded, data.rounded)


def test_identity_program_on_exp2_has_a_large_error(exp2_search):
    s = score(Program.identity(), exp2_search)
    # worst at x = 0: |0 - 1| / ulp32(1) = 2^23 (2^x - x is 1 at both ends; at x = 1 the ulp is 2^-22)
    assert s.max_err == 2.0**23 and s.worst_x == 0.0
    assert s.n_points == 4096 and s.n_nonfinite == 0 and s.n_exact == 0 and s.n_over_one == 4096
    assert s.finite and s.metric == "ulp"
    assert 2.0**21 < s.mean_err < 2.0**23


def test_constant_one_is_exact_at_zero(exp2_search):
    s = score(Program((), const_of(1.0)), exp2_search)
    assert s.n_exact >= 1  # f(0) = 1 exactly
    # worst at the largest x below 1 (the run of floats at the end of the domain is sampled):
    # x = 1 - 2^-24, 2^x = 2 - 2 ln2 2^-24 + O(2^-48) rounds below 2, so the unit is 2^-23 and
    # the error is (2^x - 1) 2^23 = 2^23 - ln 2 + O(2^-25)
    assert s.worst_x == 1.0 - 2.0**-24
    assert s.max_err == pytest.approx(2.0**23 - math.log(2), abs=1e-6)


@pytest.mark.parametrize(
    "program",
    [
        make_program([instr("sqrt", const_of(-1.0))]),
        make_program([instr("div", const_of(0.0), const_of(0.0))]),
        make_program([instr("sub", X, X), instr("div", Const(0), Ref(1))]),
    ],
    ids=["sqrt(-1)", "0/0", "(x-x)/0"],
)
def test_nan_program_scores_infinite_without_raising(exp2_search, program):
    s = score(program, exp2_search)
    assert s.max_err == math.inf and s.mean_err == math.inf
    assert s.n_nonfinite == s.n_points == 4096
    assert s.n_exact == 0 and not s.finite


def test_nan_outputs_count_as_errors_over_one(exp2_search):
    """A NaN output has infinite error (module docs), so it is an error above 1 ULP."""
    s = score(make_program([instr("sqrt", const_of(-1.0))]), exp2_search)
    assert s.n_over_one == s.n_points


def test_infinite_outputs_score_infinite(exp2_search):
    s = score(make_program([instr("div", const_of(1.0), const_of(0.0))]), exp2_search)
    assert s.max_err == math.inf and s.n_nonfinite == 4096 and s.n_over_one == 4096


def test_score_to_dict_is_strict_json_even_with_inf(exp2_search):
    s = score(make_program([instr("sqrt", const_of(-1.0))]), exp2_search)
    data = s.to_dict()
    text = json.dumps(data, allow_nan=False)  # no bare Infinity/NaN tokens
    back = Score.from_dict(json.loads(text))
    assert back.max_err == math.inf and back.mean_err == math.inf
    assert back.n_points == s.n_points and back.points == s.points
    finite = score(Program.identity(), exp2_search)
    assert Score.from_dict(json.loads(json.dumps(finite.to_dict(), allow_nan=False))) == finite


def test_real_number_setting_uses_relative_error(tmp_path):
    data = build_dataset(EXP2, "search", dtype="float64", cache_dir=tmp_path)
    assert data.metric == "rel" and data.x.dtype == np.float64
    s = score(Program.identity("float64"), data)
    # (2^x - x) / 2^x = 1 - x 2^-x is largest (1) at x = 0
    assert s.metric == "rel" and s.max_err == 1.0 and s.worst_x == 0.0


def test_float64_program_cannot_be_scored_in_float32(exp2_search):
    with pytest.raises(ValueError, match="cannot be scored"):
        score(Program.identity("float64"), exp2_search)
