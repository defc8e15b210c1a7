"""Summaries of run directories for ``evo inspect``: pure functions from the run log to dicts and text."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from evo.errors import RunError
from evo.objective import entry_key
from evo.runlog import CONFIG, RunReader
from evo.setting import setting_for
from primitives.jsonform import from_dict as program_from_dict
from primitives.mathform import to_latex, to_pretty
from primitives.textform import to_text


def _num(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{value!r} is not a count")
    return value


def run_summary(run_dir: str | Path) -> dict[str, Any]:
    """Everything ``evo inspect RUN`` shows, as JSON-ready data; a damaged run is a one-line RunError."""
    try:
        return _summary(RunReader(run_dir))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        if isinstance(exc, RunError):
            raise
        raise RunError(f"{run_dir} is damaged: an event of the wrong shape ({type(exc).__name__}: {str(exc)[:80]})") from None


def _summary(reader: RunReader) -> dict[str, Any]:
    config = reader.config
    events = list(reader.events())
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_kind.setdefault(event.get("kind", "?"), []).append(event)
    front = reader.front()
    checkpoint = reader.checkpoint()  # validated even when the run has ended: resume would read it
    end = by_kind.get("end", [])
    progress = by_kind.get("progress", [])
    # export events carry no time (t is null): the run's length is its last timed event
    last_t = max((_num(e["t"]) for e in events if e.get("t") is not None), default=0.0)
    n_evals = max((_count(e.get("n_evals", 0)) for e in events), default=0)
    rates = [_num(e["evals_per_s"]) for e in progress if e.get("evals_per_s")]
    metric = setting_for(config.mode).metric
    from evo.costmodel import program_costs, run_table

    table = run_table(config)
    summary = {
        "run": str(reader.run_dir),
        "status": "finished" if end else ("stopped" if checkpoint else "incomplete"),
        "end_reason": end[-1]["reason"] if end else None,
        "seed": config.seed,
        "target": (reader.meta.get("target") or {}).get("name", config.target or config.expr),
        "domain": (reader.meta.get("target") or {}).get("domain", config.domain),
        "mode": config.mode,
        "metric": metric,
        "cost_model": config.cost,
        "anchor": (reader.meta.get("target") or {}).get("anchor"),
        "ops": list(config.ops),
        "max_ops": config.max_ops,
        "target_ulp": config.target_ulp,
        "n_evals": n_evals,
        "seconds": last_t,
        "evals_per_s": {"mean": sum(rates) / len(rates) if rates else None, "last": rates[-1] if rates else None},
        "resumes": len(by_kind.get("resume", [])),
        "front": [
            {
                "cost": e["cost"],
                "ops": e["ops"],
                "hash": e["hash"],
                "search": _num(e["score"]["max_err"]),
                "select": _num(e["select"]["max_err"]),
                "final": None if e.get("final") is None else _num(e["final"]["max_err"]),
                "final_points": None if e.get("final") is None else e["final"]["points"],
                "mutation": e["mutation"],
                "id": e["id"],
                "cycles": program_costs(e["program"], table),
            }
            for e in front
        ],
        "best_over_time": [
            {"n_evals": _count(e["n_evals"]), "t": _num(e["t"]), "max_err": _num(e["max_err"]), "cost": _num(e["cost"]),
             "ops": _count(e["ops"])}
            for e in by_kind.get("improve", [])
        ],
        "signoffs": [
            {"hash": str(e["hash"]), "cost": _num(e["cost"]), "final": _num(e["final"]["max_err"]), "t": _num(e["t"]),
             "n_evals": _count(e["n_evals"]), "certified": e.get("certified", False) is True}
            for e in by_kind.get("signoff", [])
        ],
        "throughput": [{"n_evals": _count(e["n_evals"]), "t": _num(e["t"]), "evals_per_s": _num(e["evals_per_s"])} for e in progress],
    }
    summary["gap"] = search_final_gap(summary["front"])
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


def find_program(run_dir: str | Path, which: str):
    """A program of the run: ``best`` (front), a front index, or a (prefix of a) hash."""
    reader = RunReader(run_dir)
    front = reader.front()
    candidates = [(e["hash"], e["program"], e) for e in front]
    if which == "best":
        if not front:
            raise RunError(f"{run_dir} has no front yet")
        config = reader.config

        def key(e):
            return entry_key(e["cost"], _num((e.get("final") or e["select"])["max_err"]), config.target_ulp)

        chosen = min(front, key=key)
        return program_from_dict(chosen["program"]), chosen
    for event in reader.events():
        if "program" in event and "hash" in event:
            candidates.append((event["hash"], event["program"], event))
    matches = {h: (p, e) for h, p, e in candidates if h.startswith(which)}
    if not matches:
        raise RunError(f"no program with hash {which!r} in {run_dir}")
    if len(matches) > 1:
        raise RunError(f"hash prefix {which!r} is ambiguous in {run_dir} ({len(matches)} programs)")
    program, entry = next(iter(matches.values()))
    return program_from_dict(program), entry


def format_error(value: float | None, metric: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4g}" if metric == "ulp" else f"{value:.3e}"


def front_table(front: list[dict[str, Any]], metric: str) -> str:
    unit = "ULP" if metric == "ulp" else "relative error"
    lines = [f"{'cost':>5} {'ops':>4} {'lat':>6} {'thr':>6} {'search':>12} {'select':>12} {'final':>12} {'final/search':>12}"
             f"  hash          ({unit})"]
    for e in front:
        ratio = gap_ratio(e)
        cycles = e.get("cycles") or {}
        lat, thr = (f"{cycles[k]:>6.1f}" if cycles.get(k) is not None else f"{'-':>6}" for k in ("latency", "throughput"))
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
        + (f", {summary['end_reason']}" if summary["end_reason"] else "") + ")",
        f"target   {summary['target']} on {summary['domain']}  mode {summary['mode']}  seed {summary['seed']}",
        f"search   ops {','.join(summary['ops'])}  max ops {summary['max_ops']}"
        + (f"  target {summary['target_ulp']} ULP" if summary["target_ulp"] is not None else ""),
        f"budget   {summary['n_evals']:,d} evaluations in {summary['seconds']:.0f} s"
        + (f" ({rate:,.0f} evals/s)" if rate else "") + (f", {summary['resumes']} resume(s)" if summary["resumes"] else ""),
        "",
        "front (final = every float32 of the domain where feasible, else a large sample)",
        front_table(summary["front"], metric),
    ]
    gap = summary["gap"]
    if gap["n"]:
        lines.append(f"search -> final gap: median {gap['median']:.3f}x, max {gap['max']:.3f}x "
                     f"(final / search error over {gap['n']} signed-off entr{'y' if gap['n'] == 1 else 'ies'})")
    if summary["best_over_time"]:
        lines += ["", "best over time", f"{'evals':>10} {'seconds':>9} {'error':>12} {'cost':>5}"]
        history = summary["best_over_time"]
        shown = history if len(history) <= 16 else history[:4] + history[-12:]
        for h in shown:
            lines.append(f"{h['n_evals']:>10,d} {h['t']:>9.1f} {format_error(h['max_err'], metric):>12} {h['cost']:>5g}")
    if summary["signoffs"]:
        lines += ["", "sign-offs on the final set"]
        for s in summary["signoffs"]:
            mark = "  certified" if s["certified"] else ""
            lines.append(f"  {s['hash'][:12]} cost {s['cost']:g}: {format_error(s['final'], metric)} at {s['t']:.0f} s{mark}")
    return "\n".join(lines)


def program_text(program, latex: bool = False) -> str:
    parts = [to_text(program).rstrip(), "", to_pretty(program)]
    if latex:
        parts += ["", to_latex(program)]
    return "\n".join(parts)


def list_runs(root: str | Path) -> list[dict[str, Any]]:
    """One summary line per run directory under ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise RunError(f"{str(root)!r} is not a directory")
    rows = []
    for path in sorted(p for p in root.iterdir() if (p / CONFIG).exists()):
        try:
            s = run_summary(path)
        except RunError as exc:  # listed as damaged; the other runs are still listed
            rows.append({"run": path.name, "status": f"damaged: {exc}"})
            continue
        def key(e, target=s["target_ulp"]):
            return entry_key(e["cost"], e["final"] if e["final"] is not None else e["select"], target)

        best = min(s["front"], key=key, default=None)
        rows.append(
            {
                "run": path.name, "status": s["status"], "target": s["target"], "seed": s["seed"], "n_evals": s["n_evals"],
                "best": None if best is None else (best["final"] if best["final"] is not None else best["select"]),
                "best_cost": None if best is None else best["cost"], "metric": s["metric"],
            }
        )
    return rows


def is_run_dir(path: str | Path) -> bool:
    return (Path(path) / CONFIG).exists()


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
            ax.plot(*zip(*pts, strict=True), marker=marker, linestyle="-" if key == "select" else "", label=key)
    from evo.costmodel import anchor_points
    from evo.runlog import RunReader as _Reader

    anchors = [(c, e) for c, e, _ in anchor_points(_Reader(summary["run"]).config, summary.get("anchor")) if e > 0]
    if anchors:
        ax.plot(*zip(*anchors, strict=True), marker="x", linestyle="", color="grey", label="classical (final)")
    if summary["metric"] == "ulp":
        ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_yscale("log")
    ax.set_xlabel({"latency": "latency (cycles per call)", "throughput": "throughput (cycles per element)"}.get(
        summary.get("cost_model"), "cost (weighted ops)"))
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
