/*
 * (one operation per statement, no reassociation; constants are exact hex floats).
 * program   fixed (6 ops, depth 6)
 * target    exp2_0_1: 2**x
 * domain    [0x0p+0, 0x1p+0] (outside it the kernel is not an approximation of the target)
 * max error 0.890877 ULP on final (exhaustive, 1065353217 points)
 * run       -
 *
 * Compile with -ffp-contract=off and without -ffast-math: GCC contracts a*b+c into an FMA by default
 * in GNU mode, which would change the rounding. `evo export --verify` checks it bit for bit with:
 *   -O2 -ffp-contract=off
 *   -O3 -march=native -ffp-contract=off -fno-math-errno
 *   -O3 -march=native -mprefer-vector-width=512 -ffp-contract=off -fno-math-errno
 */
#include "kernel.h"

#if defined(__clang__) || !defined(__GNUC__)
#pragma STDC FP_CONTRACT OFF
#endif

float kernel(float x)
{
    return kernel_inline(x);
}

void kernel_array(const float *restrict x, float *restrict y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = kernel_inline(x[i]);
}