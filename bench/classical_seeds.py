"""What ``--seed-from classical`` starts from: per target and op count, the best classical seed
after the evaluator's fit (as a run evaluates it, no search), on the select set (65,536 points the
fit never sees) or on the final set, next to the best fpminimax polynomial of at most that many ops
(exhaustive errors from targets/data/anchors.json). Also the fewest ops under 1 ULP of each.

    python bench/classical_seeds.py --targets exp2 erf log2 tanh --score-on select
"""

from __future__ import annotations

import argparse
import math
import time

from vs_classical import USER_CASES, at_most, builtin_case, classical_by_ops


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
    parser.add_argument("--max-ops", type=int, default=None, help="default: max(8, the anchor's ops)")
    parser.add_argument("--ops", default="add,sub,mul,div,fma")
    parser.add_argument("--score-on", choices=("select", "final"), default="select")
    args = parser.parse_args()

    from evo.assemble import evaluator_spec, population_seeds
    from evo.config import resolve
    from evo.evaluate import Job
    from evo.problem import build_problem
    from targets.scoring import score

    user = {c.key: c for c in USER_CASES}
    summary = []
    for name in args.targets:
        case = user.get(name) or builtin_case(name)
        classical = classical_by_ops(case)
        anchor_ops = min((k for k, e in classical.items() if e < 1.0), default=None)
        max_ops = args.max_ops or max(8, anchor_ops or 8)
        base = dict(ops=args.ops.split(","), max_ops=max_ops, seed_from="classical", max_evals=1, seed=0)
        base.update(target=case.target) if case.target else base.update(expr=case.expr, domain=case.domain)
        config = resolve(base)
        started = time.perf_counter()
        problem = build_problem(config)
        evaluator = evaluator_spec(config).build(problem.search)
        data = problem.select if args.score_on == "select" else problem.final()
        best: dict[int, float] = {}
        for i, seed in enumerate(p for p in population_seeds(config, problem) if p.op_count() > 0):
            fitted = evaluator.run(Job(i, seed, mutate=False)).program
            k = fitted.op_count()
            best[k] = min(best.get(k, math.inf), score(fitted, data).max_err)
        print(
            f"\n{case.label} ({args.score_on} set, {time.perf_counter() - started:.0f} s): "
            "best ULP with at most k ops"
        )
        print(f"{'k':>3} {'classical seeds':>16} {'fpminimax':>10}")
        for k in range(3, max_ops + 1):
            mine = min((v for o, v in best.items() if o <= k), default=math.inf)
            theirs = at_most(classical, k)
            print(f"{k:>3} {mine:>16.4g} {theirs if theirs is not None else math.nan:>10.4g}")
        fewest = min((k for k, v in best.items() if v < 1.0), default=None)
        print(
            f"fewest ops under 1 ULP: seeds {fewest if fewest is not None else '-'}, "
            f"anchor {anchor_ops if anchor_ops is not None else '-'}"
        )
        summary.append((case.label, fewest, anchor_ops))
    print("\ntarget                fewest ops under 1 ULP: seeds / anchor")
    for label, fewest, anchor_ops in summary:
        print(f"{label:<22} {fewest if fewest is not None else '-':>5} / {anchor_ops if anchor_ops else '-'}")


if __name__ == "__main__":
    main()
