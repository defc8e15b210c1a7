"""A run limits BLAS to one thread while it runs (seeding included) and restores the limit after."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from evo.api import evolve


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_a_run_sees_one_blas_thread_and_restores_the_limit(tmp_path):
    if not _blas_threads():
        pytest.fail("numpy loaded no BLAS library that threadpoolctl can see")
    seen = []
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        evolve(
            target="exp2",
            domain="1,1.001",
            population_size=8,
            tournament_size=4,
            search_points=256,
            select_points=512,
            signoff="none",
            max_evals=30,
            seed=1,
            runs_dir=str(tmp_path),
            on_start=lambda run_dir, config: seen.extend(_blas_threads()),
        )
        after = _blas_threads()
    assert seen and set(seen) == {1}
    assert set(after) == set(before) == {2}  # libraries loaded during the run included
