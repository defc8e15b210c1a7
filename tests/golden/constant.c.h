/*
 * (one operation per statement, no reassociation; constants are exact hex floats).
 * program   fixed (0 ops, depth 0)
 * target    exp2_0_1: 2**x
 * domain    [0x0p+0, 0x1p+0] (outside it the kernel is not an approximation of the target)
 * max error 0.890877 ULP on final (exhaustive, 1065353217 points)
 * run       -
 *
 * kernel(x) and kernel_array(x, y, n) (x and y must not overlap) are defined in the .c file next to
 * this header; link it. kernel_inline is the same function for inlining into your own code: it is
 * compiled with your flags, so the bits are the verified ones only under the flags below.
 *
 * Compile with -ffp-contract=off and without -ffast-math: GCC contracts a*b+c into an FMA by default
 * in GNU mode, which would change the rounding. `evo export --verify` checks it bit for bit with:
 *   -O2 -ffp-contract=off
 *   -O3 -march=native -ffp-contract=off -fno-math-errno
 *   -O3 -march=native -mprefer-vector-width=512 -ffp-contract=off -fno-math-errno
 */
#ifndef EVO_kernel_H
#define EVO_kernel_H

#include <math.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

float kernel(float x);
void kernel_array(const float *x, float *y, size_t n);

#ifdef __cplusplus
}
#endif

static inline float kernel_inline(float x)
{
#if defined(__clang__) || !defined(__GNUC__)
#pragma STDC FP_CONTRACT OFF
#endif
    (void)x;
    return 0x1.8p-1f;
}

#endif /* EVO_kernel_H */