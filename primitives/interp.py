"""The numba interpreter: evaluates encoded programs over arrays of points, and fuses scoring into it.

Every op rounds to the register format (float32, or float64 for the real-number setting); fma is
fused (one rounding) through the ``llvm.fma`` intrinsic; there is no fastmath and no Python float
literal in a kernel, so nothing is promoted or contracted behind the program's back. The kernels
are compiled once per register dtype (and cached on disk), never per program: programs are data.

Layout: the points are processed in blocks of ``BLOCK``; for each block every instruction runs as
one tight loop over the block (instruction-major), which LLVM vectorises, with the register file
(one row per register) staying in cache.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from primitives.intrinsics import fma, sqrt
from primitives.ops import OP_BY_NAME
from primitives.ulp import error_of

BLOCK = 512

# Interpreter dispatch table, keyed by the op table (a test checks it covers every op).
OP_ADD = OP_BY_NAME["add"].opcode
OP_SUB = OP_BY_NAME["sub"].opcode
OP_MUL = OP_BY_NAME["mul"].opcode
OP_DIV = OP_BY_NAME["div"].opcode
OP_FMA = OP_BY_NAME["fma"].opcode
OP_NEG = OP_BY_NAME["neg"].opcode
OP_SQRT = OP_BY_NAME["sqrt"].opcode
INTERPRETED_OPS = {
    "add": OP_ADD,
    "sub": OP_SUB,
    "mul": OP_MUL,
    "div": OP_DIV,
    "fma": OP_FMA,
    "neg": OP_NEG,
    "sqrt": OP_SQRT,
}

_KERNEL = {"nogil": True, "error_model": "numpy", "cache": True}


@njit(**_KERNEL)
def execute_block(opcodes, args, regs, first, n):
    """Run every instruction over the first ``n`` columns of the register file ``regs``."""
    for i in range(opcodes.shape[0]):
        op = opcodes[i]
        d = regs[first + i]
        a = regs[args[i, 0]]
        b = regs[args[i, 1]]
        c = regs[args[i, 2]]
        if op == OP_FMA:
            for j in range(n):
                d[j] = fma(a[j], b[j], c[j])
        elif op == OP_MUL:
            for j in range(n):
                d[j] = a[j] * b[j]
        elif op == OP_ADD:
            for j in range(n):
                d[j] = a[j] + b[j]
        elif op == OP_SUB:
            for j in range(n):
                d[j] = a[j] - b[j]
        elif op == OP_DIV:
            for j in range(n):
                d[j] = a[j] / b[j]
        elif op == OP_NEG:
            for j in range(n):
                d[j] = -a[j]
        elif op == OP_SQRT:
            for j in range(n):
                d[j] = sqrt(a[j])


@njit(**_KERNEL)
def new_registers(consts, n_instructions, dtype_like):
    """A register file for one block, with the constant rows filled (they never change)."""
    first = 1 + consts.shape[0]
    regs = np.empty((first + n_instructions, BLOCK), dtype_like.dtype)
    for k in range(consts.shape[0]):
        row = regs[1 + k]
        value = consts[k]
        for j in range(BLOCK):
            row[j] = value
    return regs


@njit(**_KERNEL)
def evaluate_kernel(opcodes, args, consts, out, x, y):
    """y[i] = program(x[i]) for every point, in the dtype of x (and y)."""
    regs = new_registers(consts, opcodes.shape[0], x)
    first = 1 + consts.shape[0]
    xrow = regs[0]
    result = regs[out]
    total = x.shape[0]
    for start in range(0, total, BLOCK):
        n = min(BLOCK, total - start)
        for j in range(n):
            xrow[j] = x[start + j]
        execute_block(opcodes, args, regs, first, n)
        for j in range(n):
            y[start + j] = result[j]


@njit(**_KERNEL)
def score_kernel(opcodes, args, consts, out, x, ref_hi, ref_lo, inv_scale, rounded):
    """Evaluate and score in one pass: no output array, no Python per point.

    Returns (max_error, sum_of_errors, index_of_worst, n_nonfinite, n_exact, n_over_one), where
    n_exact counts outputs equal to the correctly rounded reference ``rounded`` and n_over_one
    counts errors above 1. A NaN/inf output has infinite error; the max is then inf.
    """
    regs = new_registers(consts, opcodes.shape[0], x)
    first = 1 + consts.shape[0]
    xrow = regs[0]
    y = regs[out]
    scratch = np.zeros(BLOCK + 8, np.float64)  # one allocation: the block's errors, then 8 sum lanes
    err = scratch[:BLOCK]
    lanes = scratch[BLOCK:]
    err_bits = err.view(np.int64)  # errors are >= 0 (or +NaN): their bits order like the values
    best_bits = np.int64(-1)
    max_error = np.float64(0)
    worst = -1
    nonfinite = 0
    exact = 0
    over_one = 0
    one = np.float64(1)
    limit = np.float32(np.inf)
    total = x.shape[0]
    for start in range(0, total, BLOCK):
        n = min(BLOCK, total - start)
        for j in range(n):
            xrow[j] = x[start + j]
        execute_block(opcodes, args, regs, first, n)
        # separate simple loops (not one fused loop): each vectorises, which halves the error stage
        hi = ref_hi[start : start + n]
        lo = ref_lo[start : start + n]
        scale = inv_scale[start : start + n]
        correct = rounded[start : start + n]
        for j in range(n):
            err[j] = error_of(y[j], hi[j], lo[j], scale[j])
        for j in range(n):
            nonfinite += not (abs(y[j]) < limit)
            exact += y[j] == correct[j]
            over_one += not (err[j] <= one)  # NaN counts: a non-finite output has infinite error
        block_best = np.int64(-1)
        for j in range(n):
            block_best = max(block_best, err_bits[j])
        if block_best > best_bits:
            best_bits = block_best
            for j in range(n):
                if err_bits[j] == block_best:
                    worst = start + j
                    max_error = err[j]
                    break
        full = n - n % 8
        for j in range(0, full, 8):
            for lane in range(8):
                lanes[lane] += err[j + lane]
        for j in range(full, n):
            lanes[0] += err[j]
    if nonfinite > 0 or max_error != max_error:
        max_error = np.float64(np.inf)
    return max_error, lanes.sum(), worst, nonfinite, exact, over_one


def check_points(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Contiguous array of the register dtype (float32 inputs may be widened to float64)."""
    x = np.asarray(x)
    if x.dtype != dtype:
        if not (x.dtype == np.float32 and dtype == np.float64):
            raise TypeError(f"points must be {dtype}, got {x.dtype}")
        x = x.astype(dtype)
    return np.ascontiguousarray(x)


def evaluate(program, x: np.ndarray, dtype: str | None = None) -> np.ndarray:
    """Evaluate ``program`` at every point of ``x``; arithmetic in ``dtype`` (default: the program's).

    A float32 program may be evaluated in float64 (the real-number setting); not the reverse.
    """
    from primitives.encode import encode

    register_dtype = np.dtype(program.dtype if dtype is None else dtype)
    if register_dtype.itemsize < np.dtype(program.dtype).itemsize:
        raise ValueError(f"cannot evaluate a {program.dtype} program in {register_dtype}")
    encoded = encode(program)
    points = check_points(x, register_dtype)
    y = np.empty_like(points)
    consts = encoded.consts.astype(register_dtype)
    evaluate_kernel(encoded.opcodes, encoded.args, consts, encoded.out, points, y)
    return y


@njit(nogil=True, error_model="numpy")
def sweep_kernel(opcodes, args, consts, out, ord_lo, count, reference):
    """Score a float32 program on every float32 with ordinal in [ord_lo, ord_lo + count).

    ``reference`` is a numba float64 -> float64 function approximating f; the ULP scale is taken
    from its correctly rounded float32 value. Same return tuple as ``score_kernel`` (the worst index
    is relative to ord_lo). Not cached on disk: it is specialised per reference function.
    """
    regs = new_registers(consts, opcodes.shape[0], consts)
    first = 1 + consts.shape[0]
    xrow = regs[0]
    y = regs[out]
    x_bits = np.empty(BLOCK, np.uint32)
    x_vals = x_bits.view(np.float32)
    rounded = np.empty(BLOCK, np.float32)
    rounded_bits = rounded.view(np.uint32)
    scale_bits = np.empty(BLOCK, np.int64)
    scale = scale_bits.view(np.float64)
    hi = np.empty(BLOCK, np.float64)
    best = np.float64(-1)
    worst = -1
    nonfinite = 0
    exact = 0
    over_one = 0
    total_error = np.float64(0)
    one = np.float64(1)
    zero = np.float64(0)
    limit = np.float32(np.inf)
    sign = np.uint32(0x80000000)
    for start in range(0, count, BLOCK):
        n = min(BLOCK, count - start)
        for j in range(n):
            o = ord_lo + start + j
            x_bits[j] = np.uint32(o) if o >= 0 else (sign | np.uint32(-o))
            xrow[j] = x_vals[j]
        execute_block(opcodes, args, regs, first, n)
        for j in range(n):
            hi[j] = reference(np.float64(xrow[j]))
            rounded[j] = np.float32(hi[j])
            biased = np.int64((rounded_bits[j] >> np.uint32(23)) & np.uint32(0xFF))
            # 1 / ulp32 = 2^(150 - max(biased, 1)), built directly as float64 bits
            scale_bits[j] = (np.int64(1023 + 150) - max(biased, np.int64(1))) << np.int64(52)
        for j in range(n):
            e = error_of(y[j], hi[j], zero, scale[j])
            if not (abs(y[j]) < limit):
                nonfinite += 1
                e = np.float64(np.inf)
            exact += y[j] == rounded[j]
            over_one += e > one
            total_error += e
            if e > best:
                best = e
                worst = start + j
    max_error = best if best >= zero else zero
    return max_error, total_error, worst, nonfinite, exact, over_one


@njit(nogil=True, error_model="numpy")
def sweep_worst_kernel(opcodes, args, consts, out, ord_lo, count, stride, reference, cap):
    """The ``cap`` points of largest error among every ``stride``-th float32 of an ordinal range.

    Same error metric as ``sweep_kernel``; NaN/inf outputs count as infinite error. Returns
    (points, errors), unsorted. Used to find where a program is worst (hard-point mining).
    """
    regs = new_registers(consts, opcodes.shape[0], consts)
    first = 1 + consts.shape[0]
    xrow = regs[0]
    y = regs[out]
    x_bits = np.empty(BLOCK, np.uint32)
    x_vals = x_bits.view(np.float32)
    cell = np.empty(1, np.float32)
    cell_bits = cell.view(np.uint32)
    scale_cell = np.empty(1, np.int64)
    scale = scale_cell.view(np.float64)
    found_x = np.empty(cap, np.float32)
    found_e = np.full(cap, np.float64(-1))
    zero = np.float64(0)
    limit = np.float32(np.inf)
    sign = np.uint32(0x80000000)
    lowest = 0
    n_total = (count + stride - 1) // stride
    for start in range(0, n_total, BLOCK):
        n = min(BLOCK, n_total - start)
        for j in range(n):
            o = ord_lo + (start + j) * stride
            x_bits[j] = np.uint32(o) if o >= 0 else (sign | np.uint32(-o))
            xrow[j] = x_vals[j]
        execute_block(opcodes, args, regs, first, n)
        for j in range(n):
            hi = reference(np.float64(xrow[j]))
            cell[0] = np.float32(hi)
            biased = np.int64((cell_bits[0] >> np.uint32(23)) & np.uint32(0xFF))
            scale_cell[0] = (np.int64(1023 + 150) - max(biased, np.int64(1))) << np.int64(52)
            e = error_of(y[j], hi, zero, scale[0])
            if not (abs(y[j]) < limit):
                e = np.float64(np.inf)
            if e > found_e[lowest]:
                found_e[lowest] = e
                found_x[lowest] = xrow[j]
                for k in range(cap):
                    if found_e[k] < found_e[lowest]:
                        lowest = k
    keep = found_e >= zero
    return found_x[keep], found_e[keep]
