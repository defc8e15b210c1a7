"""The ``evo fit`` command: refit the constants of a given program, keeping its structure."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from evo.compensated import frozen_slots
from evo.errors import UsageError
from evo.fit import FitSettings, fit_data, fit_thorough, polish
from primitives.encode import encode
from primitives.floatbits import float_to_bits, get_format
from primitives.jsonform import dumps
from primitives.program import Program
from primitives.textform import to_text
from targets.dataset import build_dataset
from targets.scoring import score


def register(commands) -> None:
    """Add the ``fit`` subcommand to the ``evo`` argument parser."""
    parser = commands.add_parser("fit", help="refit the constants of a program (its structure is kept)")
    parser.add_argument(
        "program",
        help="PROGRAM.json, a text-form file, '-', a baseline spec, or a run: RUN (its best) or RUN:HASH",
    )
    parser.add_argument("--target", help="built-in target (see 'evo targets')")
    parser.add_argument("--expr", help="a target expression in x, e.g. 'exp(x) - 1'")
    parser.add_argument("--domain", help="domain 'lo,hi' (required with --expr)")
    parser.add_argument(
        "--mode",
        choices=("float32", "real"),
        help="float32 (ULP error) or real (float64, relative error); default: the program's format",
    )
    parser.add_argument(
        "--restarts", type=int, default=12, help="jittered Levenberg-Marquardt restarts (default 12)"
    )
    parser.add_argument("--no-cma", action="store_true", help="skip the CMA-ES stage")
    parser.add_argument("--seed", type=int, default=0, help="seed of the restarts and of CMA-ES (default 0)")
    parser.add_argument(
        "--out", help="write the fitted program here (.json: JSON, otherwise text form; never overwritten)"
    )
    parser.set_defaults(handler=_cmd_fit)


def refit(program: Program, search, restarts: int = 12, use_cma: bool = True, seed: int = 0) -> Program:
    """The program with constants fitted on ``search`` (the start is kept if nothing fits better)."""
    if not program.constants():
        return program
    free = encode(program, share_constants=False)
    data = fit_data(
        search.x, search.ref_hi, search.ref_lo, search.inv_scale, precise=program.dtype == "float64"
    )
    result = fit_thorough(
        free, np.asarray(free.consts, np.float64), data, FitSettings(), restarts, use_cma, seed
    )
    fmt = get_format(program.dtype)
    constants = result.constants.copy()
    frozen = list(frozen_slots(program.pruned()))  # error-free-transformation constants stay
    constants[frozen] = np.asarray(free.consts, np.float64)[frozen]
    with np.errstate(over="ignore", invalid="ignore"):
        rounded = constants.astype(fmt.dtype)
    if not np.all(np.isfinite(rounded)):
        return program
    if fmt.width == 32:
        rounded, _, _, _ = polish(
            free.opcodes,
            free.args,
            rounded,
            free.out,
            search.x,
            search.ref_hi,
            search.ref_lo,
            search.inv_scale,
            search.rounded,
            4096,
            frozen,
        )
    fitted = program.pruned().with_constants([float_to_bits(float(v), fmt) for v in rounded])
    before, after = score(program, search), score(fitted, search)
    return fitted if (after.max_err, after.mean_err) < (before.max_err, before.mean_err) else program


def _cmd_fit(args: argparse.Namespace) -> int:
    from evo.loading import load_program, resolve_target

    if args.restarts < 0:
        raise UsageError("--restarts must be >= 0")
    out = Path(args.out) if args.out else None
    if out is not None and out.exists():
        raise UsageError(f"{args.out!r} exists; not overwriting it")
    program = load_program(args.program)
    dtype = program.dtype if args.mode is None else ("float64" if args.mode == "real" else "float32")
    if dtype != program.dtype:
        raise UsageError(f"the program is {program.dtype} but --mode {args.mode} needs a {dtype} program")
    target = resolve_target(args.target, args.expr, args.domain)
    search = build_dataset(target, "search", dtype)
    select = build_dataset(target, "select", dtype)
    fitted = refit(program, search, args.restarts, not args.no_cma, args.seed)
    unit = "ULP" if search.metric == "ulp" else "relative"
    print(
        f"target {target.name}: {target.expr} ({dtype}); {program.op_count()} ops, "
        f"{len(program.constants())} constants"
    )
    for name, data in (("search", search), ("select", select)):
        b, a = score(program, data), score(fitted, data)
        print(
            f"{name:6s} max error {b.max_err:.6g} -> {a.max_err:.6g} {unit}   (mean {b.mean_err:.3g} -> "
            f"{a.mean_err:.3g})"
        )
    if fitted is program:
        print("no better constants found; the program is unchanged")
    print(to_text(fitted), end="")
    if out is not None:
        text = dumps(fitted) + "\n" if out.suffix == ".json" else to_text(fitted)
        try:
            with out.open("x") as handle:
                handle.write(text)
        except FileExistsError:
            raise UsageError(f"{args.out!r} exists; not overwriting it") from None
        except OSError as exc:
            raise UsageError(f"cannot write {args.out!r}: {exc}") from None
        print(f"wrote {out}")
    return 0
