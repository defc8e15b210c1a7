"""Targets defined on every float32 of the domain or refused (defect 4 of the hardening list).

Before: a pole at a float32 inside the domain passed validation (65 probes), and the reference
pass of the exhaustive final set (``evo score --points final``, the end-of-run sign-off) crashed
with ZeroDivisionError. Now exact poles are found up front where they are rational zeros of
polynomial denominators, and the final set's reference pass reports the first bad x as a one-line
TargetError.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from evo.cli import main
from primitives.floatbits import FLOAT32
from targets.poles import rational_zeros
from targets.reference import probe_points
from targets.registry import expression_target
from targets.target import TargetError, X

C = float(np.float32(0.3))  # 0x1.333334p-2 = 5033165 / 2^24, a float32
C_TEXT = "5033165/16777216"
C_HEX = "0x1.333334p-2"
DOMAIN = "0.28,0.33"  # about 1.7 million floats; no probe lands on C


def test_the_pole_is_not_a_probe():
    lo, hi = np.float32(0.28), np.float32(0.33)
    assert C not in probe_points(float(lo), float(hi), FLOAT32)
    assert float(lo) < C < float(hi)


@pytest.mark.parametrize(
    "expr",
    [
        f"1/(x - {C_TEXT})",
        f"x/(x**3 - ({C_TEXT})**3)",
        f"log(abs(x - {C_TEXT}))",
        f"abs(x - {C_TEXT})**(-1/2) + 1",
        "1/(16777216*x - 5033165)",
    ],
)
def test_exact_poles_at_a_float32_are_refused_up_front(expr):
    with pytest.raises(TargetError, match=f"not finite at x = {C_HEX}"):
        expression_target(expr, DOMAIN)


def test_poles_outside_the_floats_or_the_domain_are_fine():
    expression_target("1/(x - 3/10)", DOMAIN)  # 3/10 is no float: every float32 has a finite value
    expression_target(f"1/(x - {C_TEXT})", "0.31,0.33")  # the pole is outside


def test_rational_zeros():
    assert sorted(rational_zeros((X - 1) * (2 * X + 1) * (X**2 + 1))) == [-0.5, 1]
    assert rational_zeros(X**2 - 2) == []


def cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def test_score_points_final_is_a_one_line_error():
    code, out, err = cli(
        "score", "anchor:exp2", "--expr", f"1/(x - {C_TEXT})", "--domain", DOMAIN, "--points", "final"
    )
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("evo: error: ") and C_HEX in lines[0], err
    assert "Traceback" not in err and "ZeroDivisionError" not in err
