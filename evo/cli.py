"""The ``evo`` command line: argument parsing and the one-line error contract (exit code 2)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from evo.errors import USER_ERRORS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evo",
        description="Discover fast float32 implementations of mathematical functions by evolution.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    targets = commands.add_parser("targets", help="list the built-in targets and their domains")
    targets.add_argument("--json", action="store_true", help="machine-readable output")
    targets.set_defaults(handler=_cmd_targets)

    score = commands.add_parser("score", help="score a program (file or baseline) on a target")
    score.add_argument("program", help="PROGRAM.json, a text-form file, '-', or anchor:TARGET[:fma|plain]")
    _add_target_arguments(score)
    score.add_argument(
        "--points", choices=("search", "select", "final"), default="select",
        help="point set: search (4096), select (65536) or final (every float32 when feasible)",
    )
    score.add_argument("--seed", type=int, default=0, help="seed of the sampled point sets (default 0)")
    score.add_argument("--mode", choices=("float32", "real"), default="float32",
                       help="float32 arithmetic and ULP error, or float64 arithmetic and relative error")
    score.add_argument("--json", action="store_true", help="machine-readable output")
    score.set_defaults(handler=_cmd_score)

    anchors = commands.add_parser("anchors", help="list the classical polynomial baselines of a target")
    anchors.add_argument("target", help="built-in target name")
    anchors.add_argument("--all", action="store_true", help="every polynomial, not only the anchors")
    anchors.add_argument("--show", action="store_true", help="print each program's text")
    anchors.set_defaults(handler=_cmd_anchors)
    return parser


def _add_target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", help="built-in target (see 'evo targets')")
    parser.add_argument("--expr", help="a target expression in x, e.g. 'exp(x) - 1'")
    parser.add_argument("--domain", help="domain 'lo,hi' (required with --expr), e.g. '-pi/4,pi/4'")
    parser.add_argument("--name", help="name for an --expr target")


def _cmd_targets(args: argparse.Namespace) -> int:
    from targets.baselines import anchor
    from targets.points import domain_ordinals
    from targets.registry import ALIASES, BUILTIN_TARGETS
    from primitives.floatbits import FLOAT32

    rows = []
    for target in BUILTIN_TARGETS:
        lo, hi = target.domain(FLOAT32)
        o_lo, o_hi = domain_ordinals(lo, hi, FLOAT32)
        best = anchor(target.name, True)
        rows.append(
            {
                "name": target.name,
                "aliases": [a for a, n in ALIASES.items() if n == target.name],
                "expr": target.expr,
                "domain": target.domain_text(FLOAT32),
                "float32_points": o_hi - o_lo + 1,
                "description": target.description,
                "anchor_ops": best.program.op_count() if best else None,
                "anchor_max_ulp": best.max_ulp_exhaustive if best else None,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'target':13s} {'alias':6s} {'function':24s} {'float32 values':>14s}  classical FMA anchor")
    for row in rows:
        anchor_text = f"{row['anchor_ops']} ops, {row['anchor_max_ulp']:.3f} ULP" if row["anchor_ops"] else "-"
        print(
            f"{row['name']:13s} {','.join(row['aliases']):6s} {row['description']:24s} "
            f"{row['float32_points']:>14,d}  {anchor_text}"
        )
    print("\nOr any expression: --expr 'log1p(x)' --domain 0,1")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from evo.loading import load_program, resolve_target
    from targets.dataset import build_dataset
    from targets.scoring import score

    program = load_program(args.program)
    target = resolve_target(args.target, args.expr, args.domain, args.name)
    dtype = "float64" if args.mode == "real" else "float32"
    data = build_dataset(target, args.points, dtype=dtype, seed=args.seed)
    result = score(program, data)
    info = {
        "program": {"hash": program.canonical_hash(), "ops": program.op_count(), "cost": program.cost(), "depth": program.depth()},
        "target": {"name": target.name, "expr": target.expr, "domain": target.domain_text(dtype)},
        "score": result.to_dict(),
    }
    if getattr(data, "reference_deviation", None) is not None:
        info["reference"] = {"fast_reference_max_deviation_ulp": data.reference_deviation, "checked_on_points": data.deviation_points}
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    unit = "ULP" if result.metric == "ulp" else "relative"
    print(f"program {info['program']['hash']}: {program.op_count()} ops, cost {program.cost():g}, depth {program.depth()}")
    print(f"target  {target.name}: {target.expr} on {info['target']['domain']} ({dtype})")
    print(f"points  {result.points}")
    print(f"max error   {result.max_err:.6g} {unit} at x = {result.worst_x!r}")
    print(f"mean error  {result.mean_err:.6g} {unit}")
    print(f"correctly rounded {result.frac_exact:.4%}; over 1 ULP: {result.n_over_one}; non-finite: {result.n_nonfinite}")
    if "reference" in info:
        print(f"reference: libm float64, max deviation from mpmath {data.reference_deviation:.2g} ULP on {data.deviation_points} points")
    return 0


def _cmd_anchors(args: argparse.Namespace) -> int:
    from targets.baselines import baselines
    from targets.registry import ALIASES

    target = ALIASES.get(args.target, args.target)
    found = [b for b in baselines(target) if args.all or b.is_anchor]
    if not found:
        print(f"{target}: no polynomial reaches 1 ULP; use --all to list them all")
    for b in found:
        mark = "anchor" if b.is_anchor else ""
        print(f"{b.name:40s} {b.program.op_count():3d} ops  max ULP {b.max_ulp_exhaustive:12.4f} (exhaustive) {mark}")
        if args.show:
            print(b.program)
    return 0


def _join_negative_values(argv: list[str]) -> list[str]:
    """Let ``--domain -1,1`` work: argparse would take ``-1,1`` for an option."""
    joined: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg in ("--domain", "--set") and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            joined.append(f"{arg}={argv[i + 1]}")
            skip = True
        else:
            joined.append(arg)
    return joined


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_join_negative_values(list(sys.argv[1:] if argv is None else argv)))
    try:
        return int(args.handler(args) or 0)
    except USER_ERRORS as exc:
        print(f"evo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("evo: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
