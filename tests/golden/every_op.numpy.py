"""
(one operation per statement, no reassociation; constants are exact hex floats).
program   fixed (7 ops, depth 5)
target    exp2_0_1: 2**x
domain    [0x0p+0, 0x1p+0] (outside it the kernel is not an approximation of the target)
max error 0.890877 ULP on final (exhaustive, 1065353217 points)
run       -

numpy export: bit-exact (fma emulated exactly with float64 and round-to-odd).
"""

import numpy as np

def _fma(a, b, c):
    """Correctly rounded float32 a*b + c (one rounding), elementwise."""
    a, b, c = (np.asarray(v, dtype=np.float32) for v in (a, b, c))
    p = a.astype(np.float64) * b.astype(np.float64)  # exact: 24 + 24 bits
    c64 = c.astype(np.float64)
    s = p + c64
    bp = s - c64  # TwoSum: s + err == p + c exactly
    err = (p - bp) + (c64 - (s - bp))
    bits = s.view(np.uint64)
    even = (bits & np.uint64(1)) == 0
    toward = np.nextafter(s, np.where(err > 0, np.inf, -np.inf))
    odd = np.where((err != 0) & even & np.isfinite(s), toward, s)  # round to odd at 53 bits
    return odd.astype(np.float32)


def kernel(x):
    """The kernel, elementwise over an array of float32 inputs."""
    x = np.asarray(x, dtype=np.float32)
    with np.errstate(all='ignore'):
        t1 = x * x
        t2 = t1 + np.float32(float.fromhex('0x1.8p+0'))
        t3 = t2 - x
        t4 = np.float32(float.fromhex('0x1p+0')) / t3
        t5 = np.sqrt(t2)
        t6 = -t5
        t7 = _fma(t4, t6, np.float32(float.fromhex('-0x1.921fb6p+1')))
        return np.broadcast_to(np.asarray(t7, dtype=np.float32), x.shape).copy()