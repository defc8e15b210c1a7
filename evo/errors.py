"""The errors a user can cause (bad input, bad files): reported in one line.

The exit code is 2 (1 for a failing disk).
"""

from __future__ import annotations

from primitives.ops import UnknownOpError
from primitives.program import ProgramError
from targets.target import TargetError


class UsageError(ValueError):
    """A bad command-line value, config entry or file that is not a program or target problem."""


class RunError(ValueError):
    """A missing, corrupt, busy, incompatible or unwritable run directory."""


class StorageError(RuntimeError):
    """The disk failed under a write (full, over quota, I/O error): reported in one line, exit code 1."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    UsageError,
    RunError,
    ProgramError,
    TargetError,
    UnknownOpError,
)
