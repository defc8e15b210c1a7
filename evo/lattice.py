"""Float32 lattice refinement: a discrete search over neighbouring float32 constants (lowest max error)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from evo.roundingbudget import budgeted_error
from primitives.encode import encode
from primitives.interp import evaluate_kernel, score_kernel
from primitives.program import Program
from targets.dataset import Dataset

# Why a discrete search: a continuous fit rounds its constants to float32 at the end, and the
# rounded program's error (its evaluation rounding included) is what counts. Neighbouring float32
# values of the constants, moved together, can compensate each other's rounding and the
# evaluation's (fpminimax picks float coefficients for the same reason).
# Why the bound guard: a move that lowers the max error on a sample but raises the budgeted bound
# max(|model - f| + rho) (evo.roundingbudget) chases the sample's tail: the floats between the
# points pay for it. Measured on 2^x over [0, 1] at 5 ops, the settled reciprocal seed refined on
# its dense sample went from 1.335 to 1.250 ULP there, and from 1.365 to 1.481 on every float (its
# bound from 1.392 to 1.531). A move is taken only where the bound stays at most the start's.


@dataclass(frozen=True, slots=True)
class LatticeSettings:
    """How hard to look: scorer calls, the largest single step and the linearised lattice rounds."""

    budget: int = 3000  # scorer calls at most
    radius: int = 64  # single-coordinate steps of 1, 2, 4, ... up to this many ulps
    pair_radius: int = 2  # pair moves of up to this many ulps per coordinate
    lattice_rounds: int = 6  # linearised minimax steps rounded to the lattice (fpminimax-like)
    corners: int = 5  # coordinates of a lattice step tried at both roundings (2^corners points)
    jacobian_step: int = 64  # ulps of the central differences of the linearisation
    bound_guard: bool = True  # a move may not raise the budgeted bound above the start's


@dataclass(frozen=True, slots=True)
class Refined:
    """A refined program, its max and mean error on the refinement set, where it started, and the
    scorer calls spent."""

    program: Program
    max_err: float
    mean_err: float
    start_err: float
    evaluations: int


def ordinals(values: np.ndarray) -> np.ndarray:
    """The float32 ordinals of ``values`` (consecutive floats differ by 1; -0 and +0 share 0)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.int64)
    magnitude = bits & 0x7FFFFFFF
    return np.where(bits >> 31, -magnitude, magnitude)


def from_ordinals(ords: np.ndarray) -> np.ndarray:
    """The float32 values of ``ords`` (the inverse of ``ordinals``)."""
    ords = np.asarray(ords, dtype=np.int64)
    bits = np.where(ords < 0, np.int64(0x80000000) | -ords, ords).astype(np.uint32)
    return bits.view(np.float32)


class _Problem:
    """One program's constants (as ordinals) scored on one dataset, counting scorer calls."""

    def __init__(self, program: Program, data: Dataset, budget: int) -> None:
        self.free = encode(program, share_constants=False)
        self.program = program.pruned()
        self.x = np.ascontiguousarray(data.x, dtype=np.float32)
        self.hi, self.lo = data.ref_hi, data.ref_lo
        self.inv, self.rounded = data.inv_scale, np.ascontiguousarray(data.rounded, dtype=np.float32)
        self.budget = budget
        self.calls = 0
        self.ref = np.asarray(data.ref_hi, dtype=np.float64) + data.ref_lo
        self.scale = np.asarray(data.inv_scale, dtype=np.float64)

    def bound(self, ords: np.ndarray) -> float:
        """``budgeted_error`` of the constants ``ords`` on the points: max(|model - f| + rho)."""
        bits = [int(b) for b in from_ordinals(ords).view(np.uint32)]
        try:
            return budgeted_error(self.program.with_constants(bits), self.x, self.ref, self.scale)
        except ValueError:  # an op without a rounding budget: no guard
            return np.inf

    @property
    def spent(self) -> bool:
        return self.calls >= self.budget

    def key(self, ords: np.ndarray) -> tuple[float, float]:
        """(max error, mean error) of the constants ``ords``; NaN counts as infinite."""
        self.calls += 1
        consts = from_ordinals(ords)
        if not np.all(np.isfinite(consts)):
            return (np.inf, np.inf)
        f = self.free
        m, total, *_ = score_kernel(
            f.opcodes, f.args, consts, f.out, self.x, self.hi, self.lo, self.inv, self.rounded
        )
        m = float(m)
        mean = float(total) / self.x.shape[0]
        return (m if m == m else np.inf, mean if mean == mean else np.inf)

    def residual(self, ords: np.ndarray) -> np.ndarray:
        """Signed error at every point (in the dataset's unit)."""
        self.calls += 1
        f = self.free
        y = np.empty_like(self.x)
        evaluate_kernel(f.opcodes, f.args, from_ordinals(ords), f.out, self.x, y)
        return (y.astype(np.float64) - self.hi - self.lo) * self.inv


def _lawson(jac: np.ndarray, rhs: np.ndarray, steps: int = 30) -> np.ndarray:
    """Minimax ``d`` of ``jac @ d ~ rhs`` by Lawson's iteratively reweighted least squares."""
    weights = np.full(len(rhs), 1.0 / len(rhs))
    best, best_err = np.zeros(jac.shape[1]), float(np.abs(rhs).max())
    for _ in range(steps):
        root = np.sqrt(weights)
        d, *_ = np.linalg.lstsq(jac * root[:, None], rhs * root, rcond=None)
        residual = np.abs(jac @ d - rhs)
        err = float(residual.max())
        if not np.isfinite(err):
            break
        if err < best_err:
            best, best_err = d, err
        weights = weights * residual
        total = weights.sum()
        if not total > 0:
            break
        weights /= total
    return best


class _Descent:
    """The moves of the refinement, each accepting only a strictly better (max, mean) key."""

    def __init__(self, problem: _Problem, settings: LatticeSettings, start: np.ndarray) -> None:
        self.p, self.s = problem, settings
        self.ords = start.copy()
        self.best = problem.key(start)
        self.ceiling = problem.bound(start) if settings.bound_guard else np.inf

    def _try(self, trial: np.ndarray) -> bool:
        if self.p.spent:
            return False
        key = self.p.key(trial)
        if key < self.best and (self.ceiling == np.inf or self.p.bound(trial) <= self.ceiling):
            self.ords, self.best = trial, key
            return True
        return False

    def coordinates(self) -> bool:
        """Single-coordinate steps of +-1, +-2, +-4, ... ulps, repeated while one helps."""
        improved = False
        steps = [s * sign for s in _powers(self.s.radius) for sign in (1, -1)]
        moved = True
        while moved and not self.p.spent:
            moved = False
            for k in range(len(self.ords)):
                for step in steps:
                    trial = self.ords.copy()
                    trial[k] += step
                    if self._try(trial):
                        moved = improved = True
                        break
        return improved

    def pairs(self) -> bool:
        """Two coordinates moved together by up to ``pair_radius`` ulps each (first improvement)."""
        r = self.s.pair_radius
        offsets = [(a, b) for a in range(-r, r + 1) for b in range(-r, r + 1) if a and b]
        for i, j in itertools.combinations(range(len(self.ords)), 2):
            for a, b in offsets:
                trial = self.ords.copy()
                trial[i] += a
                trial[j] += b
                if self._try(trial):
                    return True
        return False

    def lattice(self) -> bool:
        """A linearised minimax step in ulps of each constant, rounded to nearby lattice points."""
        n = len(self.ords)
        if n == 0 or self.p.calls + 2 * n + 1 > self.p.budget:
            return False
        h = self.s.jacobian_step
        r0 = self.p.residual(self.ords)
        columns = []
        for k in range(n):
            up, down = self.ords.copy(), self.ords.copy()
            up[k] += h
            down[k] -= h
            columns.append((self.p.residual(up) - self.p.residual(down)) / (2 * h))
        jac = np.stack(columns, axis=1)
        keep = np.all(np.isfinite(jac), axis=1) & np.isfinite(r0)
        if keep.sum() <= n:
            return False
        d = _lawson(jac[keep], -r0[keep])
        if not np.all(np.isfinite(d)) or np.all(np.abs(d) < 0.5):
            return False
        improved = False
        for scale in (1.0, 0.5):
            step = d * scale
            base = np.floor(step).astype(np.int64)
            frac = step - base
            # the coordinates whose rounding is least certain are tried both ways
            unsure = np.argsort(-np.minimum(frac, 1 - frac))[: min(self.s.corners, n)]
            for choice in itertools.product((0, 1), repeat=len(unsure)):
                delta = np.rint(step).astype(np.int64)
                delta[unsure] = base[unsure] + np.array(choice, dtype=np.int64)
                if not delta.any():
                    continue
                improved |= self._try(self.ords + delta)
        return improved


def _powers(limit: int) -> list[int]:
    out, step = [], 1
    while step <= max(1, limit):
        out.append(step)
        step *= 2
    return out


def refine(program: Program, data: Dataset, settings: LatticeSettings | None = None) -> Refined:
    """The program with its float32 constants moved to the best neighbouring lattice point found
    (same structure; never worse on ``data`` than the start). Deterministic: a function of the
    program, the points and the settings. Other formats, or programs without constants, come
    back unchanged."""
    settings = settings or LatticeSettings()
    program = program.pruned()
    if program.dtype != "float32" or not program.constants():
        return Refined(program, np.inf, np.inf, np.inf, 0)
    problem = _Problem(program, data, settings.budget)
    start = ordinals(problem.free.consts)
    descent = _Descent(problem, settings, start)
    start_err = descent.best[0]
    rounds = 0
    while not problem.spent:
        moved = descent.coordinates()
        if rounds < settings.lattice_rounds:
            rounds += 1
            moved |= descent.lattice()
        if not moved:
            moved = descent.pairs()
        if not moved:
            break
    bits = [int(b) for b in from_ordinals(descent.ords).view(np.uint32)]
    refined = program.with_constants(bits) if descent.best < (start_err, np.inf) else program
    max_err, mean_err = descent.best
    return Refined(refined, max_err, mean_err, start_err, problem.calls)
