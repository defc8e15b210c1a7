"""Float32 search against the classical fpminimax polynomials, per op count and per target.

For every target (the built-ins and user expressions), seed and selection mode it runs one search
seeded as a default run does (``seed_from = classical``: minimax polynomials of every op count,
and a built-in's fpminimax polynomials, lattice-refined with the final-set exchange;
``--seed-from`` compares seedings), on the serial backend (``--parallel`` runs at a time, each in
its own process). The run signs off its front on the final set (every float32 of the domain),
runner-ups included; the table reads the front programs of at least ``--from-ops`` ops from it
(``--score-on select`` reads their errors on the 65,536-point select set instead, for quick
comparisons, and skips the sign-off).
It prints, per op count k, the best final ULP of a program with at most k ops (median and worst
over the seeds) next to the best fpminimax polynomial with at most k ops (exhaustive errors from
targets/data/anchors.json), and per target the fewest ops under 1 ULP against the anchor's.
For a user expression the comparator is a classical polynomial of the same op count scored on the
expression's own final set (``user_comparator``): Sollya's polynomials where the expression is a
built-in shifted (log2(1 + x)), and the project's fpminimax stand-in (``evo.minimax``) for every
expression (there is no Sollya here). The op bound is the anchor's op count plus one, at least 8.
Budgets are evaluation counts by default (fair on a loaded machine) or seconds.

    python bench/vs_classical.py --targets exp2 erf --seeds 1 2 3 --evals 30000
    python bench/vs_classical.py --targets exp2 erf --selection error nsga niches --score-on select
    python bench/vs_classical.py --targets exp2 erf --seed-from identity classical --seconds 120 --parallel 1

With several ``--seed-from`` values the columns are ``SELECTION+SEEDING``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

from evo.config import SEEDINGS
from evo.selection import SELECTIONS
from targets.baselines import anchors_data, baselines
from targets.registry import ALIASES, target_names


@dataclass(frozen=True)
class Case:
    """One target of the benchmark: a built-in name or an expression on a domain."""

    label: str
    key: str
    target: str | None = None
    expr: str | None = None
    domain: str | None = None
    anchors: str | None = None  # the anchors.json entry to compare with
    shifted: bool = False  # the anchor polynomials are in t = x - 1: their shift op is not needed here


USER_CASES = (
    Case("log2(1+x) [0,1]", "log2p1", expr="log(1+x)/log(2)", domain="0,1", anchors="log2_1_2", shifted=True),
    Case("softplus [-1,1]", "softplus", expr="log(1+exp(x))", domain="-1,1"),
    Case("gelu [-1,1]", "gelu", expr="x*(1+erf(x/sqrt(2)))/2", domain="-1,1"),
)


def builtin_case(name: str) -> Case:
    key = ALIASES.get(name, name)
    return Case(key, key, target=key, anchors=key)


def classical_by_ops(case: Case) -> dict[int, float]:
    """Best exhaustive fpminimax ULP (FMA evaluation) of every op count of the case's anchors."""
    if case.anchors is None:
        return {}
    shifted_forms = {
        (p["form"], p["degree"]) for p in anchors_data()["targets"][case.anchors]["polys"] if p["shift"]
    }
    table: dict[int, float] = {}
    for b in baselines(case.anchors):
        if not b.fused:
            continue
        ops = b.program.op_count() - (1 if case.shifted and (b.form, b.degree) in shifted_forms else 0)
        table[ops] = min(table.get(ops, math.inf), b.max_ulp_exhaustive)
    return table


COMPARATOR_OPS = 14  # op counts of a user expression's classical comparator
FINAL_SCORED_PER_COUNT = 1  # comparator polynomials per op count scored on the final set


def _user_variable(poly: dict[str, Any]) -> tuple[str, float] | None:
    """An anchor polynomial in t = x - 1 on [1, 2] rewritten for log2(1 + x) on [0, 1]: v = x and
    u = v, v*v or x - 1/2 (what x - 3/2 was); None for a polynomial in x itself."""
    if not poly["shift"]:
        return None
    return {"v": ("v", 0.0), "v2": ("v2", 0.0), "x-1.5": ("v-mid", 0.5)}[poly["umode"]]


def user_comparator(
    case: Case, ops: tuple[str, ...], max_ops: int = COMPARATOR_OPS, from_ops: int = 3
) -> dict[str, Any]:
    """The classical polynomials of a user expression, per op count, scored on its own final set.

    Two sources: Sollya's fpminimax polynomials where the expression is a built-in shifted
    (log2(1 + x): the log2 anchors in t = x - 1, evaluated with x as t, so their error is measured on
    every float of [0, 1], not on the floats 1 + t of [1, 2]), and, for every expression, the
    project's fpminimax stand-in (``evo.minimax``: the minimax polynomial of each classical form in
    ULP, coefficients made floats one at a time; no rounding-aware refinement). Per op count the
    best ``FINAL_SCORED_PER_COUNT`` by error on a dense sample are scored on the final set."""
    import numpy as np

    from evo.classical import _program, _program_error
    from evo.config import RunConfig
    from evo.minimax import minimax_seeds
    from evo.problem import build_problem
    from primitives.floatbits import parse_hex
    from targets.dataset import refine_dataset
    from targets.scoring import score

    problem = build_problem(RunConfig(target=None, expr=case.expr, domain=case.domain, name=case.key))
    dense = refine_dataset(problem.target, problem.search, problem.select, seed=0, n=4 * problem.search.size)
    x, ref, scale = dense.x.astype(np.float64), dense.ref_hi + dense.ref_lo, dense.inv_scale
    fused = "fma" in ops
    candidates = []  # (op count, dense error, source, program)
    if case.anchors is not None and case.shifted:
        for poly in anchors_data()["targets"][case.anchors]["polys"]:
            variable = _user_variable(poly)
            if variable is None:
                continue
            coefficients = [float(parse_hex(h)) for h in poly["inner_hex"]]
            program = _program(
                False, variable[0], poly["outer"], coefficients, variable[1], 0.0, fused, "float32"
            )
            if program is not None and program.op_count() <= max_ops:
                candidates.append(
                    (program.op_count(), _program_error(program, x, ref, scale), "sollya", program)
                )
    for seed in minimax_seeds(x, ref, scale, ops, max_ops):
        candidates.append((seed.program.op_count(), seed.error, "minimax", seed.program))
    final = problem.final()
    table: dict[int, float] = {}
    rows = []
    for count in sorted({c[0] for c in candidates if c[0] >= from_ops}):
        ranked = sorted((c for c in candidates if c[0] == count), key=lambda c: c[1])[:FINAL_SCORED_PER_COUNT]
        for _, dense_err, source, program in ranked:
            err = score(program, final).max_err
            table[count] = min(table.get(count, math.inf), err)
            rows.append(
                {"ops": count, "source": source, "dense": dense_err, "final": err, "program": str(program)}
            )
            print(json.dumps({"comparator": case.label, **rows[-1]}), flush=True)
    return {"table": table, "rows": rows, "final_set": type(final).__name__, "final_size": final.size}


def at_most(table: dict[int, float], k: int) -> float | None:
    values = [v for ops, v in table.items() if ops <= k]
    return min(values) if values else None


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    """One search and the final scores of its front (runs in a worker process)."""
    from evo.api import evolve
    from evo.problem import build_problem
    from targets.scoring import score

    case: Case = job["case"]
    settings = dict(
        ops=job["ops"],
        max_ops=job["max_ops"],
        seed=job["seed"],
        selection=job["selection"],
        seed_from=job["seed_from"],
        runs_dir=job["runs_dir"],
        signoff="front" if job["score_on"] == "final" else "none",
    )
    if job["evals"]:
        settings["max_evals"] = job["evals"]
    else:
        settings["max_seconds"] = job["seconds"]
    if case.target is not None:
        settings["target"] = case.target
    else:
        settings.update(expr=case.expr, domain=case.domain, name=job["name"])
    started, cpu_started = time.perf_counter(), time.process_time()
    result = evolve(**settings)
    search_s = time.perf_counter() - started
    entries = [e for e in result.front.entries if e.individual.program.op_count() >= job["from_ops"]]
    unsigned = [e for e in entries if e.final is None]
    final = build_problem(result.config).final() if job["score_on"] == "final" and unsigned else None
    scored = []
    for e in entries:  # the run signs off its front (runner-ups included) on the final set
        if job["score_on"] == "select":
            err = e.select.max_err
        else:
            err = e.final.max_err if e.final is not None else score(e.individual.program, final).max_err
        scored.append((e.individual.program.op_count(), err, str(e.individual.program)))
    return {
        "label": case.label,
        "seed": job["seed"],
        "selection": job["label"],
        "evals": result.n_evals,
        "search_s": round(search_s, 1),
        "total_s": round(time.perf_counter() - started, 1),
        "cpu_s": round(time.process_time() - cpu_started, 1),  # wall time misleads on a shared machine
        "scored": scored,
        "run": str(result.run_dir),
    }


def best_at_most(scored: list[tuple[int, float, str]], k: int) -> float:
    values = [err for ops, err, _ in scored if ops <= k]
    return min(values) if values else math.inf


def fewest_under(scored: list[tuple[int, float, str]], bound: float = 1.0) -> int | None:
    ops = [o for o, err, _ in scored if err < bound]
    return min(ops) if ops else None


def _fmt(value: float | None, width: int = 10) -> str:
    if value is None:
        return f"{'-':>{width}}"
    if math.isinf(value):
        return f"{'inf':>{width}}"
    return f"{value:>{width}.4g}"


def _median_worst(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), max(values)


def print_tables(cases: list[Case], results: list[dict[str, Any]], args) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    modes = args.selection
    worse_cells = []
    for case in cases:
        classical = args.comparator_for(case)
        seeds = " ".join(map(str, args.seeds))
        where = f"{args.score_on} set"
        print(f"\n{case.label}: best ULP with at most k ops ({where}), median / worst of seeds {seeds}")
        header = (
            f"{'k':>3} "
            + " ".join(f"{m + ' median':>14} {m + ' worst':>13}" for m in modes)
            + f" {'fpminimax':>10} {'median/fpm':>10}"
        )
        print(header)
        rows = {}
        for k in range(args.from_ops, args.max_ops_for(case) + 1):
            cells = []
            row = {"fpminimax": at_most(classical, k)}
            for mode in modes:
                values = [
                    best_at_most(r["scored"], k)
                    for r in results
                    if r["label"] == case.label and r["selection"] == mode
                ]
                med, worst = _median_worst(values) if values else (math.nan, math.nan)
                row[mode] = {"median": med, "worst": worst}
                cells.append(f"{_fmt(med, 14)} {_fmt(worst, 13)}")
            rows[k] = row
            ratio = row[modes[0]]["median"] / row["fpminimax"] if row["fpminimax"] else math.nan
            flags = [m for m in modes if row["fpminimax"] is not None and row[m]["median"] > row["fpminimax"]]
            worse_cells.extend((case.label, k, m, row[m]["median"], row["fpminimax"]) for m in flags)
            mark = "  WORSE" if flags else ""
            print(f"{k:>3} " + " ".join(cells) + f" {_fmt(row['fpminimax'])} {ratio:>10.4f}{mark}")
        anchor_ops = min((ops for ops, err in classical.items() if err < 1.0), default=None)
        fewest = {}
        for mode in modes:
            per_seed = [
                fewest_under(r["scored"])
                for r in results
                if r["label"] == case.label and r["selection"] == mode
            ]
            fewest[mode] = per_seed
            print(
                f"fewest ops under 1 ULP, {mode}: {['-' if f is None else f for f in per_seed]} (per seed)",
                end="",
            )
            print(f"; anchor: {anchor_ops if anchor_ops is not None else '-'}")
        summary[case.label] = {"per_k": rows, "fewest_under_1": fewest, "anchor_ops": anchor_ops}
    print("\ncells where the median is worse than the comparator:", "none" if not worse_cells else "")
    for label, k, mode, median, comparator in worse_cells:
        print(f"  {label} k={k} {mode}: {median:.4g} > {comparator:.4g}")
    summary["worse_cells"] = worse_cells
    return summary


def _user_comparators(cases: list[Case], ops: tuple[str, ...], args) -> dict[str, dict[int, float]]:
    """Each user expression's comparator table (op count -> final-set ULP), cached in
    ``--comparator-json`` when given (it takes minutes: exhaustive scores of every candidate)."""
    import os

    stored: dict[str, Any] = {}
    if args.comparator_json and os.path.exists(args.comparator_json):
        with open(args.comparator_json) as handle:
            stored = json.load(handle)
    changed = False
    for case in cases:
        if case.label not in stored:
            stored[case.label] = user_comparator(case, ops, from_ops=args.from_ops)
            changed = True
    if args.comparator_json and changed:
        with open(args.comparator_json, "w") as handle:
            json.dump(stored, handle, indent=1)
    return {c.label: {int(k): float(v) for k, v in stored[c.label]["table"].items()} for c in cases}


def main() -> None:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        description=doc.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=doc.split("\n", 2)[2],
    )
    parser.add_argument(
        "--targets",
        nargs="+",
        default=None,
        help="built-in targets, user expressions (log2p1, softplus, gelu) or 'user' for all three "
        "(default: every built-in and user)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--evals", type=int, default=None, help="evaluations per search (default 30000)")
    budget.add_argument(
        "--seconds", type=float, default=None, help="seconds per search instead of evaluations"
    )
    parser.add_argument("--parallel", type=int, default=2, help="searches at a time (default 2)")
    parser.add_argument(
        "--selection",
        nargs="+",
        choices=SELECTIONS,
        default=None,
        help="selection modes to compare (default: the config default)",
    )
    parser.add_argument(
        "--seed-from",
        nargs="+",
        choices=SEEDINGS,
        default=None,
        help="population seedings to compare (default: the config default)",
    )
    parser.add_argument(
        "--max-ops", type=int, default=None, help="op bound (default: max(8, the anchor's op count))"
    )
    parser.add_argument(
        "--from-ops", type=int, default=3, help="score front programs of at least this many ops"
    )
    parser.add_argument("--ops", default="add,sub,mul,div,fma")
    parser.add_argument(
        "--beyond-anchor", type=int, default=1, help="op bound: the anchor's op count plus this (at least 8)"
    )
    parser.add_argument(
        "--comparator-json",
        help="user expressions' comparators: read from this file, else computed and written to it",
    )
    parser.add_argument("--score-on", choices=("final", "select"), default="final")
    parser.add_argument("--runs-dir", help="keep the runs here (default: a temporary directory)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    if args.evals is None and args.seconds is None:
        args.evals = 30000
    if args.selection is None:
        from evo.config import RunConfig

        args.selection = [RunConfig().selection]
    if args.seed_from is None:
        from evo.config import RunConfig

        args.seed_from = [RunConfig().seed_from]
    labels = {
        (mode, seeding): mode if len(args.seed_from) == 1 else f"{mode}+{seeding}"
        for mode in args.selection
        for seeding in args.seed_from
    }
    names = args.targets or [*target_names(), "user"]
    cases: list[Case] = []
    for name in names:
        if name == "user":
            cases.extend(USER_CASES)
        elif name in {c.key for c in USER_CASES}:
            cases.extend(c for c in USER_CASES if c.key == name)
        elif ALIASES.get(name, name) in target_names():
            cases.append(builtin_case(name))
        else:
            parser.error(
                f"unknown target {name!r} (built-ins: {', '.join(target_names())}; "
                f"user expressions: {', '.join(c.key for c in USER_CASES)}, or 'user')"
            )

    comparators: dict[str, dict[int, float]] = {}
    users = [c for c in cases if c.expr is not None]

    def comparator_for(case: Case) -> dict[int, float]:
        return comparators[case.label] if case.expr is not None else classical_by_ops(case)

    def max_ops_for(case: Case) -> int:
        if args.max_ops is not None:
            return args.max_ops
        classical = comparator_for(case)
        anchor_ops = min((ops for ops, err in classical.items() if err < 1.0), default=8 - args.beyond_anchor)
        return max(8, anchor_ops + args.beyond_anchor)

    args.max_ops_for = max_ops_for
    args.comparator_for = comparator_for
    if args.max_ops is None:  # the op bound follows from the comparators: compute them first
        comparators.update(_user_comparators(users, tuple(args.ops.split(",")), args))
    with tempfile.TemporaryDirectory() as scratch:
        runs_dir = args.runs_dir or scratch
        jobs = [
            {
                "case": case,
                "seed": seed,
                "selection": mode,
                "seed_from": seeding,
                "label": labels[(mode, seeding)],
                "evals": args.evals,
                "seconds": args.seconds,
                "max_ops": max_ops_for(case),
                "from_ops": args.from_ops,
                "ops": args.ops.split(","),
                "score_on": args.score_on,
                "runs_dir": runs_dir,
                "name": case.key,
            }
            for case in cases
            for seed in args.seeds
            for mode in args.selection
            for seeding in args.seed_from
        ]
        results = []
        job_from, job_to = args.from_ops, max(job["max_ops"] for job in jobs)
        with ProcessPoolExecutor(max_workers=args.parallel, mp_context=get_context("spawn")) as pool:
            running = pool.map(run_one, jobs)
            if not comparators:  # while the searches run
                comparators.update(_user_comparators(users, tuple(args.ops.split(",")), args))
            for result in running:
                best = {k: best_at_most(result["scored"], k) for k in range(job_from, job_to + 1)}
                line = {k: v for k, v in result.items() if k != "scored"}
                print(json.dumps({**line, "best_at_most_k": best}), flush=True)
                results.append(result)
    args.selection = list(labels.values())  # the table's columns
    summary = print_tables(cases, results, args)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"results": results, "summary": summary}, handle, indent=1, default=str)


if __name__ == "__main__":
    main()
