"""The ``evo export`` and ``evo fullrange`` commands: their arguments and what they print."""

from __future__ import annotations

import argparse
from pathlib import Path

from codegen.verify import CompilerMissing
from evo.errors import UsageError
from evo.export import EXTENSIONS, MISMATCH_EXIT, export_run


def register(commands) -> None:
    """Add the ``export`` subcommand to the ``evo`` argument parser."""
    parser = commands.add_parser(
        "export", help="write a run's programs as C, LLVM IR, JAX, jax-ffi or numpy kernels"
    )
    parser.add_argument("run", help="run directory")
    parser.add_argument("--pick", default="best", help="best (default), front, or a program hash (prefix)")
    parser.add_argument("--lang", default="c", choices=tuple(EXTENSIONS), help="output language (default c)")
    parser.add_argument("--out", help="output directory (default RUN/exports)")
    parser.add_argument(
        "--verify",
        action="store_true",
        help="check the kernel bit for bit on the final set (exit 3 on a mismatch)",
    )
    parser.add_argument("--name", help="kernel function name")
    parser.set_defaults(handler=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    exported = export_run(args.run, args.pick, args.lang, args.out, args.verify, args.name)
    status = 0
    for item in exported:
        for path in item.files or (item.path,):
            print(f"wrote {path}")
        for result in item.results:
            print(f"  {result.summary()}")
            if not result.ok:
                status = MISMATCH_EXIT
    if status:
        print("evo: error: the exported kernel does not compute what was scored", flush=True)
    return status


FULLRANGE_FUNCTIONS = ("exp2f", "expf", "log2f")


def register_fullrange(commands) -> None:
    """Add the ``fullrange`` subcommand: exp2f/expf/log2f around a kernel, checked on all 2^32 inputs."""
    parser = commands.add_parser(
        "fullrange", help="wrap a kernel into a full-range exp2f/expf/log2f and check every float32"
    )
    parser.add_argument("function", choices=FULLRANGE_FUNCTIONS)
    parser.add_argument(
        "--kernel",
        help="kernel program (file, RUN or RUN:HASH, or anchor:... spec); "
        "default: the shipped kernel of --tier",
    )
    parser.add_argument(
        "--tier",
        type=int,
        choices=(1, 2, 4),
        default=1,
        help="accuracy tier in ULPs of the shipped kernel (default 1)",
    )
    parser.add_argument("--out", help="also write the C source to this file (never overwritten)")
    parser.add_argument("--no-check", action="store_true", help="only write the source")
    parser.set_defaults(handler=_cmd_fullrange)


def _cmd_fullrange(args: argparse.Namespace) -> int:
    from codegen.exhaustive import check
    from codegen.fullrange import full_range_c
    from codegen.fullrange_kernels import tier
    from evo.loading import load_program

    kernel = tier(args.function, args.tier).kernel if args.kernel is None else load_program(args.kernel)
    if args.out:
        out = Path(args.out)
        if out.exists():
            raise UsageError(f"{args.out!r} exists; not overwriting it")
        out.write_text(full_range_c(args.function, kernel).source)
        print(f"wrote {out}")
    if args.no_check:
        return 0
    try:
        report = check(args.function, kernel)
    except CompilerMissing as exc:
        raise UsageError(f"the exhaustive check needs a C compiler: {exc}") from None
    print(report.text())
    return 0 if report.ok else MISMATCH_EXIT
