"""Exhaustive sweeps: the chunked parallel kernel with a fast reference agrees with mpmath scoring,
and (slow) every classical anchor scores exactly what was measured for it over all float32 inputs.
"""

from __future__ import annotations

import json
from importlib import resources

import pytest

from targets.baselines import anchor, anchor_spec
from targets.dataset import Sweep, build_dataset
from targets.registry import BUILTIN_TARGETS, get_target
from targets.scoring import score

ANCHORS = json.loads(resources.files("targets").joinpath("data/anchors.json").read_text())["targets"]


def test_sweep_equals_explicit_scoring_on_a_small_domain(tmp_path):
    """Every float32 of [1, 1.001]: sweep (libm reference) vs explicit points (mpmath references)."""
    target = get_target("exp2", domain="1,1.001")
    sweep = build_dataset(target, "final", cache_dir=tmp_path)
    assert isinstance(sweep, Sweep) and sweep.points.exhaustive
    explicit = build_dataset(target, "search", n=sweep.size, cache_dir=tmp_path)
    assert explicit.size == sweep.size  # the small domain is used whole
    program = anchor_spec("anchor:exp2").program
    a, b = score(program, sweep), score(program, explicit)
    assert a.n_points == b.n_points
    assert a.max_err == pytest.approx(b.max_err, abs=1e-6)
    assert a.mean_err == pytest.approx(b.mean_err, rel=1e-6)
    assert a.worst_x == b.worst_x
    assert (a.n_exact, a.n_over_one, a.n_nonfinite) == (b.n_exact, b.n_over_one, b.n_nonfinite)
    assert sweep.reference_deviation < 1e-6


def test_sweep_of_a_nan_program_is_infinite(tmp_path):
    from primitives.program import Instr, Program, Ref, X

    target = get_target("exp2", domain="1,1.0001")
    sweep = build_dataset(target, "final", cache_dir=tmp_path)
    nan_program = Program((Instr("sub", (X, X)), Instr("div", (Ref(1), Ref(1)))), Ref(2))
    result = score(nan_program, sweep)
    assert result.max_err == float("inf") and result.n_nonfinite == sweep.size


EXHAUSTIVE_CASES = [
    (t.name, fused) for t in BUILTIN_TARGETS for fused in (True, False) if anchor(t.name, fused) is not None
]


@pytest.mark.slow
@pytest.mark.parametrize(("target", "fused"), EXHAUSTIVE_CASES)
def test_every_anchor_matches_its_exhaustive_measurement(target, fused):
    baseline = anchor(target, fused)
    result = score(baseline.program, build_dataset(get_target(target), "final"))
    assert result.n_points == ANCHORS[target]["exhaustive_points"]
    assert result.max_err == pytest.approx(baseline.max_ulp_exhaustive, abs=0.002)


@pytest.mark.slow
def test_exp2_acceptance_numbers():
    """exp2 on [0, 1], every float32: FMA anchor (6 ops) 0.891 ULP, plain degree-6 Horner 1.275."""
    sweep = build_dataset(get_target("exp2"), "final")
    fma = score(anchor_spec("anchor:exp2").program, sweep)
    plain = score(anchor_spec("poly:exp2:horner_c0=1:6:plain").program, sweep)
    assert fma.max_err == pytest.approx(0.891, abs=0.0005)
    assert plain.max_err == pytest.approx(1.275, abs=0.0005)
