"""Search benchmarks: what the search finds from f(x) = x, and how fast.

Experiments (pick with --experiment; each prints a table):

  exp2-fma    float32 2^x on [0, 1], ops {add, sub, mul, div, fma}, <= 6 ops: wall time to the first
              program certified under 1 ULP on every float32 of [0, 1], per seed and the median.
  exp2-nofma  float32 2^x with {add, sub, mul} only: best max ULP per op count (exhaustive sign-off),
              against the classical plain Horner polynomials (none gets under 1.278 ULP).
  real        real-number 2^x on [0, 1] with {+, -, x, /}: the front (max relative error per op count)
              against the AutoNumerics-Zero paper's programs (2 ops 4.1e-2, 3 ops 1.2e-3, 5 ops 6.3e-6,
              10 ops ~5e-15).
  erf         float32 erf on [0, 1]: best max ULP per op count (exhaustive) against the classical
              anchors (FMA polynomials) of the same op count.
  user        a user expression, log2(1+x) on [0, 1] ("log(1+x)/log(2)"): best max ULP per op count on
              the final set against the classical log2 polynomials in the same variable.

    python bench/search.py --experiment exp2-fma --seeds 1 2 3 4 5 --backend ray
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
from evo.runlog import RunReader
from targets.baselines import baselines

PAPER_REAL = {2: 4.1e-2, 3: 1.2e-3, 5: 6.3e-6, 10: 5e-15}


def _events(run_dir) -> list[dict[str, Any]]:
    return list(RunReader(run_dir).events())


def _front_rows(result) -> list[dict[str, Any]]:
    rows = []
    for e in result.front.entries:
        rows.append(
            {
                "ops": e.individual.program.op_count(),
                "cost": e.cost,
                "select": e.select.max_err,
                "final": None if e.final is None else e.final.max_err,
                "final_points": None if e.final is None else e.final.points,
                "program": str(e.individual.program),
            }
        )
    return rows


def exp2_fma(args) -> dict[str, Any]:
    rows = []
    for seed in args.seeds:
        started = time.perf_counter()
        result = evolve(
            target="exp2",
            ops=["add", "sub", "mul", "div", "fma"],
            max_ops=6,
            target_ulp=1.0,
            stop_when_certified=True,
            max_seconds=args.seconds,
            seed=seed,
            runs_dir=args.runs_dir,
            signoff="none",
            backend=args.backend,
            workers=args.workers,
        )
        wall = time.perf_counter() - started
        certified = [e for e in _events(result.run_dir) if e["kind"] == "signoff" and e["certified"]]
        first = certified[0] if certified else None
        rows.append(
            {
                "seed": seed,
                "certified": first is not None,
                "seconds_to_first": None if first is None else first["t"],
                "evals_to_first": None if first is None else first["n_evals"],
                "ops": None if first is None else first["ops"],
                "final_ulp": None if first is None else float(first["final"]["max_err"]),
                "wall": wall,
                "run": str(result.run_dir),
                "program": None if first is None else str(result.best.individual.program),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    times = [r["seconds_to_first"] if r["certified"] else math.inf for r in rows]
    summary = {
        "median_seconds_to_first": statistics.median(times),
        "certified": sum(r["certified"] for r in rows),
        "seeds": len(rows),
    }
    print(
        f"\n{'seed':>5} {'certified':>9} {'seconds':>8} {'evals':>9} {'ops':>4} {'max ULP (all float32)':>22}"
    )
    for r in rows:
        print(
            f"{r['seed']:>5} {str(r['certified']):>9} {r['seconds_to_first'] or float('nan'):>8.1f} "
            f"{r['evals_to_first'] or 0:>9,d} {r['ops'] or 0:>4} {r['final_ulp'] or float('nan'):>22.4f}"
        )
    print(
        f"median time to the first program under 1 ULP on every float32 of [0, 1]: "
        f"{summary['median_seconds_to_first']:.1f} s ({summary['certified']}/{summary['seeds']} seeds; goal "
        "<= 600 s)"
    )
    return {"rows": rows, "summary": summary}


def _per_op_count(result) -> dict[int, dict[str, Any]]:
    best: dict[int, dict[str, Any]] = {}
    for row in _front_rows(result):
        err = row["final"] if row["final"] is not None else row["select"]
        if row["ops"] not in best or err < best[row["ops"]]["error"]:
            best[row["ops"]] = {**row, "error": err}
    return best


def _classical_by_ops(anchor_key: str, fused: bool) -> dict[int, float]:
    table: dict[int, float] = {}
    for b in baselines(anchor_key):
        if b.fused != fused:
            continue
        ops = b.program.op_count()
        table[ops] = min(table.get(ops, math.inf), b.max_ulp_exhaustive)
    return table


def _search_front(args, **settings) -> Any:
    return evolve(
        seed=args.seeds[0],
        max_seconds=args.seconds,
        runs_dir=args.runs_dir,
        backend=args.backend,
        workers=args.workers,
        **settings,
    )


def _print_front(title: str, best: dict[int, dict[str, Any]], classical: dict[int, float], unit: str) -> None:
    print(f"\n{title}")
    print(f"{'ops':>4} {'evolved ' + unit:>16} {'on':>28} {'classical':>12}")
    for ops in sorted(best):
        row = best[ops]
        reference = classical.get(ops)
        print(
            f"{ops:>4} {row['error']:>16.6g} {(row['final_points'] or 'select')[:28]:>28} "
            f"{reference if reference is not None else float('nan'):>12.6g}"
        )


def exp2_nofma(args) -> dict[str, Any]:
    result = _search_front(args, target="exp2", ops=["add", "sub", "mul"], max_ops=args.max_ops or 12)
    best = _per_op_count(result)
    _print_front(
        "float32 exp2 on [0, 1] with {add, sub, mul}: best max ULP per op count",
        best,
        _classical_by_ops("exp2_0_1", fused=False),
        "max ULP",
    )
    return {"best": best, "run": str(result.run_dir)}


def real(args) -> dict[str, Any]:
    result = _search_front(
        args, target="exp2", mode="real", ops=["add", "sub", "mul", "div"], max_ops=args.max_ops or 10
    )
    best = _per_op_count(result)
    _print_front(
        "real-number exp2 on [0, 1] with {+, -, x, /}: max relative error per op count",
        best,
        PAPER_REAL,
        "max rel",
    )
    print("(classical column: the AutoNumerics-Zero paper's evolved programs)")
    return {"best": best, "run": str(result.run_dir)}


def erf(args) -> dict[str, Any]:
    result = _search_front(args, target="erf", max_ops=args.max_ops or 9)
    best = _per_op_count(result)
    _print_front(
        "float32 erf on [0, 1]: best max ULP per op count",
        best,
        _classical_by_ops("erf_0_1", True),
        "max ULP",
    )
    return {"best": best, "run": str(result.run_dir)}


def user(args) -> dict[str, Any]:
    result = _search_front(args, expr="log(1+x)/log(2)", domain="0,1", max_ops=args.max_ops or 10)
    best = _per_op_count(result)
    _print_front(
        "user expression log(1+x)/log(2) on [0, 1]: best max ULP per op count",
        best,
        _classical_by_ops("log2_1_2", True),
        "max ULP",
    )
    print("(classical column: Sollya log2 polynomials on [1, 2], the same function of t = x - 1)")
    return {"best": best, "run": str(result.run_dir)}


EXPERIMENTS = {"exp2-fma": exp2_fma, "exp2-nofma": exp2_nofma, "real": real, "erf": erf, "user": user}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 2)[2],
    )
    parser.add_argument("--experiment", choices=[*EXPERIMENTS, "all"], default="exp2-fma")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--seconds", type=float, default=600.0, help="budget per search")
    parser.add_argument("--max-ops", type=int, help="op-count bound for the front experiments")
    parser.add_argument("--backend", choices=("serial", "ray"), default="serial")
    parser.add_argument("--workers", type=int)
    parser.add_argument("--runs-dir", help="keep the runs here (default: a temporary directory)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    chosen = list(EXPERIMENTS) if args.experiment == "all" else [args.experiment]
    with tempfile.TemporaryDirectory() as scratch:
        args.runs_dir = args.runs_dir or scratch
        results = {name: EXPERIMENTS[name](args) for name in chosen}
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1, default=str)


if __name__ == "__main__":
    main()
