"""Classical baselines: the Sollya fpminimax anchors of ``data/anchors.json`` rebuilt as Programs.

Each polynomial is evaluated the way it was measured: v = x (or t = x - 1, exact on [1, 2]);
u = v, v*v or x - 1.5; Horner r = c_m, r = r*u + c_j (one fma, or a mul then an add); then the
outer step: none (r), mul_v (v*r), v_plus_vr (v + v*r) or v_plus_v3r (v + (v*u)*r).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from primitives.floatbits import parse_hex
from primitives.program import Const, Instr, Operand, Program, Ref, const_of
from targets.target import TargetError


@dataclass(frozen=True, slots=True)
class Baseline:
    """One classical polynomial, as a program, with the errors measured for it."""

    target: str
    form: str
    degree: int
    fused: bool
    program: Program
    max_ulp_sample: float
    max_ulp_exhaustive: float
    is_anchor: bool

    @property
    def name(self) -> str:
        return f"{self.target}:{self.form}:{self.degree}:{'fma' if self.fused else 'plain'}"


@cache
def anchors_data() -> dict[str, Any]:
    """The shipped anchors file (read once; immutable use only)."""
    text = resources.files("targets").joinpath("data/anchors.json").read_text()
    return json.loads(text)


def polynomial_program(poly: dict[str, Any], fused: bool) -> Program:
    """Build the evaluation of one anchors.json polynomial entry as a float32 program."""
    body: list[Instr] = []

    def emit(op: str, *args: Operand) -> Ref:
        body.append(Instr(op, tuple(args)))
        return Ref(len(body))

    coefficients = [Const(const_of(parse_hex(h)).bits) for h in poly["inner_hex"]]
    x: Operand = Ref(0)
    v = emit("sub", x, const_of(1.0)) if poly["shift"] else x
    umode = poly["umode"]
    if umode == "v":
        u = v
    elif umode == "v2":
        u = emit("mul", v, v)
    elif umode == "x-1.5":
        u = emit("sub", x, const_of(1.5))
    else:
        raise ValueError(f"unknown u mode {umode!r}")
    r: Operand = coefficients[-1]
    for c in reversed(coefficients[:-1]):
        r = emit("fma", r, u, c) if fused else emit("add", emit("mul", r, u), c)
    outer = poly["outer"]
    if outer == "none":
        p = r
    elif outer == "mul_v":
        p = emit("mul", v, r)
    elif outer == "v_plus_vr":
        p = emit("fma", v, r, v) if fused else emit("add", v, emit("mul", v, r))
    elif outer == "v_plus_v3r":
        v3 = emit("mul", v, u)
        p = emit("fma", v3, r, v) if fused else emit("add", v, emit("mul", v3, r))
    else:
        raise ValueError(f"unknown outer step {outer!r}")
    return Program(tuple(body), p)


def baselines(target: str) -> list[Baseline]:
    """Every classical polynomial of an anchored target (both evaluation modes)."""
    data = anchors_data()["targets"]
    if target not in data:
        raise TargetError(f"no classical anchors for target {target!r} (have: {', '.join(data)})")
    entry = data[target]
    found = []
    for poly in entry["polys"]:
        for fused in (True, False):
            measured = poly["fma" if fused else "plain"]
            anchor = entry["anchor_fma" if fused else "anchor_plain"] or {}
            is_anchor = anchor.get("form") == poly["form"] and anchor.get("degree") == poly["degree"]
            found.append(
                Baseline(
                    target,
                    poly["form"],
                    poly["degree"],
                    fused,
                    polynomial_program(poly, fused),
                    float(measured["max_ulp"]),
                    float(measured["exhaustive"]["max_ulp"]),
                    is_anchor,
                )
            )
    return found


def anchor(target: str, fused: bool = True) -> Baseline | None:
    """The classical anchor (fewest ops under 1 ULP) of a target, or None if there is none."""
    for baseline in baselines(target):
        if baseline.fused == fused and baseline.is_anchor:
            return baseline
    return None


def anchor_spec(spec: str) -> Baseline:
    """Resolve ``anchor:TARGET[:fma|plain]`` or ``poly:TARGET:FORM:DEGREE[:fma|plain]``."""
    parts = spec.split(":")
    kind, rest = parts[0], parts[1:]
    mode = rest.pop() if rest and rest[-1] in ("fma", "plain") else "fma"
    fused = mode == "fma"
    from targets.registry import ALIASES

    if kind == "anchor" and len(rest) == 1:
        target = ALIASES.get(rest[0], rest[0])
        found = anchor(target, fused)
        if found is None:
            raise TargetError(f"target {target!r} has no {mode} anchor under 1 ULP")
        return found
    if kind == "poly" and len(rest) == 3:
        target = ALIASES.get(rest[0], rest[0])
        for baseline in baselines(target):
            if baseline.fused == fused and baseline.form == rest[1] and str(baseline.degree) == rest[2]:
                return baseline
        raise TargetError(f"no polynomial {rest[1]!r} of degree {rest[2]} for {target!r}")
    raise TargetError(
        f"cannot read baseline {spec!r} (use anchor:TARGET[:fma|plain] or "
        "poly:TARGET:FORM:DEGREE[:fma|plain])"
    )
