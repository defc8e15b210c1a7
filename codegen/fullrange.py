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
once). Overflow gives +inf, underflow gives +0 or the correctly rounded subnormal, NaN propagates,
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

#pragma STDC FP_CONTRACT OFF

static inline float evo_pow2i(int n) /* 2^n for n in [-126, 127], from its bits */
{
    uint32_t u = (uint32_t)(n + 127) << 23;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float evo_scale(float k, int n) /* k * 2^n with one rounding at most */
{
    if (n > 127)
        return (k * evo_pow2i(n - 1)) * 2.0f;        /* may overflow to +inf */
    if (n >= -126)
        return k * evo_pow2i(n);                     /* exact */
    return (k * evo_pow2i(n + 64)) * 0x1p-64f;        /* subnormal: the only rounding */
}
"""

_EXP2F = r"""
float {name}(float x)
{{
    if (isnan(x))
        return x + x;
    if (x >= 128.0f)
        return INFINITY;
    if (x < -151.0f)
        return 0.0f;
    float n = rintf(x);   /* ties to even */
    float r = x - n;      /* exact, in [-0.5, 0.5] */
    return evo_scale({kernel}(r), (int)n);
}}
"""

_EXPF = r"""
float {name}(float x)
{{
    if (isnan(x))
        return x + x;
    if (x > {overflow})
        return INFINITY;
    if (x < {underflow})
        return 0.0f;
    float n = rintf(x * 0x1.715476p+0f);
    float r = fmaf(-n, {hi}, x);          /* exact: n*LN2_HI is exact, and Sterbenz */
    r = fmaf(-n, {lo}, r);                 /* the one rounding of the reduced argument */
    if (r > 0x1.62e43p-2f) {{               /* n off by one near a half-integer: fix it */
        n += 1.0f;
        r = fmaf(-n, {lo}, fmaf(-n, {hi}, x));
    }} else if (r < -0x1.62e43p-2f) {{
        n -= 1.0f;
        r = fmaf(-n, {lo}, fmaf(-n, {hi}, x));
    }}
    return evo_scale({kernel}(r), (int)n);
}}
"""

_LOG2F = r"""
float {name}(float x)
{{
    if (isnan(x))
        return x + x;
    if (x == 0.0f)
        return -INFINITY;
    if (x < 0.0f)
        return NAN;
    if (isinf(x))
        return x;
    int e = 0;
    if (x < 0x1p-126f) {{                  /* subnormal: normalise exactly */
        x *= 0x1p+23f;
        e = -23;
    }}
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    e += (int)((u >> 23) & 0xff) - 127;
    u = (u & 0x007fffffu) | 0x3f800000u;   /* m in [1, 2) */
    float m;
    memcpy(&m, &u, sizeof m);
    if (m >= 0x1.6a09e6p+0f) {{             /* sqrt(2): use m/2 in [sqrt(2)/2, 1) */
        m *= 0.5f;
        e += 1;
    }}
    float k = {kernel}(m);
    return e == 0 ? k : (float)e + k;
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
    source += f"\nvoid {name}_array(const float *restrict x, float *restrict y, size_t n)\n{{\n"
    source += f"    for (size_t i = 0; i < n; i++)\n        y[i] = {name}(x[i]);\n}}\n"
    source = source.replace("#include <string.h>", "#include <string.h>\n#include <stddef.h>", 1)
    return FullRange(function, name, kernel, source)
