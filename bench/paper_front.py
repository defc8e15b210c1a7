"""Real-number 2^x on [0, 1] with {+, -, x, /}: the evolved front against the published programs
and the classical approximations of the same op count.

Every error in the table is the max relative error on the same select set (65536 points), measured
by evo's own scorer (float64 arithmetic, mpmath references):

  unpolished  best program per op count on the run's front before its end-of-run polish
              (``evo.polish``: the last ``end_polish_share`` of the budget, 0.1 by default);
  evolved     best program per op count from ``evo.api.evolve`` (mode real) within the budget, polished;
  refit       the same structure after a further thorough refit (says whether the fit was the limit);
  paper       the AutoNumerics-Zero programs f2/f3/f5/f10 with Figure 11's constants (published
              4.1e-2, 1.2e-3, 6.3e-6, 5e-15);
  Taylor, Pade (mpmath.taylor, mpmath.pade) and polynomial / rational minimax (mpmath.chebyfit and
              the Pade coefficients as starts, then evo's minimax fit for relative error), each the
              best with at most that many ops (degree-d Horner = 2d ops, (p, q) rational = 2p + 2q + 1).

  python bench/paper_front.py --minutes 4 --seeds 1
  python bench/paper_front.py --minutes 4 --polish-share 0   # no end-of-run polish
  python bench/paper_front.py --refit-paper        # f5 and f10 refitted from 1% and 10% perturbations
  python bench/paper_front.py --from-run runs/R     # the table for runs already made
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from importlib import resources

import mpmath
import numpy as np

from evo.api import evolve, load_run
from evo.fitcmd import refit
from primitives.floatbits import FLOAT64, bits_to_float, float_to_bits
from primitives.program import Const, Instr, Operand, Program, Ref, X
from primitives.textform import parse_text
from targets.dataset import build_dataset
from targets.registry import get_target
from targets.scoring import score

MAX_OPS = 10


def paper_programs() -> dict[str, dict]:
    return json.loads(resources.files("targets").joinpath("data/paper_exp2.json").read_text())["programs"]


def _c(value) -> Const:
    return Const(float_to_bits(float(value), FLOAT64))


def _horner(body: list[Instr], coefficients: list) -> Operand:
    """sum c_i x^i in Horner form (coefficients low to high); appends to ``body``."""
    acc: Operand = _c(coefficients[-1])
    for c in reversed(coefficients[:-1]):
        body.append(Instr("mul", (acc, X)))
        body.append(Instr("add", (Ref(len(body)), _c(c))))
        acc = Ref(len(body))
    return acc


def polynomial(coefficients: list) -> Program:
    body: list[Instr] = []
    out = _horner(body, coefficients)
    return Program(tuple(body), out, "float64")


def rational(numerator: list, denominator: list) -> Program:
    """p(x) / q(x) with q(0) scaled to 1 (so q's Horner ends in + 1)."""
    scale = denominator[0]
    body: list[Instr] = []
    p = _horner(body, [a / scale for a in numerator])
    q = _horner(body, [b / scale for b in denominator])
    body.append(Instr("div", (p, q)))
    return Program(tuple(body), Ref(len(body)), "float64")


def classical(search, select) -> dict[str, dict[int, tuple[float, str]]]:
    """Per family, per op count: (max relative error on select, description), best with <= ops."""
    mpmath.mp.dps = 40
    taylor = mpmath.taylor(lambda t: mpmath.power(2, t), 0, MAX_OPS)
    found: dict[str, dict[int, tuple[float, str]]] = {
        "Taylor": {},
        "Pade": {},
        "poly minimax": {},
        "rational minimax": {},
    }

    def record(family: str, program: Program, label: str) -> None:
        ops = program.op_count()
        err = score(program, select).max_err
        for budget in range(ops, MAX_OPS + 1):
            if budget not in found[family] or err < found[family][budget][0]:
                found[family][budget] = (err, label)

    for degree in range(0, MAX_OPS // 2 + 1):
        record("Taylor", polynomial(taylor[: degree + 1]), f"degree {degree}")
        fitted = mpmath.chebyfit(lambda t: mpmath.power(2, t), [0, 1], degree + 1)
        highest_first = list(fitted) if isinstance(fitted, (list, tuple)) else [fitted]
        start = polynomial([float(v) for v in reversed(highest_first)])
        record("poly minimax", refit(start, search, restarts=2, use_cma=False), f"degree {degree}")
    for p in range(0, MAX_OPS // 2 + 1):
        for q in range(1, MAX_OPS // 2 + 1):
            if 2 * p + 2 * q + 1 > MAX_OPS:
                continue
            numerator, denominator = mpmath.pade(taylor[: p + q + 1], p, q)
            pade = rational(numerator, denominator)
            record("Pade", pade, f"({p},{q})")
            record("rational minimax", refit(pade, search, restarts=2, use_cma=False), f"({p},{q})")
    return found


def evolved_front(
    minutes: float,
    seeds: list[int],
    backend: str,
    workers: int | None,
    runs_dir: str,
    from_runs: list[str] | None = None,
    polish_share: float | None = None,
) -> tuple[dict[int, Program], dict[int, float]]:
    """The best program per op count over the seeds' fronts, and the best select error per op
    count on those fronts before their end-of-run polish."""
    best: dict[int, tuple[float, Program]] = {}
    unpolished: dict[int, float] = {}
    runs = list(from_runs or [])
    fronts = [load_run(run).front for run in runs]
    for seed in seeds if not from_runs else []:
        result = evolve(
            target="exp2",
            mode="real",
            ops=["add", "sub", "mul", "div"],
            max_ops=MAX_OPS,
            max_seconds=minutes * 60,
            seed=seed,
            runs_dir=runs_dir,
            backend=backend,
            workers=workers,
            signoff="none",
            log_every_eval=1,
            end_polish_share=polish_share,
        )
        print(f"seed {seed}: run {result.run_dir}", flush=True)
        print_history(result.run_dir, minutes)
        fronts.append(result.front)
        runs.append(str(result.run_dir))
    for front in fronts:
        for entry in front.entries:
            program = entry.individual.program
            err = entry.select.max_err
            ops = program.op_count()
            if ops <= MAX_OPS and (ops not in best or err < best[ops][0]):
                best[ops] = (err, program)
    for run in runs:
        for ops, err in before_polish(run).items():
            unpolished[ops] = min(err, unpolished.get(ops, math.inf))
    return {ops: program for ops, (_, program) in best.items()}, unpolished


def _events(run_dir) -> list[dict]:
    with open(f"{run_dir}/events.jsonl") as lines:
        return [json.loads(line) for line in lines]


def before_polish(run_dir) -> dict[int, float]:
    """Best select error per op count on the front just before the end-of-run polish (the last
    front event before the first polish event; the end's front if the run did not polish)."""
    events = _events(run_dir)
    ops_of = {e["hash"]: e["ops"] for e in events if e["kind"] == "front"}
    first = next((i for i, e in enumerate(events) if e["kind"] == "polish"), len(events))
    fronts = [e["front"] for e in events[:first] if e["kind"] in ("front", "end")]
    best: dict[int, float] = {}
    for _, err, *rest in fronts[-1] if fronts else []:
        ops = ops_of.get(rest[-1])
        if ops is not None and ops <= MAX_OPS:
            best[ops] = min(float(err), best.get(ops, math.inf))
    return best


def polish_summary(run_dir) -> str:
    """How many refits the end-of-run polish made, how many entered the front, and its wall time."""
    polished = [e for e in _events(run_dir) if e["kind"] == "polish"]
    if not polished:
        return "  end-of-run polish: none"
    start = float(polished[0]["t"]) - float(polished[0].get("polish_s") or 0.0)
    wall = float(polished[-1]["t"]) - start
    admitted = [e for e in polished if e["admitted"]]
    lines = [
        f"  end-of-run polish: {len(polished)} refits, {len(admitted)} entered the front, "
        f"wall {wall:.0f} s (from {start:.0f} s)"
    ]
    for e in polished:
        lines.append(
            f"    {e['ops']:>2} ops {e['hash'][:10]}: {float(e['select_before']):.3e} -> "
            f"{float(e['select_after']):.3e} in {float(e.get('polish_s') or 0.0):.1f} s"
            + ("  (front)" if e["admitted"] else "")
        )
    return "\n".join(lines)


CURVE_MINUTES = (1, 2, 5, 10, 15, 20, 30, 40, 50, 60, 90, 120)


def print_history(run_dir, minutes: float) -> None:
    """From the run's events: how many fits were escalated and their share of the evaluation time,
    and the best select error with at most MAX_OPS ops over time (Front events)."""
    evals = escalated = 0
    eval_ms = escalate_ms = 0.0
    front: list[tuple[float, float]] = []
    with open(f"{run_dir}/events.jsonl") as lines:
        for line in lines:
            event = json.loads(line)
            if event["kind"] == "eval":
                evals += 1
                eval_ms += event.get("eval_ms") or 0.0
                escalate_ms += event.get("escalate_ms") or 0.0
                escalated += bool(event.get("escalate_ms"))
            elif event["kind"] == "front" and event["ops"] <= MAX_OPS:
                front.append((float(event["t"]), float(event["select_err"])))
    share = escalate_ms / eval_ms if eval_ms else 0.0
    print(
        f"  evaluations {evals}, escalated fits {escalated} ({escalated / max(evals, 1):.2%} of children), "
        f"{share:.1%} of evaluation time"
    )
    best, curve, first = math.inf, [], None
    for t, err in front:
        best = min(best, err)
        curve.append((t, best))
        if first is None and best <= 1e-12:
            first = t
    for mark in [m for m in CURVE_MINUTES if m < minutes] + [minutes]:
        seen = [err for t, err in curve if t <= 60 * mark]
        print(f"  best with <= {MAX_OPS} ops after {mark:>4g} min: {seen[-1] if seen else math.nan:.3e}")
    print(f"  first under 1e-12: {'never' if first is None else f'{first:.0f} s'}")
    print(polish_summary(run_dir), flush=True)


def front_table(args) -> None:
    target = get_target("exp2")
    search = build_dataset(target, "search", "float64")
    select = build_dataset(target, "select", "float64")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        evolved, unpolished = evolved_front(
            args.minutes,
            args.seeds,
            args.backend,
            args.workers,
            args.runs_dir or scratch,
            args.from_run,
            args.polish_share,
        )
    search_seconds = time.perf_counter() - started
    started = time.perf_counter()
    refitted = {ops: refit(program, search, restarts=4, use_cma=False) for ops, program in evolved.items()}
    refit_seconds = time.perf_counter() - started
    paper = {
        d["ops"]: (score(parse_text(d["program"]), select).max_err, name, d["published_error"])
        for name, d in paper_programs().items()
    }
    started = time.perf_counter()
    baselines = classical(search, select)
    classical_seconds = time.perf_counter() - started
    families = list(baselines)
    print(f"\nreal-number 2^x on [0, 1], ops {{+, -, x, /}}: max relative error on {select.label}")
    source = (
        f"runs {' '.join(args.from_run)}"
        if args.from_run
        else f"budget {args.minutes:g} min x {len(args.seeds)} seed(s)"
    )
    print(
        f"{source}, backend {args.backend}; search {search_seconds:.0f} s, "
        f"refits {refit_seconds:.0f} s, classical {classical_seconds:.0f} s\n"
    )
    header = (
        f"{'ops':>3} {'unpolished':>10} {'evolved':>10} {'refit':>10} {'paper (ours / published)':>26} "
        + " ".join(f"{f:>17}" for f in families)
    )
    print(header)
    for ops in range(1, MAX_OPS + 1):
        up = unpolished.get(ops, math.nan)
        ev = score(evolved[ops], select).max_err if ops in evolved else math.nan
        rf = score(refitted[ops], select).max_err if ops in refitted else math.nan
        pp = f"{paper[ops][1]} {paper[ops][0]:.2e} / {paper[ops][2]:.1e}" if ops in paper else ""
        cells = " ".join(
            f"{baselines[f][ops][0]:>9.2e} {baselines[f][ops][1]:>7}" if ops in baselines[f] else f"{'':>17}"
            for f in families
        )
        print(f"{ops:>3} {up:>10.2e} {ev:>10.2e} {rf:>10.2e} {pp:>26} {cells}")
    if args.show:
        for ops, program in sorted(refitted.items()):
            print(f"\n{ops} ops (refit):\n{program}")


def refit_paper(args) -> None:
    target = get_target("exp2")
    search = build_dataset(target, "search", "float64")
    select = build_dataset(target, "select", "float64")
    print(f"paper structures refitted from perturbed constants (max relative error on {select.label})\n")
    print(
        f"{'program':>7} {'perturbation':>12} {'seed':>4} {'published':>10} {'start':>10} {'refit':>10} "
        f"{'seconds':>8}"
    )
    for name in ("f5", "f10"):
        program = parse_text(paper_programs()[name]["program"])
        published = score(program, select).max_err
        for relative in (0.01, 0.1):
            for seed in args.seeds:
                rng = np.random.default_rng(seed)
                signs = rng.choice([-1.0, 1.0], len(program.constants()))
                start = program.with_constants(
                    [
                        float_to_bits(bits_to_float(b, FLOAT64) * (1 + relative * s), FLOAT64)
                        for b, s in zip(program.constants(), signs, strict=True)
                    ]
                )
                t0 = time.perf_counter()
                fitted = refit(start, search, restarts=12, use_cma=True, seed=seed)
                print(
                    f"{name:>7} {relative:>12g} {seed:>4} {published:>10.2e} "
                    f"{score(start, select).max_err:>10.2e} "
                    f"{score(fitted, select).max_err:>10.2e} {time.perf_counter() - t0:>8.1f}",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=4.0, help="search budget per seed (default 4)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument(
        "--backend", choices=("serial", "ray"), default="serial", help="ray: one worker per core"
    )
    parser.add_argument("--workers", type=int)
    parser.add_argument(
        "--polish-share",
        type=float,
        help="share of the budget for the end-of-run polish (default: the run's, 0.1 in real mode; 0: off)",
    )
    parser.add_argument("--runs-dir", help="keep the runs here (default: a temporary directory)")
    parser.add_argument(
        "--refit-paper", action="store_true", help="refit f5/f10 from perturbed starts instead of searching"
    )
    parser.add_argument("--show", action="store_true", help="print the refitted evolved programs")
    parser.add_argument(
        "--from-run",
        nargs="+",
        metavar="RUN",
        help="tabulate these finished real-mode exp2 runs instead of searching",
    )
    args = parser.parse_args()
    if args.refit_paper:
        refit_paper(args)
    else:
        front_table(args)


if __name__ == "__main__":
    main()
