"""TargetError: the one error type for unusable targets (bad expression, bad domain, not real or finite)."""

from __future__ import annotations


class TargetError(ValueError):
    """A target that cannot be used: bad expression, bad domain, not real or not finite.

    Always a one-line message a user can act on (the CLI prints it and exits with code 2).
    Reference passes (``targets.reference``, ``targets.dataset.build_dataset`` of the final set)
    raise it too, naming the first float where the function is not defined, real or finite.
    """
