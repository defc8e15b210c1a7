"""Full-range C functions around reduced-domain kernels: range reduction, reconstruction, special cases.

- ``exp2f``: n = rint(x), r = x - n (exact, in [-1/2, 1/2]), 2^x = 2^n * k(r) with an exp2 kernel
  on [-0.5, 0.5].
- ``expf``: n = rint(x / ln2) (corrected so |r| <= ln2/2), r = x - n*ln2 with a two-constant
  Cody-Waite split whose first step is exact (fmaf), e^x = 2^n * k(r) with an exp kernel on
  [-ln2/2, ln2/2].
- ``log2f``: x = 2^e * m with m in [sqrt(2)/2, sqrt(2)) (subnormal inputs normalised first),
  log2(x) = e + k(m) with a log2 kernel on that interval, which avoids the cancellation a [1, 2)
  reduction suffers just below 1.

Reconstruction multiplies by powers of two built from their bits: exact in the normal range, and a
single rounding for subnormal results (the product is formed at 2^64 scale and then scaled down
once). Special cases are handled with selects rather than early returns, so array loops over these
functions vectorise. Overflow gives +inf, underflow gives +0 or the correctly rounded subnormal, NaN propagates,
and for log2f: log2(+-0) = -inf, log2(negative) = NaN, log2(+inf) = +inf. Everything is float32.
"""

from __future__ import annotations

from dataclasses import dataclass

from codegen.emit_c import c_function
from primitives.program import Program

EXP_OVERFLOW = "0x1.62e42ep+6f"  # largest float32 x with RN32(e^x) finite
EXP_UNDERFLOW = "-0x1.9fe368p+6f"  # smallest float32 x with RN32(e^x) > 0
LN2_HI = "0x1.62e4p-1f"  # 15 significant bits: n * LN2_HI is exact for |n| <= 2^8
LN2_LO = "0x1.7f7d1cp-20f"  # RN32(ln2 - LN2_HI)
KERNEL_DOMAINS = {"exp2f": "[-0.5, 0.5]", "expf": "[-ln2/2, ln2/2]", "log2f": "[sqrt(2)/2, sqrt(2)]"}

_COMMON = r"""
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <stddef.h>

#pragma STDC FP_CONTRACT OFF

static inline float evo_pow2i(int n) /* 2^n for n in [-126, 127], from its bits */
{
    uint32_t u = (uint32_t)(n + 127) << 23;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float evo_scale(float k, int n) /* k * 2^n, n in [-151, 128], with one rounding at most */
{
    /* k * 2^(n - b) is exact; the multiplication by 2^b is the only one that can round (to a
       subnormal, b = -64) or overflow (b = 1). Selects, not branches, so loops vectorise. */
    int b = n < -126 ? -64 : (n > 127 ? 1 : 0);
    return (k * evo_pow2i(n - b)) * evo_pow2i(b);
}
"""

_EXP2F = r"""
static inline float {name}_inline(float x)
{{
    float c = x >= -151.0f ? x : -151.0f;   /* NaN and -inf go to -151 here, fixed below */
    c = c <= 128.0f ? c : 128.0f;            /* 2^128 overflows to +inf, 2^-151 rounds to +0 */
    float n = rintf(c);                      /* ties to even */
    float r = c - n;                         /* exact, in [-0.5, 0.5] */
    float y = evo_scale({kernel}(r), (int)n);
    return x != x ? x + x : y;
}}
"""

_EXPF = r"""
static inline float {name}_inline(float x)
{{
    float c = x >= -104.0f ? x : -104.0f;    /* NaN and -inf go to -104 here, fixed below */
    c = c <= 89.0f ? c : 89.0f;
    float n = rintf(c * 0x1.715476p+0f);     /* about x / ln2 */
    float r = fmaf(-n, {hi}, c);             /* exact: n*LN2_HI is exact, and Sterbenz */
    r = fmaf(-n, {lo}, r);                    /* the one rounding of the reduced argument */
    float fix = r > 0x1.62e43p-2f ? 1.0f : (r < -0x1.62e43p-2f ? -1.0f : 0.0f);
    n += fix;                                /* n was off by one near a half-integer */
    r = fmaf(-n, {lo}, fmaf(-n, {hi}, c));
    float y = evo_scale({kernel}(r), (int)n);
    y = x > {overflow} ? INFINITY : (x < {underflow} ? 0.0f : y);
    return x != x ? x + x : y;
}}
"""

_LOG2F = r"""
static inline float {name}_core(float x) /* positive finite x; anything else is fixed by the caller */
{{
    int tiny = x < 0x1p-126f;                /* subnormal (or zero/negative): normalise exactly */
    float s = x * (tiny ? 0x1p+23f : 1.0f);  /* always multiply: a select, not a branch */
    uint32_t u;
    memcpy(&u, &s, sizeof u);
    int e = (int)((u >> 23) & 0xff) - 127 - (tiny ? 23 : 0);
    u = (u & 0x007fffffu) | 0x3f800000u;     /* m in [1, 2) */
    float m;
    memcpy(&m, &u, sizeof m);
    int high = m >= 0x1.6a09e6p+0f;           /* above sqrt(2): use m/2 in [sqrt(2)/2, 1) */
    m *= high ? 0.5f : 1.0f;
    e += high;
    return (float)e + {kernel}(m);            /* exact when e == 0: 0 + k = k */
}}

static inline float {name}_inline(float x)
{{
    float y = {name}_core(x);
    y = x == 0.0f ? -INFINITY : y;
    y = x < 0.0f ? NAN : y;
    y = x == INFINITY ? x : y;
    return x != x ? x + x : y;
}}
"""


@dataclass(frozen=True, slots=True)
class FullRange:
    """A generated full-range function: its name, the kernel it wraps, and the C source."""

    function: str
    name: str
    kernel: Program
    source: str


def full_range_c(function: str, kernel: Program, name: str | None = None) -> FullRange:
    """C source of ``function`` ("exp2f", "expf" or "log2f") around ``kernel``."""
    if function not in KERNEL_DOMAINS:
        raise ValueError(f"unknown full-range function {function!r} (exp2f, expf, log2f)")
    if kernel.dtype != "float32":
        raise ValueError("full-range functions wrap float32 kernels")
    name = name or f"evo_{function}"
    kernel_name = f"{name}_kernel"
    template = {"exp2f": _EXP2F, "expf": _EXPF, "log2f": _LOG2F}[function]
    body = template.format(
        name=name, kernel=kernel_name, overflow=EXP_OVERFLOW, underflow=EXP_UNDERFLOW, hi=LN2_HI, lo=LN2_LO
    )
    header = (
        f"/* {name}: full-range float32 {function[:-1]} built by evo around the kernel below on "
        f"{KERNEL_DOMAINS[function]}\n * (program {kernel.canonical_hash()}, {kernel.op_count()} ops). "
        "Compile with -ffp-contract=off. */\n"
    )
    source = header + _COMMON + "\n" + "\n".join(c_function(kernel, kernel_name)) + "\n" + body
    # The public scalar function wraps an inline one, so the array loop inlines it and vectorises.
    source += f"\nfloat {name}(float x)\n{{\n    return {name}_inline(x);\n}}\n"
    source += f"\nvoid {name}_array(const float *restrict x, float *restrict y, size_t n)\n{{\n"
    if function == "log2f":  # gcc does not if-convert the special cases here: a second, cheap pass
        source += f"    for (size_t i = 0; i < n; i++)\n        y[i] = {name}_core(x[i]);\n"
        source += "    for (size_t i = 0; i < n; i++)\n        if (!(x[i] > 0.0f) || x[i] == INFINITY)\n"
        source += f"            y[i] = {name}_inline(x[i]);\n}}\n"
    else:
        source += f"    for (size_t i = 0; i < n; i++)\n        y[i] = {name}_inline(x[i]);\n}}\n"
    return FullRange(function, name, kernel, source)
