"""Shared helpers of the fit and island tests: the paper's f10 with its constants put off, and a
progress hook that kills one Ray host once."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np

from primitives.floatbits import FLOAT64, bits_to_float, float_to_bits
from primitives.program import Program
from primitives.textform import parse_text


def f10_ten_percent_off() -> Program:
    """The paper's f10 with every constant 10% off, the signs drawn with a fixed seed."""
    text = resources.files("targets").joinpath("data/paper_exp2.json").read_text()
    f10 = parse_text(json.loads(text)["programs"]["f10"]["program"])
    signs = np.random.default_rng(3).choice([-1.0, 1.0], len(f10.constants()))
    return f10.with_constants(
        [
            float_to_bits(bits_to_float(b, FLOAT64) * (1 + 0.1 * s), FLOAT64)
            for b, s in zip(f10.constants(), signs, strict=True)
        ]
    )


def kill_host_once(executor, at: int, killed: list[int], host: int = 1):
    """A progress hook that kills the executor's Ray host ``host`` once the run has made ``at``
    evaluations, recording that count in ``killed``."""
    import ray

    def kill_once(snapshot: dict) -> None:
        if not killed and snapshot["n_evals"] >= at:
            killed.append(snapshot["n_evals"])
            ray.kill(executor._hosts[host])

    return kill_once
