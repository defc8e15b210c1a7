"""exp2 on [0, 1] under 1 ULP: fastest evolved program against fastest fpminimax polynomial, as exported C.

Evolved: every front program of the given runs (e.g. `evo evolve --target exp2 --cost throughput
--target-ulp 1 ...` and the same with `--cost latency`) certified under 1 ULP on every float32 of
[0, 1]. Classical: the Sollya fpminimax polynomials of targets/data/anchors.json under 1 ULP
(exhaustively), in Horner form as shipped and in Estrin form built from the same coefficients (its
error is measured here over all 1,065,353,217 inputs, since Estrin rounds differently); for each
form the lowest degree under 1 ULP is the fastest. All programs are compiled together with gcc -O3
-march=native -ffp-contract=off and timed in the same run (bench/cost_model.py's harness): scalar
ns per dependent call and array ns per element (L1).

    python bench/paper_claim.py --run RUN [--run RUN ...] [--rounds 15]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cost_model import _Builder, estrin, time_programs  # noqa: E402

from evo.api import load_run, score  # noqa: E402
from evo.costmodel import host_table  # noqa: E402
from primitives.cycles import array_cycles, critical_path  # noqa: E402
from primitives.floatbits import parse_hex  # noqa: E402
from primitives.program import Const, const_of  # noqa: E402
from targets.baselines import anchors_data, baselines  # noqa: E402

TARGET = "exp2_0_1"


def estrin_program(poly: dict):
    if poly["shift"] or poly["umode"] != "v" or poly["outer"] != "none":
        return None
    b = _Builder()
    coefficients = [Const(const_of(parse_hex(h)).bits) for h in poly["inner_hex"]]
    from primitives.program import Ref

    return b.program(estrin(b, coefficients, Ref(0)))


def classical() -> list[tuple[str, str, object, float]]:
    """(name, form, program, exhaustive max ULP): the lowest-degree Horner and Estrin polynomial
    under 1 ULP."""
    found = []
    horner = sorted(
        (b for b in baselines(TARGET) if b.max_ulp_exhaustive < 1),
        key=lambda b: (b.program.op_count(), b.degree),
    )
    if horner:
        b = horner[0]
        found.append(
            (
                f"fpminimax {b.form} degree {b.degree} ({'fma' if b.fused else 'plain'})",
                "Horner",
                b.program,
                b.max_ulp_exhaustive,
            )
        )
    polys = sorted(anchors_data()["targets"][TARGET]["polys"], key=lambda p: p["degree"])
    for poly in polys:
        if (
            poly["fma"]["exhaustive"]["max_ulp"] > 1.2
        ):  # far from 1 ULP in Horner form: Estrin will not do better
            continue
        program = estrin_program(poly)
        if program is None:
            continue
        error = score(program, "exp2", points="final").max_err
        print(
            f"  Estrin {poly['form']} degree {poly['degree']}: {error:.4f} ULP (exhaustive)", file=sys.stderr
        )
        if error < 1:
            found.append(
                (f"fpminimax {poly['form']} degree {poly['degree']} (fma)", "Estrin", program, error)
            )
            break
    return found


def evolved(runs: list[str]) -> list[tuple[str, str, object, float]]:
    found = []
    for run in runs:
        loaded = load_run(run)
        for entry in loaded.front.entries:
            final = entry.final
            if final is not None and "exhaustive" in final.points and final.max_err < 1:
                program = entry.individual.program.pruned()
                found.append(
                    (
                        f"{Path(run).name}:{program.canonical_hash()[:8]}",
                        f"evolved ({loaded.config.cost})",
                        program,
                        final.max_err,
                    )
                )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--run", action="append", default=[], help="run directory of exp2 on [0, 1] with --target-ulp 1"
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    table = host_table()
    rows = classical() + evolved(args.run)
    programs = [(name, program) for name, _, program, _ in rows]
    scalar, array = time_programs(programs, args.rounds, lo=0.0, hi=1.0)
    result = []
    for (name, form, program, error), s, a in zip(rows, scalar, array, strict=True):
        result.append(
            {
                "name": name,
                "form": form,
                "ops": program.op_count(),
                "max_ulp": float(error),
                "latency": critical_path(program, table.latencies),
                "throughput": array_cycles(program, table),
                "scalar_ns": float(s),
                "array_ns": float(a),
            }
        )
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        print()
        return
    best_scalar = min(
        (r for r in result if not r["form"].startswith("evolved")), key=lambda r: r["scalar_ns"]
    )
    best_array = min((r for r in result if not r["form"].startswith("evolved")), key=lambda r: r["array_ns"])
    print(f"exp2 on [0, 1], every program under 1 ULP on all 1,065,353,217 inputs; host {table.cpu}")
    print("ratios: the fastest classical program's time / this program's time (> 1: faster than classical)")
    print(
        f"{'program':44s} {'form':20s} {'ops':>3} {'ULP':>6} {'lat cyc':>7} {'scalar ns':>9} {'x':>5} "
        f"{'thr cyc':>7} {'array ns':>8} {'x':>5}"
    )
    for r in sorted(result, key=lambda r: (r["form"], r["array_ns"])):
        print(
            f"{r['name'][:44]:44s} {r['form']:20s} {r['ops']:>3} {r['max_ulp']:>6.3f} {r['latency']:>7.1f} "
            f"{r['scalar_ns']:>9.2f} {best_scalar['scalar_ns'] / r['scalar_ns']:>5.2f} "
            f"{r['throughput']:>7.3f} "
            f"{r['array_ns']:>8.3f} {best_array['array_ns'] / r['array_ns']:>5.2f}"
        )
    for kind, key in (("latency", "scalar_ns"), ("throughput", "array_ns")):
        mine = [r for r in result if r["form"] == f"evolved ({kind})"]
        if not mine:
            continue
        fastest = min(mine, key=lambda r: r[key])
        for form in ("Horner", "Estrin"):
            ref = [r for r in result if r["form"] == form]
            if ref:
                print(
                    f"--cost {kind}: fastest evolved {fastest[key]:.3f} ns vs fpminimax {form} "
                    f"{ref[0][key]:.3f} ns "
                    f"({key.split('_')[0]}): {ref[0][key] / fastest[key]:.2f}x"
                )


if __name__ == "__main__":
    main()
