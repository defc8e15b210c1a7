"""The ``evo`` command line: argument parsing and the one-line error contract (exit code 2)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from evo.errors import USER_ERRORS, StorageError
from evo.setting import setting_for, setting_of_metric

INTERRUPTED_EXIT = 130  # a stopped run (Ctrl-C, SIGTERM) is resumable but did not finish


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
    score.add_argument(
        "program",
        help="PROGRAM.json, a text-form file, '-', anchor:TARGET[:fma|plain], "
        "or a run: RUN (its best) or RUN:HASH",
    )
    _add_target_arguments(score)
    score.add_argument(
        "--points",
        choices=("search", "select", "final"),
        default="select",
        help="point set: search (4096), select (65536) or final (every float32 when feasible)",
    )
    score.add_argument("--seed", type=int, default=0, help="seed of the sampled point sets (default 0)")
    score.add_argument(
        "--mode",
        choices=("float32", "real"),
        default="float32",
        help="float32 arithmetic and ULP error, or float64 arithmetic and relative error",
    )
    score.add_argument("--json", action="store_true", help="machine-readable output")
    score.set_defaults(handler=_cmd_score)

    evolve = commands.add_parser("evolve", help="search for programs approximating a target")
    _add_target_arguments(evolve)
    evolve.add_argument(
        "--mode", choices=("float32", "real"), help="float32 (ULP error) or real (float64, relative error)"
    )
    evolve.add_argument("--ops", help="allowed ops, comma separated (default add,sub,mul,div,fma)")
    evolve.add_argument("--max-ops", type=int, help="op-count bound; minimise error within it (default 8)")
    evolve.add_argument(
        "--target-error",
        type=float,
        help="minimise cost among programs within this error "
        "(ULPs in float32 mode, relative error in real mode)",
    )
    evolve.add_argument(
        "--target-ulp", type=float, help="the float32 spelling of --target-error (a number of ULPs)"
    )
    evolve.add_argument(
        "--cost",
        choices=("ops", "latency", "throughput"),
        help="cost to minimise: weighted op count (default), latency in cycles per call, "
        "or cycles per array element",
    )
    evolve.add_argument(
        "--cost-source",
        choices=("measure", "llvm-mca"),
        help="cycle table of --cost latency/throughput: "
        "timed microkernels (default) or llvm-mca's host model",
    )
    evolve.add_argument(
        "--stop-when-certified",
        action="store_true",
        default=None,
        help="with --target-error: stop once a program is certified on the final set",
    )
    evolve.add_argument("--max-evals", type=int, help="stop after this many evaluations")
    evolve.add_argument("--max-seconds", type=float, help="stop after this many seconds")
    evolve.add_argument("--seed", type=int, help="random seed (drawn, printed and recorded if omitted)")
    evolve.add_argument(
        "--seed-from",
        choices=("identity", "anchors", "classical"),
        help="start from f(x) = x, the shipped anchors of a built-in, or minimax polynomials "
        "of every op count fitted to the target (classical)",
    )
    evolve.add_argument(
        "--population", type=int, dest="population_size", help="population size (default 100)"
    )
    evolve.add_argument("--tournament", type=int, dest="tournament_size", help="tournament size (default 10)")
    evolve.add_argument(
        "--signoff", choices=("front", "best", "none"), help="what to score on the final set at the end"
    )
    evolve.add_argument("--runs-dir", help="where run directories are created (default ./runs)")
    _add_backend_arguments(evolve)
    _add_island_arguments(evolve)
    evolve.add_argument("--config", help="TOML file of config keys (see README)")
    evolve.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override any config key (repeatable)"
    )
    evolve.add_argument("--quiet", action="store_true", help="no live progress")
    evolve.set_defaults(handler=_cmd_evolve)

    resume = commands.add_parser("resume", help="continue a run from its last checkpoint")
    resume.add_argument("run", help="run directory")
    resume.add_argument("--max-evals", type=int, help="new total number of evaluations")
    resume.add_argument(
        "--max-seconds",
        type=float,
        help="new total seconds from the run's start (alone, it replaces --max-evals)",
    )
    _add_backend_arguments(resume)
    resume.add_argument("--quiet", action="store_true", help="no live progress")
    resume.set_defaults(handler=_cmd_resume)

    inspect = commands.add_parser("inspect", help="summarise a run (or list the runs in a directory)")
    inspect.add_argument("run", help="a run directory, or a directory of runs (e.g. runs/)")
    inspect.add_argument("--program", metavar="HASH|best", help="show one program (text, math form)")
    inspect.add_argument("--latex", action="store_true", help="with --program: also LaTeX")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    inspect.add_argument(
        "--plot", metavar="DIR", help="write PNG plots of the front and best-over-time into DIR"
    )
    inspect.set_defaults(handler=_cmd_inspect)

    from evo.exportcmd import register as register_export
    from evo.exportcmd import register_fullrange

    register_export(commands)
    register_fullrange(commands)

    from evo.fitcmd import register as register_fit

    register_fit(commands)

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


def _add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=("serial", "ray"), help="where evaluations run (default serial)")
    parser.add_argument("--workers", type=int, help="Ray workers (default: one per CPU)")
    parser.add_argument("--ray-address", help="join an existing Ray cluster ('auto' or HOST:PORT)")


def _add_island_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--islands",
        type=int,
        help="populations that exchange programs (default: 1 serial, one per Ray worker)",
    )
    parser.add_argument(
        "--migrate-every", type=int, help="evaluations per island between migrations (default 1000)"
    )
    parser.add_argument("--migration", choices=("ring", "random"), help="where migrants go (default ring)")
    parser.add_argument(
        "--sync-migration",
        action="store_true",
        default=None,
        help="migrate at fixed counts in a fixed order: deterministic whatever the timing",
    )


_FLAG_KEYS = (
    "target",
    "expr",
    "domain",
    "name",
    "mode",
    "ops",
    "max_ops",
    "target_ulp",
    "target_error",
    "max_evals",
    "max_seconds",
    "seed",
    "seed_from",
    "population_size",
    "tournament_size",
    "signoff",
    "runs_dir",
    "backend",
    "workers",
    "ray_address",
    "stop_when_certified",
    "cost",
    "cost_source",
    "islands",
    "migrate_every",
    "migration",
    "sync_migration",
)


def _config_from_args(args: argparse.Namespace):
    from evo.config import load_toml, resolve
    from evo.errors import UsageError

    base = load_toml(args.config) if args.config else {}
    flags = {key: getattr(args, key) for key in _FLAG_KEYS if getattr(args, key, None) is not None}
    if "expr" in flags and "target" not in flags:
        base.pop("target", None)
        flags["target"] = None
    if "target_error" in flags and "target_ulp" in flags:
        raise UsageError(
            "give --target-error or --target-ulp, not both (--target-ulp is the float32 spelling)"
        )
    for flag, other in (("target_error", "target_ulp"), ("target_ulp", "target_error")):
        if flag in flags:
            base.pop(other, None)  # a flag overrides the file's threshold, whichever spelling it used
    return resolve({**base, **flags}, args.set)


def _threshold_line(config) -> str:
    """What the error threshold means for this run (relative in real mode, ULPs in float32)."""
    if config.target_error is None and config.mode == "real":
        return "real mode: errors are relative, |y - f(x)| / |f(x)|; no target error"
    return config.describe_target_error()


def _print_result(result, metric: str) -> None:
    from evo.costmodel import cost_columns
    from evo.report import front_table
    from primitives.textform import to_text

    rows = [
        {
            "cost": e.cost,
            "ops": e.individual.program.op_count(),
            "hash": e.individual.program.canonical_hash(),
            "search": e.individual.score.max_err,
            "select": e.select.max_err,
            "final": None if e.final is None else e.final.max_err,
            "cycles": cost_columns(e.individual.program, result.config.cost_table),
        }
        for e in result.front.entries
    ]
    print(
        f"\nfront after {result.n_evals:,d} evaluations ({result.reason}); final = every float32 of the "
        "domain where feasible"
    )
    print(front_table(rows, metric))
    if result.best is not None:
        best = result.best
        err = best.final if best.final is not None else best.select
        unit = setting_of_metric(metric).unit
        print(f"\nbest: {err.max_err:.6g} {unit} on {err.points}, cost {best.cost:g}")
        print(to_text(best.individual.program).rstrip())
    print(f"\nrun directory: {result.run_dir}  (evo inspect {result.run_dir})")


def _cmd_evolve(args: argparse.Namespace) -> int:
    from evo.api import evolve
    from evo.errors import UsageError
    from evo.progress import ConsoleProgress

    config = _config_from_args(args)
    if config.max_evals is None and config.max_seconds is None:
        raise UsageError("give a budget: --max-evals N or --max-seconds S")

    def started(run_dir, resolved) -> None:
        print(f"evo: seed {resolved.seed}, run {run_dir}", flush=True)
        print(f"evo: {_threshold_line(resolved)}", flush=True)

    with ConsoleProgress(quiet=args.quiet) as progress:
        result = evolve(config, on_progress=progress, on_start=started)
    _print_result(result, setting_for(config.mode).metric)
    return _exit_code(result)


def _cmd_resume(args: argparse.Namespace) -> int:
    from evo.api import resume
    from evo.progress import ConsoleProgress
    from evo.runlog import RunReader

    reader = RunReader(args.run)
    overrides = {
        k: getattr(args, k) for k in ("backend", "workers", "ray_address") if getattr(args, k) is not None
    }
    print(f"evo: seed {reader.config.seed}, run {args.run} (resumed)", flush=True)
    print(f"evo: {_threshold_line(reader.config)}", flush=True)
    with ConsoleProgress(quiet=args.quiet) as progress:
        result = resume(
            args.run,
            max_evals=args.max_evals,
            max_seconds=args.max_seconds,
            on_progress=progress,
            **overrides,
        )
    _print_result(result, setting_for(result.config.mode).metric)
    return _exit_code(result)


def _exit_code(result) -> int:
    """INTERRUPTED_EXIT for an interrupted run (as for any Ctrl-C), which ``evo resume`` continues."""
    if result.reason != "interrupted":
        return 0
    print(f"interrupted: evo resume {result.run_dir} continues the run (and its sign-off)", file=sys.stderr)
    return INTERRUPTED_EXIT


def _cmd_inspect(args: argparse.Namespace) -> int:
    from evo import report
    from evo.errors import RunError
    from evo.runlog import dumps

    if not report.is_run_dir(args.run):
        from pathlib import Path

        if not Path(args.run).is_dir():
            raise RunError(f"run directory {args.run!r} does not exist")
        rows = report.list_runs(args.run)
        if args.json:
            print(dumps(rows, indent=1))
            return 0
        if not rows:
            print(f"no runs in {args.run}")
        for row in rows:
            if "target" not in row:
                print(f"{row['run']:45s} {row['status']}")
                continue
            best = report.format_error(row["best"], row["metric"])
            print(
                f"{row['run']:45s} {row['status']:10s} {row['n_evals']:>10,d} evals  best {best} at cost "
                f"{row['best_cost']}"
            )
        return 0
    if args.program:
        program, entry = report.find_program(args.run, args.program)
        if args.json:
            from primitives.jsonform import to_dict

            print(dumps({"program": to_dict(program), "entry": entry}, indent=1))
        else:
            print(report.program_text(program, latex=args.latex))
        return 0
    summary = report.run_summary(args.run)
    if args.plot:
        for path in report.plot_run(summary, args.plot):
            print(f"wrote {path}")
    if args.json:
        print(dumps(summary, indent=1))
    else:
        print(report.summary_text(summary))
    return 0


def _cmd_targets(args: argparse.Namespace) -> int:
    from primitives.floatbits import FLOAT32
    from targets.baselines import anchor
    from targets.points import domain_ordinals
    from targets.registry import ALIASES, BUILTIN_TARGETS

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
        anchor_text = (
            f"{row['anchor_ops']} ops, {row['anchor_max_ulp']:.3f} ULP" if row["anchor_ops"] else "-"
        )
        print(
            f"{row['name']:13s} {','.join(row['aliases']):6s} {row['description']:24s} "
            f"{row['float32_points']:>14,d}  {anchor_text}"
        )
    print("\nOr any expression: --expr 'log1p(x)' --domain 0,1")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from evo.api import point_set
    from evo.loading import load_program, resolve_target
    from targets.scoring import score

    program = load_program(args.program)
    target = resolve_target(args.target, args.expr, args.domain, args.name)
    dtype = setting_for(args.mode).dtype
    data = point_set(target, args.points, args.mode, args.seed)
    result = score(program, data)
    info = {
        "program": {
            "hash": program.canonical_hash(),
            "ops": program.op_count(),
            "cost": program.cost(),
            "depth": program.depth(),
        },
        "target": {"name": target.name, "expr": target.expr, "domain": target.domain_text(dtype)},
        "score": result.to_dict(),
    }
    if getattr(data, "reference_deviation", None) is not None:
        info["reference"] = {
            "fast_reference_max_deviation_ulp": data.reference_deviation,
            "checked_on_points": data.deviation_points,
        }
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    unit = setting_of_metric(result.metric).unit
    print(
        f"program {info['program']['hash']}: {program.op_count()} ops, cost {program.cost():g}, depth "
        f"{program.depth()}"
    )
    print(f"target  {target.name}: {target.expr} on {info['target']['domain']} ({dtype})")
    print(f"points  {result.points}")
    print(f"max error   {result.max_err:.6g} {unit} at x = {result.worst_x!r}")
    print(f"mean error  {result.mean_err:.6g} {unit}")
    print(
        f"correctly rounded {result.frac_exact:.4%}; over 1 ULP: {result.n_over_one}; non-finite: "
        f"{result.n_nonfinite}"
    )
    if "reference" in info:
        print(
            f"reference: libm float64, max deviation from mpmath {data.reference_deviation:.2g} ULP on "
            f"{data.deviation_points} points"
        )
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
        print(
            f"{b.name:40s} {b.program.op_count():3d} ops  max ULP {b.max_ulp_exhaustive:12.4f} (exhaustive) "
            f"{mark}"
        )
        if args.show:
            print(b.program)
    return 0


def _join_negative_values(argv: list[str]) -> list[str]:
    """Let ``--domain -1,1`` and ``--expr -x`` work: argparse would take ``-1,1`` for an option."""
    joined: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg in ("--domain", "--set", "--expr") and i + 1 < len(argv) and argv[i + 1].startswith("-"):
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
        return INTERRUPTED_EXIT
    except BrokenPipeError:
        return 0
    except (StorageError, OSError) as exc:  # the disk failed under a write: exit 1, one line
        print(f"evo: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
