"""Fast float64 references of user expressions keep their relative accuracy where 1 + u rounds."""

from __future__ import annotations

import math

import numpy as np

from targets.fastref import fast_reference
from targets.registry import expression_target


def test_log_of_one_plus_and_exp_minus_one_are_accurate_at_tiny_arguments():
    log2p1 = fast_reference(expression_target("log(1+x)/log(2)", "0,1", "log2p1"))
    expm1 = fast_reference(expression_target("exp(x)-1", "-1,1", "expm1"))
    for x in (1e-30, 3e-12, 1e-5):
        assert abs(log2p1(np.float64(x)) / (math.log1p(x) / math.log(2)) - 1) < 1e-14
        assert abs(expm1(np.float64(x)) / math.expm1(x) - 1) < 1e-14
    assert abs(log2p1(np.float64(0.75)) - math.log2(1.75)) < 1e-15
