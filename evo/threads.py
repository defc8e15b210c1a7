"""The BLAS thread limit of a run: the classical seeds' dense fits are small, so one thread each."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def one_blas_thread(run: Callable[P, R]) -> Callable[P, R]:
    """Run ``run`` with BLAS limited to one thread, restored after.

    The seeding fits (least squares and linear programs on a few thousand points and a dozen
    unknowns) gain nothing from a second BLAS thread, whose spin-waiting doubled their CPU time on
    two cores and slowed searches running beside them. Evaluation is numba code and is unaffected."""

    @functools.wraps(run)
    def limited(*args: P.args, **kwargs: P.kwargs) -> R:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            return run(*args, **kwargs)

    return limited
