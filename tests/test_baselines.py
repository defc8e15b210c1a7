"""targets.baselines: the classical anchors rebuilt as programs, against the shipped measurements."""

from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from importlib import resources

import pytest

from primitives.program import Program
from targets.baselines import anchor, anchor_spec, baselines
from targets.dataset import build_dataset
from targets.registry import get_target, target_names
from targets.scoring import score
from targets.target import TargetError

ANCHORS = json.loads(resources.files("targets").joinpath("data/anchors.json").read_text())["targets"]
NAMES = target_names()
FMA_ANCHORED = [name for name in NAMES if ANCHORS[name]["anchor_fma"]]


def test_every_builtin_target_has_anchors_data():
    assert set(NAMES) == set(ANCHORS)


@pytest.mark.parametrize("name", NAMES)
def test_every_baseline_builds_a_valid_program_with_the_measured_op_count(name):
    polys = ANCHORS[name]["polys"]
    found = baselines(name)
    assert len(found) == 2 * len(polys)  # every polynomial, FMA and plain
    by_key = {(b.form, b.degree, b.fused): b for b in found}
    assert len(by_key) == len(found)
    for poly in polys:
        for fused in (True, False):
            b = by_key[(poly["form"], poly["degree"], fused)]
            p = b.program
            assert isinstance(p, Program) and p.dtype == "float32"
            assert p.is_pruned()  # nothing wasted
            expected_ops = poly["ops_fma"] if fused else poly["ops_plain"]
            assert p.op_count() == expected_ops, b.name
            hist = p.op_histogram()
            if fused:
                assert hist.get("fma", 0) >= 1
            else:
                assert "fma" not in hist
            assert set(hist) <= {"fma", "mul", "add", "sub"}
            mode = "fma" if fused else "plain"
            assert b.max_ulp_exhaustive == poly[mode]["exhaustive"]["max_ulp"]
            assert b.max_ulp_sample == poly[mode]["max_ulp"]
            assert b.target == name
            assert b.name == f"{name}:{poly['form']}:{poly['degree']}:{mode}"


@pytest.mark.parametrize("name", NAMES)
def test_baseline_constants_are_the_anchor_coefficients(name):
    for poly, b in zip(ANCHORS[name]["polys"], [b for b in baselines(name) if b.fused], strict=True):
        values = set(b.program.constant_values())
        for h in poly["inner_hex"]:
            assert float.fromhex(h) in values


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("fused", [True, False])
def test_anchor_matches_the_anchors_file(name, fused):
    documented = ANCHORS[name]["anchor_fma" if fused else "anchor_plain"]
    found = anchor(name, fused)
    if documented is None:
        assert found is None
        return
    assert found is not None and found.is_anchor and found.fused == fused
    assert (found.form, found.degree) == (documented["form"], documented["degree"])
    assert found.program.op_count() == documented["ops"]
    assert found.max_ulp_exhaustive == documented["max_ulp"]  # the anchor's exhaustive maximum
    assert found.max_ulp_exhaustive < 1.0  # "fewest ops with max ULP < 1"
    others = [b for b in baselines(name) if b.fused == fused and b.is_anchor]
    assert others == [found]


def test_documented_exp2_anchors():
    fma = anchor("exp2_0_1", True)
    assert fma is not None and fma.program.op_count() == 6
    assert fma.form == "horner_c0=1" and fma.degree == 6
    assert fma.program.op_histogram() == {"fma": 6}
    assert anchor("exp2_0_1", False) is None


def test_baselines_of_unknown_target():
    with pytest.raises(TargetError, match="no classical anchors"):
        baselines("nope")


# ----------------------------------------------------------------------------- anchor_spec
def test_anchor_spec_forms():
    assert anchor_spec("anchor:exp2") == anchor("exp2_0_1", True)
    assert anchor_spec("anchor:exp2_0_1:fma") == anchor("exp2_0_1", True)
    assert anchor_spec("anchor:exp:plain") == anchor("exp_ln2h", False)
    b = anchor_spec("poly:exp2_0_1:horner:7")
    assert (b.target, b.form, b.degree, b.fused) == ("exp2_0_1", "horner", 7, True)
    b = anchor_spec("poly:sin:x+x^3*q(x^2):7:plain")
    assert (b.target, b.form, b.degree, b.fused) == ("sin_pi4", "x+x^3*q(x^2)", 7, False)
    assert b.program.op_count() == 8


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("anchor:exp2:plain", "no plain anchor"),
        ("anchor:nope", "no classical anchors"),
        ("poly:exp2_0_1:horner:99", "no polynomial 'horner' of degree 99"),
        ("poly:exp2_0_1:nosuchform:6", "no polynomial"),
        ("poly:exp2_0_1:horner", "cannot read baseline"),
        ("anchor", "cannot read baseline"),
        ("anchor:exp2:fma:extra", "cannot read baseline"),
        ("exp2", "cannot read baseline"),
        ("", "cannot read baseline"),
    ],
)
def test_anchor_spec_errors(spec, message):
    with pytest.raises(TargetError, match=message):
        anchor_spec(spec)


# ----------------------------------------------------------------------------- scored anchors
@pytest.fixture(scope="module")
def select_sets(tmp_path_factory):
    """The select set (seed 0) of every FMA-anchored target, references computed in parallel."""
    cache = tmp_path_factory.mktemp("select-refs")
    workers = min(len(FMA_ANCHORED), os.cpu_count() or 1)
    if workers <= 1:
        return {
            name: build_dataset(get_target(name), "select", seed=0, cache_dir=cache) for name in FMA_ANCHORED
        }
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {
            name: pool.submit(build_dataset, get_target(name), "select", "float32", 0, None, cache)
            for name in FMA_ANCHORED
        }
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("name", FMA_ANCHORED)
def test_fma_anchor_error_on_select_set_is_consistent_with_exhaustive(select_sets, name):
    data = select_sets[name]
    assert data.kind == "select" and data.size == 65536
    found = anchor(name, True)
    exhaustive = ANCHORS[name]["anchor_fma"]
    polys = {(p["form"], p["degree"]): p for p in ANCHORS[name]["polys"]}
    bound = polys[(exhaustive["form"], exhaustive["degree"])]["fma"]["exhaustive"]["max_ulp"]
    assert bound == exhaustive["max_ulp"] < 1.0
    s = score(found.program, data)
    assert s.n_nonfinite == 0
    # a sample can only under-estimate the maximum over every float of the domain
    assert s.max_err <= bound + 1e-6
    # and 65536 well-spread points get close to it
    assert s.max_err >= 0.5 * bound
    assert s.n_over_one == 0
