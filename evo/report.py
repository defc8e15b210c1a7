"""Summaries of run directories for ``evo inspect``: pure functions from a typed ``Run`` to dicts and text."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from evo.errors import RunError
from evo.run import DamagedRun, Run, is_run_dir, scan_runs
from primitives.mathform import to_latex, to_pretty
from primitives.program import Program
from primitives.textform import to_text

__all__ = [
    "find_program",
    "format_error",
    "front_table",
    "is_run_dir",
    "list_runs",
    "plot_run",
    "program_text",
    "run_summary",
    "search_final_gap",
    "summary_of",
    "summary_text",
]


def run_summary(run_dir: str | Path) -> dict[str, Any]:
    """Everything ``evo inspect RUN`` shows, as JSON-ready data; a damaged run is a one-line RunError."""
    return summary_of(Run.load(run_dir))


def summary_of(run: Run) -> dict[str, Any]:
    """The summary of a run that has been read."""
    from evo.costmodel import cost_columns, run_table

    config, history, target = run.config, run.history, run.target
    rates = history.rates
    table = run_table(config)
    summary = {
        "run": str(run.run_dir),
        "status": run.status,
        "end_reason": None if history.end is None else history.end.reason,
        "seed": config.seed,
        "target": target.name or config.target or config.expr,
        "domain": target.domain or config.domain,
        "mode": config.mode,
        "metric": run.setting.metric,
        "cost_model": config.cost,
        "anchor": target.anchor,
        "ops": list(config.ops),
        "max_ops": config.max_ops,
        "target_ulp": config.target_ulp,
        "n_evals": history.n_evals,
        "seconds": history.seconds,
        "evals_per_s": {
            "mean": sum(rates) / len(rates) if rates else None,
            "last": rates[-1] if rates else None,
        },
        "resumes": history.resumes,
        "front": [
            {
                "cost": e.cost,
                "ops": e.individual.program.op_count(),
                "hash": e.individual.program.canonical_hash(),
                "search": e.individual.score.max_err,
                "select": e.select.max_err,
                "final": None if e.final is None else e.final.max_err,
                "final_points": None if e.final is None else e.final.points,
                "mutation": e.individual.mutation,
                "id": e.individual.id,
                "cycles": cost_columns(e.individual.program, table),
            }
            for e in run.front.entries
        ],
        "best_over_time": [
            {"n_evals": i.n_evals, "t": i.t, "max_err": i.max_err, "cost": i.cost, "ops": i.ops}
            for i in history.improvements
        ],
        "signoffs": [
            {
                "hash": s.hash,
                "cost": s.cost,
                "final": s.final,
                "t": s.t,
                "n_evals": s.n_evals,
                "certified": s.certified,
            }
            for s in history.signoffs
        ],
        "throughput": [
            {"n_evals": r.n_evals, "t": r.t, "evals_per_s": r.evals_per_s} for r in history.progress
        ],
    }
    summary["gap"] = search_final_gap(summary["front"])
    polish = [
        {
            "hash": p.hash,
            "polished": p.polished,
            "ops": p.ops,
            "select_before": p.select_before,
            "select_after": p.select_after,
            "admitted": p.admitted,
            "seconds": p.seconds,
        }
        for p in history.polished
    ]
    if polish:  # only runs that polished say so (older summaries stay as they were)
        summary["polish"] = polish
    return summary


def gap_ratio(entry: dict[str, Any]) -> float | None:
    """final / search error of a front entry (None before its sign-off, or when the search error is 0)."""
    final, search = entry.get("final"), entry.get("search")
    if final is None or search is None or not (0 < search < math.inf) or math.isnan(final):
        return None
    return final / search


def search_final_gap(front: list[dict[str, Any]]) -> dict[str, Any]:
    """How optimistic the search-set errors of the front were: median and max of final / search."""
    ratios = sorted(r for r in (gap_ratio(e) for e in front) if r is not None)
    if not ratios:
        return {"n": 0, "median": None, "max": None}
    mid = len(ratios) // 2
    median = ratios[mid] if len(ratios) % 2 else (ratios[mid - 1] + ratios[mid]) / 2
    return {"n": len(ratios), "median": median, "max": ratios[-1]}


def find_program(run_dir: str | Path, which: str) -> tuple[Program, dict[str, Any]]:
    """A program of the run and its record: ``best`` (of the front by the run's objective) or a
    (prefix of a) hash, on the front or named by an event."""
    found = Run.load(run_dir).lookup(which)
    return found.program, found.record()


def format_error(value: float | None, metric: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4g}" if metric == "ulp" else f"{value:.3e}"


def front_table(front: list[dict[str, Any]], metric: str) -> str:
    unit = "ULP" if metric == "ulp" else "relative error"
    lines = [
        f"{'cost':>5} {'ops':>4} {'lat':>6} {'thr':>6} {'search':>12} {'select':>12} {'final':>12} "
        f"{'final/search':>12}"
        f"  hash          ({unit})"
    ]
    for e in front:
        ratio = gap_ratio(e)
        cycles = e.get("cycles") or {}
        lat, thr = (
            f"{cycles[k]:>6.1f}" if cycles.get(k) is not None else f"{'-':>6}"
            for k in ("latency", "throughput")
        )
        lines.append(
            f"{e['cost']:>5g} {e['ops']:>4d} {lat} {thr} {format_error(e['search'], metric):>12} "
            f"{format_error(e['select'], metric):>12} {format_error(e['final'], metric):>12} "
            f"{'-' if ratio is None else f'{ratio:.3f}':>12}  {e['hash'][:12]}"
        )
    return "\n".join(lines)


def summary_text(summary: dict[str, Any]) -> str:
    metric = summary["metric"]
    rate = summary["evals_per_s"]["mean"]
    lines = [
        f"run      {summary['run']}  ({summary['status']}"
        + (f", {summary['end_reason']}" if summary["end_reason"] else "")
        + ")",
        f"target   {summary['target']} on {summary['domain']}  mode {summary['mode']}  seed "
        f"{summary['seed']}",
        f"search   ops {','.join(summary['ops'])}  max ops {summary['max_ops']}"
        + (f"  target {summary['target_ulp']} ULP" if summary["target_ulp"] is not None else ""),
        f"budget   {summary['n_evals']:,d} evaluations in {summary['seconds']:.0f} s"
        + (f" ({rate:,.0f} evals/s)" if rate else "")
        + (f", {summary['resumes']} resume(s)" if summary["resumes"] else ""),
        "",
        "front (final = every float32 of the domain where feasible, else a large sample)",
        front_table(summary["front"], metric),
    ]
    gap = summary["gap"]
    if gap["n"]:
        lines.append(
            f"search -> final gap: median {gap['median']:.3f}x, max {gap['max']:.3f}x "
            f"(final / search error over {gap['n']} signed-off entr{'y' if gap['n'] == 1 else 'ies'})"
        )
    if summary["best_over_time"]:
        lines += ["", "best over time", f"{'evals':>10} {'seconds':>9} {'error':>12} {'cost':>5}"]
        history = summary["best_over_time"]
        shown = history if len(history) <= 16 else history[:4] + history[-12:]
        for h in shown:
            lines.append(
                f"{h['n_evals']:>10,d} {h['t']:>9.1f} {format_error(h['max_err'], metric):>12} "
                f"{h['cost']:>5g}"
            )
    if summary["signoffs"]:
        lines += ["", "sign-offs on the final set"]
        for s in summary["signoffs"]:
            mark = "  certified" if s["certified"] else ""
            lines.append(
                f"  {s['hash'][:12]} cost {s['cost']:g}: {format_error(s['final'], metric)} at {s['t']:.0f} "
                f"s{mark}"
            )
    if summary.get("polish"):
        seconds = sum(p["seconds"] for p in summary["polish"] if not math.isnan(p["seconds"]))
        lines += ["", f"end-of-run polish (thorough refits, {seconds:.0f} s; select-set error)"]
        for p in summary["polish"]:
            outcome = f"-> {p['polished'][:12]} on the front" if p["admitted"] else "(front unchanged)"
            lines.append(
                f"  {p['hash'][:12]} {p['ops']:>3d} ops: {format_error(p['select_before'], metric)} -> "
                f"{format_error(p['select_after'], metric)} {outcome}"
            )
    return "\n".join(lines)


def program_text(program, latex: bool = False) -> str:
    parts = [to_text(program).rstrip(), "", to_pretty(program)]
    if latex:
        parts += ["", to_latex(program)]
    return "\n".join(parts)


def list_runs(root: str | Path) -> list[dict[str, Any]]:
    """One summary line per run directory under ``root`` (a damaged run says why)."""
    rows = []
    for run in scan_runs(root):
        if isinstance(run, DamagedRun):
            rows.append({"run": run.run_dir.name, "status": f"damaged: {run.reason}"})
            continue
        best = run.best
        rows.append(
            {
                "run": run.run_dir.name,
                "status": run.status,
                "target": run.target.name or run.config.target or run.config.expr,
                "seed": run.config.seed,
                "n_evals": run.history.n_evals,
                "best": None if best is None else best.error,
                "best_cost": None if best is None else best.cost,
                "metric": run.setting.metric,
            }
        )
    return rows


def plot_run(summary: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """PNG plots of the front and of the best error over evaluations (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RunError("--plot needs matplotlib: pip install 'evo[plot]'") from None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    unit = "max ULP error" if summary["metric"] == "ulp" else "max relative error"
    written = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, marker in (("search", "o"), ("select", "s"), ("final", "^")):
        pts = [(e["cost"], e[key]) for e in summary["front"] if e[key] is not None and e[key] > 0]
        if pts:
            ax.plot(
                *zip(*pts, strict=True), marker=marker, linestyle="-" if key == "select" else "", label=key
            )
    from evo.costmodel import anchor_points

    config = Run.load(summary["run"]).config
    anchors = [(c, e) for c, e, _ in anchor_points(config, summary.get("anchor")) if e > 0]
    if anchors:
        ax.plot(
            *zip(*anchors, strict=True), marker="x", linestyle="", color="grey", label="classical (final)"
        )
    if summary["metric"] == "ulp":
        ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_yscale("log")
    ax.set_xlabel(
        {"latency": "latency (cycles per call)", "throughput": "throughput (cycles per element)"}.get(
            summary.get("cost_model"), "cost (weighted ops)"
        )
    )
    ax.set_ylabel(unit)
    ax.set_title(f"front: {summary['target']} ({summary['mode']})")
    ax.legend()
    fig.tight_layout()
    path = out / "front.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    written.append(path)
    history = summary["best_over_time"]
    if history:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.step([h["n_evals"] for h in history], [max(h["max_err"], 1e-300) for h in history], where="post")
        ax.set_yscale("log")
        ax.set_xlabel("evaluations")
        ax.set_ylabel(f"best {unit} (search set)")
        ax.set_title("best over time")
        fig.tight_layout()
        path = out / "best_over_time.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written
