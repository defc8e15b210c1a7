"""Forward-mode derivatives of a program's output with respect to its constants (float64).

Used by constant fitting: ``value_and_jacobian`` evaluates the program in float64 and, alongside
every register, its partial derivatives with respect to each constant operand, so a least-squares
step needs one pass instead of one evaluation per constant. Constants are not shared here (encode
with ``share_constants=False``): every constant operand is its own parameter.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from primitives.interp import OP_ADD, OP_DIV, OP_FMA, OP_MUL, OP_NEG, OP_SQRT, OP_SUB
from primitives.intrinsics import fma, sqrt

GRADIENT_BLOCK = 128

# Derivative rules, keyed by the op table like every other consumer (a test checks coverage).
DIFFERENTIATED_OPS = {
    "add": "da + db",
    "sub": "da - db",
    "mul": "a db + b da",
    "div": "(da - (a/b) db) / b",
    "fma": "a db + b da + dc",
    "neg": "-da",
    "sqrt": "da / (2 sqrt(a))",
}


@njit(nogil=True, error_model="numpy", cache=True)
def value_and_jacobian(opcodes, args, consts, out, x, y, jac):
    """y[j] = P(x[j]) and jac[j, k] = dP/dc_k (x[j]) in float64, for every point j."""
    n_consts = consts.shape[0]
    first = 1 + n_consts
    n_regs = first + opcodes.shape[0]
    v = np.empty((n_regs, GRADIENT_BLOCK), np.float64)
    g = np.zeros((n_regs, n_consts, GRADIENT_BLOCK), np.float64)
    two = np.float64(2)
    for k in range(n_consts):
        for j in range(GRADIENT_BLOCK):
            v[1 + k, j] = consts[k]
            g[1 + k, k, j] = np.float64(1)
    total = x.shape[0]
    for start in range(0, total, GRADIENT_BLOCK):
        n = min(GRADIENT_BLOCK, total - start)
        for j in range(n):
            v[0, j] = x[start + j]
        for i in range(opcodes.shape[0]):
            op = opcodes[i]
            d = first + i
            a = args[i, 0]
            b = args[i, 1]
            c = args[i, 2]
            if op == OP_FMA:
                for j in range(n):
                    v[d, j] = fma(v[a, j], v[b, j], v[c, j])
                for k in range(n_consts):
                    for j in range(n):
                        g[d, k, j] = v[a, j] * g[b, k, j] + v[b, j] * g[a, k, j] + g[c, k, j]
            elif op == OP_MUL:
                for j in range(n):
                    v[d, j] = v[a, j] * v[b, j]
                for k in range(n_consts):
                    for j in range(n):
                        g[d, k, j] = v[a, j] * g[b, k, j] + v[b, j] * g[a, k, j]
            elif op == OP_ADD:
                for j in range(n):
                    v[d, j] = v[a, j] + v[b, j]
                for k in range(n_consts):
                    for j in range(n):
                        g[d, k, j] = g[a, k, j] + g[b, k, j]
            elif op == OP_SUB:
                for j in range(n):
                    v[d, j] = v[a, j] - v[b, j]
                for k in range(n_consts):
                    for j in range(n):
                        g[d, k, j] = g[a, k, j] - g[b, k, j]
            elif op == OP_DIV:
                for j in range(n):
                    v[d, j] = v[a, j] / v[b, j]
                for k in range(n_consts):
                    for j in range(n):
                        g[d, k, j] = (g[a, k, j] - v[d, j] * g[b, k, j]) / v[b, j]
            elif op == OP_NEG:
                for j in range(n):
                    v[d, j] = -v[a, j]
                for k in range(n_consts):
                    for j in range(n):
                        g[d, k, j] = -g[a, k, j]
            elif op == OP_SQRT:
                for j in range(n):
                    v[d, j] = sqrt(v[a, j])
                for k in range(n_consts):
                    for j in range(n):
                        g[d, k, j] = g[a, k, j] / (two * v[d, j])
        for j in range(n):
            y[start + j] = v[out, j]
        for k in range(n_consts):
            for j in range(n):
                jac[start + j, k] = g[out, k, j]


# ---------------------------------------------------------------- double-double values
# The real-number setting fits float64 programs to relative errors near 1e-15, where the float64
# evaluation's own rounding (~1e-16 per op) is noise that hides the descent direction. There the
# fit uses the program's value in double-double (about 106 bits): a smooth surrogate, the exact
# real-number program, whose residuals stay accurate far below float64 rounding.


@njit(nogil=True, error_model="numpy", cache=True, inline="always")
def _fast_two_sum(a, b):
    s = a + b
    return s, b - (s - a)


@njit(nogil=True, error_model="numpy", cache=True, inline="always")
def _dd_add(ah, al, bh, bl):
    s = ah + bh
    if not (abs(s) < np.inf):
        return s, np.float64(0)
    bb = s - ah
    e = (ah - (s - bb)) + (bh - bb)
    e += al + bl
    return _fast_two_sum(s, e)


@njit(nogil=True, error_model="numpy", cache=True, inline="always")
def _dd_mul(ah, al, bh, bl):
    p = ah * bh
    if not (abs(p) < np.inf) or p == 0:
        return p, np.float64(0)
    e = fma(ah, bh, -p) + (ah * bl + al * bh)
    return _fast_two_sum(p, e)


@njit(nogil=True, error_model="numpy", cache=True, inline="always")
def _dd_div(ah, al, bh, bl):
    q = ah / bh
    if not (abs(q) < np.inf) or q == 0 or not (abs(bh) < np.inf):
        return q, np.float64(0)
    ph, pl = _dd_mul(q, np.float64(0), bh, bl)
    rh, rl = _dd_add(ah, al, -ph, -pl)
    return _fast_two_sum(q, (rh + rl) / bh)


@njit(nogil=True, error_model="numpy", cache=True, inline="always")
def _dd_sqrt(ah, al):
    s = sqrt(ah)
    if not (abs(s) < np.inf) or s == 0:
        return s, np.float64(0)
    e = fma(-s, s, ah) + al
    return _fast_two_sum(s, e / (np.float64(2) * s))


@njit(nogil=True, error_model="numpy", cache=True)
def value_double_double(opcodes, args, consts, out, x, y_hi, y_lo):
    """y_hi[j] + y_lo[j] = P(x[j]) evaluated in double-double (the real-number program, to ~1e-30)."""
    n_consts = consts.shape[0]
    first = 1 + n_consts
    n_regs = first + opcodes.shape[0]
    vh = np.zeros(n_regs, np.float64)
    vl = np.zeros(n_regs, np.float64)
    for k in range(n_consts):
        vh[1 + k] = consts[k]
    for j in range(x.shape[0]):
        vh[0] = x[j]
        for i in range(opcodes.shape[0]):
            op = opcodes[i]
            d = first + i
            a = args[i, 0]
            b = args[i, 1]
            if op == OP_ADD:
                vh[d], vl[d] = _dd_add(vh[a], vl[a], vh[b], vl[b])
            elif op == OP_SUB:
                vh[d], vl[d] = _dd_add(vh[a], vl[a], -vh[b], -vl[b])
            elif op == OP_MUL:
                vh[d], vl[d] = _dd_mul(vh[a], vl[a], vh[b], vl[b])
            elif op == OP_DIV:
                vh[d], vl[d] = _dd_div(vh[a], vl[a], vh[b], vl[b])
            elif op == OP_FMA:
                ph, pl = _dd_mul(vh[a], vl[a], vh[b], vl[b])
                c = args[i, 2]
                vh[d], vl[d] = _dd_add(ph, pl, vh[c], vl[c])
            elif op == OP_NEG:
                vh[d] = -vh[a]
                vl[d] = -vl[a]
            elif op == OP_SQRT:
                vh[d], vl[d] = _dd_sqrt(vh[a], vl[a])
        y_hi[j] = vh[out]
        y_lo[j] = vl[out]
