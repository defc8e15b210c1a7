"""What we approximate: targets, point sets, mpmath references, datasets, scoring and classical baselines."""

from targets.registry import BUILTIN_TARGETS, expression_target, get_target
from targets.target import Target, TargetError

__all__ = ["BUILTIN_TARGETS", "Target", "TargetError", "expression_target", "get_target"]
