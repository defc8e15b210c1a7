"""Resolving what the user names: program files or baseline specs, and targets or expressions."""

from __future__ import annotations

import sys
from pathlib import Path

from evo.config import check_target_choice
from evo.errors import UsageError
from primitives.jsonform import loads
from primitives.program import Program, ProgramError
from primitives.textform import parse_text
from targets.registry import expression_target, get_target
from targets.target import Target


def load_program(spec: str) -> Program:
    """A program from a JSON file, a text-form file, ``-`` (stdin), a baseline spec
    (``anchor:exp2``, ``anchor:exp:plain``, ``poly:exp2_0_1:horner:7:fma``), or a run directory
    (``runs/RUN`` for its best program, ``runs/RUN:HASH`` for one by hash prefix).
    """
    if spec.startswith(("anchor:", "poly:")):
        from targets.baselines import anchor_spec

        return anchor_spec(spec).program
    run_dir, _, which = spec.rpartition(":") if ":" in spec else (spec, "", "best")
    if Path(run_dir).is_dir() and (Path(run_dir) / "config.json").exists():
        from evo.run import Run

        return Run.load(run_dir).lookup(which or "best").program
    if spec == "-":
        text = sys.stdin.read()
        where = "stdin"
    else:
        path = Path(spec)
        if not path.exists():
            raise UsageError(f"program file {spec!r} does not exist")
        if path.is_dir():
            raise UsageError(f"{spec!r} is a directory, not a program file")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read program file {spec!r}: {exc}") from None
        where = spec
    try:
        if text.lstrip().startswith("{"):
            return loads(text)
        return parse_text(text)
    except ProgramError as exc:
        raise ProgramError(f"{where}: {exc}") from None
    except RecursionError:
        raise ProgramError(f"{where}: nested too deeply to be a program") from None


def resolve_target(
    name: str | None, expr: str | None, domain: str | None, label: str | None = None
) -> Target:
    """A built-in target by name (optionally on another domain) or an expression on a domain."""
    check_target_choice(name, expr, domain)
    if expr is not None:
        return expression_target(expr, domain, name=label)
    return get_target(name, domain)
