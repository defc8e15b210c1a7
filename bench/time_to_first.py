"""Time to the first certified program: variants of the search configuration against the default,
measured in the same run, per seed.

Each search (serial backend, one worker, one at a time) asks for the cheapest program within
``--target-ulp`` under ``--max-ops`` and stops as soon as one is certified on the final set (every
float32 of the domain). Per variant and seed it prints the seconds and evaluations to the first
certified program (the time includes that sign-off sweep), its ops and final error, then the
median and the number of seeds within ``--goal`` seconds. Seeds run interleaved across variants
so machine load and warm caches hit every variant alike; on a shared machine compare variants
within one run, and prefer evaluations to seconds.

    python bench/time_to_first.py --target exp2 --max-ops 6 --seeds 1 2 3 4 5 --seconds 120 \\
        --variant default --variant classical:seed_from=classical
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from typing import Any

from evo.api import evolve
from evo.config import apply_overrides, parse_override
from evo.runlog import RunReader


def parse_variant(text: str) -> tuple[str, list[str]]:
    """``label[:key=value,key=value]`` -> (label, ``--set`` overrides;
    ``mutation_weights.horner_step=1`` works)."""
    label, _, rest = text.partition(":")
    overrides = [item.strip() for item in rest.split(",") if item.strip()]
    for item in overrides:
        parse_override(item)  # a malformed override fails before any search runs
    return label, overrides


def first_certified(run_dir) -> dict[str, Any] | None:
    for event in RunReader(run_dir).events():
        if event["kind"] == "signoff" and event.get("certified"):
            return event
    return None


def run_one(args, label: str, overrides: list[str], seed: int, runs_dir: str) -> dict[str, Any]:
    settings: dict[str, Any] = dict(
        target=args.target,
        ops=args.ops.split(","),
        max_ops=args.max_ops,
        target_ulp=args.target_ulp,
        stop_when_certified=True,
        max_seconds=args.seconds,
        seed=seed,
        runs_dir=runs_dir,
        signoff="best",
        workers=1,
    )
    settings = apply_overrides(settings, overrides)
    started = time.perf_counter()
    result = evolve(**settings)
    wall = time.perf_counter() - started
    first = first_certified(result.run_dir)
    return {
        "variant": label,
        "seed": seed,
        "certified": first is not None,
        "seconds": None if first is None else float(first["t"]),
        "evals": None if first is None else int(first["n_evals"]),
        "ops": None if first is None else int(first["ops"]),
        "final": None if first is None else float(first["final"]["max_err"]),
        "mutation": None if first is None else first.get("mutation"),
        "wall": round(wall, 1),
        "n_evals": result.n_evals,
    }


def main() -> None:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        description=doc.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=doc.split("\n", 2)[2],
    )
    parser.add_argument("--target", default="exp2")
    parser.add_argument("--ops", default="add,sub,mul,div,fma")
    parser.add_argument("--max-ops", type=int, default=6)
    parser.add_argument("--target-ulp", type=float, default=1.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--seconds", type=float, default=120.0, help="budget per search (default 120)")
    parser.add_argument("--goal", type=float, default=120.0, help="seconds a seed should certify within")
    parser.add_argument(
        "--variant",
        action="append",
        default=None,
        help="label[:key=value,...] (repeatable; default: 'default' and 'classical:seed_from=classical')",
    )
    parser.add_argument("--runs-dir", help="keep the runs here (default: a temporary directory)")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    variants = [parse_variant(v) for v in (args.variant or ["default", "classical:seed_from=classical"])]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        runs_dir = args.runs_dir or scratch
        # warm-up: compile the fit, the polish and the final sweep before any timed search
        evolve(
            target=args.target,
            ops=args.ops.split(","),
            max_ops=args.max_ops,
            seed_from="classical",
            max_evals=40,
            seed=0,
            runs_dir=runs_dir,
            signoff="best",
            workers=1,
        )
        for seed in args.seeds:
            for label, overrides in variants:
                rows.append(run_one(args, label, overrides, seed, runs_dir))
                print(json.dumps(rows[-1]), flush=True)
    print(
        f"\n{args.target}, <= {args.max_ops} ops, first program certified under {args.target_ulp:g} ULP "
        f"(budget {args.seconds:g} s per seed)"
    )
    print(f"{'variant':>16} {'seed':>5} {'seconds':>8} {'evals':>9} {'ops':>4} {'final ULP':>10}")
    for r in rows:
        print(
            f"{r['variant']:>16} {r['seed']:>5} {r['seconds'] if r['certified'] else math.inf:>8.1f} "
            f"{r['evals'] or 0:>9,d} {r['ops'] or 0:>4} {r['final'] or math.nan:>10.4f}"
        )
    for label, _ in variants:
        mine = [r for r in rows if r["variant"] == label]
        times = [r["seconds"] if r["certified"] else math.inf for r in mine]
        within = sum(t <= args.goal for t in times)
        print(
            f"{label}: median {statistics.median(times):.1f} s, worst {max(times):.1f} s, "
            f"{within}/{len(mine)} seeds within {args.goal:g} s"
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
