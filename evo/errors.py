"""The errors a user can cause (bad input, bad files): reported in one line, exit code 2."""

from __future__ import annotations

from primitives.ops import UnknownOpError
from primitives.program import ProgramError
from targets.target import TargetError


class UsageError(ValueError):
    """A bad command-line value, config entry or file that is not a program or target problem."""


class RunError(ValueError):
    """A missing, corrupt or incompatible run directory."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    UsageError,
    RunError,
    ProgramError,
    TargetError,
    UnknownOpError,
)
