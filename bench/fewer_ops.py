"""Fewest ops under 1 ULP, exhaustive: the fpminimax anchor of each built-in target next to the
classical seeds (polynomials and rationals) as a default run starts from, after the evaluator's fit.

Every error in the table is the max over EVERY float32 of the domain. The anchor (fewest fma-Horner
ops under 1 ULP, targets/data/anchors.json) is rescored here by the same exhaustive scorer. Seeds
are fitted as a run fits them, ranked on the select set, and the best few of each op count below
the anchor's are swept exhaustively, from the fewest ops up, until one is under 1 ULP.
With ``--refine-points N`` each seed's float32 constants are also lattice-refined (evo.lattice)
on the search points and N more (never the select points) before ranking: a structure that stays
above 1 ULP after a dense refinement is limited by its form, not by the fit of its constants.
The last column is the best exhaustive error at one op below the anchor, also when above 1 ULP.
Each form is listed with its float64 model error (the fit before float32 rounding, on the fit
points): a model far under 1 ULP with a float32 program above it is limited by rounding.

    python bench/fewer_ops.py --targets tanh erf log2 --per-count 2
    python bench/fewer_ops.py --targets log2 erf --refine-points 1048576 --refine-budget 4000
"""

from __future__ import annotations

import argparse
import math
import time

from vs_classical import builtin_case, classical_by_ops


def main() -> None:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        description=doc.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=doc.split("\n", 2)[2],
    )
    parser.add_argument(
        "--targets", nargs="+", default=["exp2", "exp2_m05_05", "exp", "log2", "sin", "cos", "erf", "tanh"]
    )
    parser.add_argument("--per-count", type=int, default=2, help="seeds swept per op count")
    parser.add_argument(
        "--select-below", type=float, default=1.1, help="sweep only seeds this good on select"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--anchor-errors",
        choices=("rescore", "data"),
        default="rescore",
        help="sweep the anchor here (default) or take its exhaustive error from anchors.json",
    )
    parser.add_argument("--refine-points", type=int, default=0, help="lattice-refine on N more points")
    parser.add_argument("--refine-budget", type=int, default=4000, help="scorer calls per refinement")
    args = parser.parse_args()

    from evo.assemble import evaluator_spec
    from evo.classical import classical_seeds
    from evo.config import resolve
    from evo.evaluate import Job
    from evo.lattice import LatticeSettings, refine
    from evo.problem import build_problem
    from primitives.textform import to_text
    from targets.baselines import anchor
    from targets.dataset import refine_dataset
    from targets.scoring import score

    rows = []
    for name in args.targets:
        case = builtin_case(name)
        anchor_ops = min((k for k, e in classical_by_ops(case).items() if e < 1.0), default=None)
        baseline = anchor(case.anchors)
        started = time.perf_counter()
        config = resolve(
            dict(target=case.target, max_ops=(anchor_ops or 12) - 1, seed_from="classical", seed=0)
        )
        problem = build_problem(config)
        final = problem.final()
        if baseline is None:
            anchor_err = math.nan
        elif args.anchor_errors == "data":
            anchor_err = baseline.max_ulp_exhaustive
        else:
            anchor_err = score(baseline.program, final, threads=args.threads).max_err
        search = problem.search
        seeds = classical_seeds(
            search.x, search.ref_hi + search.ref_lo, search.inv_scale, config.ops, config.max_ops, per_cost=8
        )
        evaluator = evaluator_spec(config).build(search)
        dense = None
        if args.refine_points:
            dense = refine_dataset(search.target, search, problem.select, seed=0, n=args.refine_points)
        by_count: dict[int, list] = {}
        for i, seed in enumerate(seeds):
            fitted = evaluator.run(Job(i, seed.program, mutate=False)).program
            candidates = {seed.program, fitted}
            if dense is not None:
                settings = LatticeSettings(budget=args.refine_budget)
                candidates |= {refine(p, dense, settings).program for p in tuple(candidates)}
            for program in candidates:
                select = score(program, problem.select).max_err
                label = f"{seed.label} (float64 model {seed.model_error:.3g})"
                by_count.setdefault(program.op_count(), []).append((select, label, program))
        print(f"\n{case.label}: anchor {anchor_ops} ops, {anchor_err:.4f} ULP (exhaustive)")
        print(f"{'ops':>4} {'select':>8} {'final':>8}  form")
        winner, below = None, math.inf
        for k in sorted(by_count):
            ranked = sorted(by_count[k], key=lambda r: r[0])
            print(f"{k:>4} {ranked[0][0]:>8.4g} {'':>8}  best on select: {ranked[0][1]}")
            last = anchor_ops is not None and k == anchor_ops - 1
            for select, label, program in ranked[: args.per_count]:
                if winner is not None or (select > args.select_below and not last):
                    continue
                err = score(program, final, threads=args.threads).max_err
                print(f"{k:>4} {select:>8.4g} {err:>8.4f}  {label}")
                below = min(below, err) if last else below
                if err < 1.0:
                    winner = (k, err, label, program)
        elapsed = time.perf_counter() - started
        if winner:
            print(to_text(winner[3]))
        rows.append((case.label, anchor_ops, anchor_err, winner, elapsed, below))
    print("\nfewest ops under 1 ULP, max over every float32 of the domain")
    header = f"{'target':<22} {'anchor ops':>10} {'anchor ULP':>10} {'seed ops':>9} {'seed ULP':>9}"
    print(f"{header} {'anchor-1':>9}  form")
    for label, anchor_ops, anchor_err, winner, _, below in rows:
        ops, err, form = (winner[0], f"{winner[1]:.4f}", winner[2]) if winner else ("-", "-", "")
        print(
            f"{label:<22} {anchor_ops or '-':>10} {anchor_err:>10.4f} {ops:>9} {err:>9} {below:>9.4f}  {form}"
        )
    print(f"fewer ops than the anchor on {sum(1 for r in rows if r[3])} of {len(rows)} targets")


if __name__ == "__main__":
    main()
