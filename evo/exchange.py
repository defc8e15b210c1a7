"""Exchange refinement of float32 constants: refine on a point set, probe the final set, add its
worst points to the set, refine again (the point exchange of Remez and fpminimax, on the lattice)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from evo.lattice import LatticeSettings, from_ordinals, ordinals, refine
from primitives.encode import encode
from primitives.interp import sweep_worst_kernel
from primitives.program import Program
from targets.dataset import Dataset, Sweep, with_extra_points
from targets.scoring import worst_points

PIECE = 1 << 21  # floats per task of the dense pass

# Why: a refinement on a sample chases the sample's tail. The constants it picks are the best for
# those points, and the error on every other float runs a few percent higher (measured: exp on
# [-ln2/2, ln2/2] at 6 ops, 0.733 on every float for a seed at 0.69 on its ~17k refinement points).
# Adding the floats where the refined program is worst, and refining again, makes the set's max
# error an honest estimate of the final one.


@dataclass(frozen=True, slots=True)
class ExchangeSettings:
    """Rounds of the exchange, the worst points a round adds, and how much of the final set a probe reads."""

    rounds: int = 3
    points: int = 256  # worst points of the probe added per round
    neighbours: int = 1  # floats either side of each worst point, added with it
    probe_points: int = 1 << 22  # a probe of an exhaustive set reads every k-th float, about this many
    blocks: int = 4096  # ordinal blocks of that first pass
    dense_points: int = 1 << 23  # floats of the blocks then read whole
    later_budget: float = 0.5  # lattice budget of each round after the first, relative to the first


@dataclass(frozen=True, slots=True)
class Exchanged:
    """An exchange-refined program and its estimated final error.

    ``estimate`` is the largest error seen on final-set points (the probes, and the refinement points,
    which are floats of the domain when the final set is exhaustive): a lower bound of the final
    error, usually within a fraction of a percent of it. ``data`` is the grown refinement set."""

    program: Program
    estimate: float
    start_estimate: float
    data: Dataset
    rounds: int
    evaluations: int


def probe(program: Program, final: Dataset | Sweep, count: int, settings: ExchangeSettings, round_: int = 0):
    """The ``count`` worst points of ``program`` on the final set and their errors, worst first.

    An explicit final set is read whole. An exhaustive one is read in two passes: every k-th float
    (about ``probe_points`` of them, from an offset that changes with ``round_``) gives the largest
    error of each of ``blocks`` ordinal blocks, then the blocks where it is largest are read whole
    (about ``dense_points`` floats): the worst floats are rare coincidences of rounding, found only
    by reading every float where the error is near its largest, not by a sample."""
    if not isinstance(final, Sweep):
        return worst_points(program, final, count)
    encoded = encode(program)
    kernel_args = (encoded.opcodes, encoded.args, encoded.consts.astype(np.float32), encoded.out)
    size, lo = final.size, final.points.ord_lo
    n_blocks = max(1, min(settings.blocks, size))
    edges = [lo + (size * i) // n_blocks for i in range(n_blocks + 1)]
    stride = max(1, -(-size // settings.probe_points))
    offset = (round_ * 7919) % stride  # a prime step: the rounds read different residues

    def read(block: int, step: int, first: int, cap: int):
        start, stop = edges[block] + first, edges[block + 1]
        if stop <= start:
            return np.empty(0, np.float32), np.empty(0)
        return sweep_worst_kernel(*kernel_args, start, stop - start, step, final.reference, cap)

    if size <= settings.dense_points:
        ranges = [(lo, lo + size)]
    else:
        coarse = np.full(n_blocks, -np.inf)
        for block in range(n_blocks):
            _, errors = read(block, stride, offset if stride > 1 else 0, 1)
            if len(errors):
                coarse[block] = errors.max()
        block_size = max(1, size // n_blocks)
        chosen = sorted(np.argsort(-coarse, kind="stable")[: max(1, settings.dense_points // block_size)])
        ranges = []
        for block in chosen:  # adjacent blocks are read as one range
            if ranges and ranges[-1][1] == edges[block]:
                ranges[-1] = (ranges[-1][0], edges[block + 1])
            else:
                ranges.append((edges[block], edges[block + 1]))
    pieces = [(a, min(b, a + PIECE)) for first, b in ranges for a in range(first, b, PIECE)]

    def read_whole(piece: tuple[int, int]):
        return sweep_worst_kernel(*kernel_args, piece[0], piece[1] - piece[0], 1, final.reference, count)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        parts = list(pool.map(read_whole, pieces))
    xs = np.concatenate([p[0] for p in parts])
    errors = np.concatenate([p[1] for p in parts])
    top = np.lexsort((xs, -errors))[:count]  # worst first, ties by x: deterministic
    return xs[top], errors[top]


def exchange_points(
    xs: np.ndarray, final: Dataset | Sweep, data: Dataset, select_x: np.ndarray, neighbours: int
) -> np.ndarray:
    """The points ``xs`` and their ``neighbours`` floats either side, inside the domain, minus the
    points ``data`` has and every select point (the select set stays unseen by the search)."""
    if len(xs) == 0:
        return np.empty(0, dtype=np.float32)
    ords = ordinals(np.asarray(xs, dtype=np.float32))
    ords = np.concatenate([ords + k for k in range(-neighbours, neighbours + 1)])
    lo, hi = final.points.ord_lo, final.points.ord_hi
    ords = np.unique(ords[(ords >= lo) & (ords <= hi)])
    fresh = from_ordinals(ords)
    fresh = fresh[np.isfinite(fresh) & ~np.isin(fresh, data.x) & ~np.isin(fresh, select_x)]
    return np.unique(fresh)


def exchange_refine(
    program: Program,
    data: Dataset,
    final: Dataset | Sweep,
    select_x: np.ndarray,
    lattice: LatticeSettings | None = None,
    settings: ExchangeSettings | None = None,
) -> Exchanged:
    """Refine ``program``'s float32 constants on ``data`` in rounds: after each round the worst
    points of a final-set probe (and their neighbours, never a select point) join the set. The
    program returned has the lowest estimated final error of the start and every round's result
    (never worse than the start by that estimate). Deterministic: a function of its arguments."""
    lattice = lattice or LatticeSettings()
    settings = settings or ExchangeSettings()
    program = program.pruned()
    exhaustive = isinstance(final, Sweep)

    def estimate(errors: np.ndarray, on_data: float) -> float:
        worst = float(errors[0]) if len(errors) else np.inf
        return max(worst, on_data) if exhaustive else worst

    xs, errors = probe(program, final, settings.points, settings, 0)
    start = estimate(errors, 0.0)
    best, best_err, calls, rounds = program, start, 0, 0
    if program.dtype != "float32" or not program.constants():
        return Exchanged(program, start, start, data, 0, 0)
    for round_ in range(settings.rounds):
        fresh = exchange_points(xs, final, data, select_x, settings.neighbours)
        if fresh.size:
            data = with_extra_points(data, fresh)
        budget = lattice.budget if round_ == 0 else max(1, int(lattice.budget * settings.later_budget))
        refined = refine(best, data, replace(lattice, budget=budget))
        calls += refined.evaluations
        rounds += 1
        xs, errors = probe(refined.program, final, settings.points, settings, round_ + 1)
        err = estimate(errors, refined.max_err)
        if err < best_err:
            best, best_err = refined.program, err
        if not len(errors) or float(errors[0]) <= refined.max_err:
            break  # the set already holds the worst case the probe finds
    return Exchanged(best, best_err, start, data, rounds, calls)
