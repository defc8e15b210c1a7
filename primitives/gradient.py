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
