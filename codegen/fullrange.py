"""Full-range C functions around reduced-domain kernels: range reduction, reconstruction, special cases.

- ``exp2f``: n = rint(x), r = x - n (exact, in [-1/2, 1/2]), 2^x = 2^n * k(r) with an exp2 kernel
  on [-0.5, 0.5].
- ``expf``: n = rint(x / ln2), r = x - n*ln2 with a two-constant Cody-Waite split whose first step
  is exact (fmaf), so |r| <= ln2/2 (1 + 2^-16), e^x = 2^n * k(r) with an exp kernel on
  [-ln2/2, ln2/2] (it holds its accuracy on that hair-wider interval; the exhaustive check says so).
- ``log2f``: x = 2^e * m with m in [sqrt(2)/2, sqrt(2)), split without a branch by subtracting the
  bits of sqrt(2)/2 (subnormal inputs normalised first), log2(x) = e + k(m) with a log2 kernel on
  that interval; |e + k| >= 1/2 >= |k| whenever e != 0, so the final addition costs at most half
  an ULP of the kernel's error, and it is exact when e = 0.

Each function has a fast path for inputs whose result is normal and finite (2^n * k by adding n
to the exponent bits; the log2f split above) and a complete function for every input: its
reconstruction multiplies by two powers of two built from their bits, exact in the normal range
and a single rounding for subnormal results; clamps that let NaN through handle NaN, infinities,
overflow and underflow. No branch and no select guards a computation, so both vectorise; both
compute the same operations where the fast path applies, so they agree bit for bit. The array
function runs the fast path over blocks and falls back to the complete function for a block
holding an input outside its range; from EVO_STREAM_MIN elements on (4 MiB of results, past the
caches) each block is computed into an L1 buffer and written with non-temporal stores (x86), which
spare the memory the read of y's lines a cached store makes; the values are the same.
Results: overflow gives +inf, underflow +0 or the correctly rounded subnormal, NaN propagates,
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

/* gcc's jump threading turns the clamps of the complete function into branches, which stops the
   vectoriser; without it the complete loop vectorises too. */
#if defined(__GNUC__) && !defined(__clang__)
#define EVO_COMPLETE_LOOP __attribute__((noinline, optimize("no-thread-jumps", "no-tree-pre", "no-tree-sink"))) static
#else
#define EVO_COMPLETE_LOOP __attribute__((noinline)) static
#endif

/* Non-temporal stores for arrays past the caches (EVO_STREAM_MIN elements: 4 MiB of results). */
#ifndef EVO_STREAM_MIN
#define EVO_STREAM_MIN (1u << 20)
#endif
#if defined(__AVX512F__)
#include <immintrin.h>
#define EVO_STREAM_LANES 16
static inline void evo_stream(float *y, const float *buffer) { _mm512_stream_ps(y, _mm512_load_ps(buffer)); }
#elif defined(__AVX__)
#include <immintrin.h>
#define EVO_STREAM_LANES 8
static inline void evo_stream(float *y, const float *buffer) { _mm256_stream_ps(y, _mm256_load_ps(buffer)); }
#elif defined(__SSE2__)
#include <immintrin.h>
#define EVO_STREAM_LANES 4
static inline void evo_stream(float *y, const float *buffer) { _mm_stream_ps(y, _mm_load_ps(buffer)); }
#else
#define EVO_STREAM_LANES 0
#endif

static inline float evo_pow2i(int n) /* 2^n for n in [-126, 127], from its bits */
{
    uint32_t u = (uint32_t)(n + 127) << 23;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float evo_add_exponent(float k, int n) /* k * 2^n when k and the result are normal: exact */
{
    uint32_t u;
    memcpy(&u, &k, sizeof u);
    u += (uint32_t)n << 23;
    memcpy(&k, &u, sizeof k);
    return k;
}

static inline float evo_scale(float k, int n) /* k * 2^n, k in [1/2, 2), n in [-151, 128], with one rounding at most */
{
    /* k * 2^(n >> 1) is exact and normal; the multiplication by 2^(n - (n >> 1)) is the only one
       that can round (to a subnormal) or overflow. No selects at all, so loops vectorise. */
    int half = n >> 1;
    return (k * evo_pow2i(half)) * evo_pow2i(n - half);
}
"""  # noqa: E501 -- C text emitted as is: long lines kept so exports stay byte-identical

_EXP2F = r"""
#define {name}_LIMIT 0x3d07ffff             /* key < LIMIT: |x| > 124 or NaN, the fast path would leave the normal range */
static inline int32_t {name}_key(float x)  /* 0x7fffffff - |bits(x)|, one andnot */
{{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return (int32_t)(~u & 0x7fffffffu);
}}

static inline float {name}_fast(float x) /* |x| <= 124: 2^n * k(r) by adding n to the exponent bits */
{{
    float n = rintf(x);                      /* ties to even */
    float r = x - n;                         /* exact, in [-0.5, 0.5] */
    return evo_add_exponent({kernel}(r), (int)n);
}}

static inline float {name}_inline(float x)
{{
    /* Clamps that let NaN through (a comparison with NaN is false): NaN flows through r and the
       kernel into the product, +-inf are clamped. No select guards a computation, so gcc cannot
       turn one into a branch and the loop stays vectorisable. */
    float c = x < -151.0f ? -151.0f : x;     /* 2^-151 rounds to +0 */
    c = c > 128.0f ? 128.0f : c;             /* 2^128 overflows to +inf */
    float n = rintf(c);                      /* the same reduction as the fast path */
    float r = c - n;
    return evo_scale({kernel}(r), (int)(n == n ? n : 0.0f));
}}
"""  # noqa: E501 -- C text emitted as is: long lines kept so exports stay byte-identical

_EXPF = r"""
#define {name}_LIMIT 0x3d53ffff             /* key < LIMIT: |x| > 86 or NaN, the fast path would leave the normal range */
static inline int32_t {name}_key(float x)  /* 0x7fffffff - |bits(x)|, one andnot */
{{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return (int32_t)(~u & 0x7fffffffu);
}}

static inline float {name}_reduce(float c, float *n) /* r = c - n*ln2, |r| <= ln2/2 (1 + 2^-16) */
{{
    *n = rintf(c * 0x1.715476p+0f);          /* about c / ln2 */
    float r = fmaf(-*n, {hi}, c);             /* exact: n*LN2_HI is exact, and Sterbenz */
    return fmaf(-*n, {lo}, r);                /* the one rounding of the reduced argument */
}}

static inline float {name}_fast(float x) /* |x| <= 86 */
{{
    float n;
    float r = {name}_reduce(x, &n);
    return evo_add_exponent({kernel}(r), (int)n);
}}

static inline float {name}_inline(float x)
{{
    float c = x < -104.0f ? -104.0f : x;     /* NaN passes both clamps (see exp2f) */
    c = c > 89.0f ? 89.0f : c;
    float n;
    float r = {name}_reduce(c, &n);
    /* No overflow or underflow selects: above the last finite x, e^x exceeds the largest float by
       at least 2^-17 relative, far beyond the kernel's error, so the product rounds to +inf; below
       the first nonzero result it rounds to +0 or, within 1 ULP, to the smallest subnormal. */
    return evo_scale({kernel}(r), (int)(n == n ? n : 0.0f));
}}
"""  # noqa: E501 -- C text emitted as is: long lines kept so exports stay byte-identical

_LOG2F = r"""
#define {name}_LIMIT 0x01000000             /* key < LIMIT: zero, subnormal, negative, inf or NaN */
static inline int32_t {name}_key(float x)  /* bits(x) + 2^23 as a signed integer: one add */
{{
    /* positive normal finite x gives [0x01000000, 0x7fffffff]; inf and NaN wrap negative, and so
       do the negatives, but for those from -inf on, which wrap to [0, 0x007fffff] */
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return (int32_t)(u + 0x00800000u);
}}

static inline float {name}_core(float x, int bias) /* x positive normal finite: log2(x) - bias */
{{
    /* x = 2^e * m with m in [sqrt(2)/2, sqrt(2)): subtracting the bits of sqrt(2)/2 makes the
       exponent field e (arithmetic shift) and leaves m's bits once e is taken out. No branch. */
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint32_t tmp = u - 0x3f3504f3u;
    int e = ((int32_t)tmp >> 23) - bias;
    u -= tmp & 0xff800000u;
    float m;
    memcpy(&m, &u, sizeof m);
    return (float)e + {kernel}(m);            /* exact when e == 0: 0 + k = k */
}}

static inline float {name}_fast(float x)
{{
    return {name}_core(x, 0);
}}

static inline float {name}_inline(float x)
{{
    int tiny = x < 0x1p-126f;                /* subnormal (or zero/negative): normalise exactly */
    float s = x * (tiny ? 0x1p+23f : 1.0f);  /* always multiply: a select, not a branch */
    float y = {name}_core(s, tiny ? 23 : 0);
    y = x == 0.0f ? -INFINITY : y;
    y = x < 0.0f ? NAN : y;
    y = x == INFINITY ? x : y;
    float quiet = x + x;                     /* computed unconditionally: a select needs no speculation */
    return x != x ? quiet : y;
}}
"""

# The array loop: each block of BLOCK elements runs the fast path in one vectorised pass that also
# keeps the minimum of an integer key that is below LIMIT exactly for inputs outside the fast
# range (one or two integer ops and a vector min per 8 inputs); a block holding such an input (NaN, an
# infinity, a zero, over- or underflow, a subnormal) is recomputed with the complete, still
# branch-free function. Inside the fast range both paths compute the same operations, so the
# array and scalar functions agree bit for bit.
BLOCK = 256
_ARRAY = r"""
EVO_COMPLETE_LOOP void {name}_complete(const float *restrict x, float *restrict y, size_t n)
{{
    for (size_t i = 0; i < n; i++)
        y[i] = {name}_inline(x[i]);
}}

static void {name}_cached(const float *restrict x, float *restrict y, size_t n)
{{
    for (size_t i = 0; i < n; i += {block}) {{
        size_t len = n - i < {block} ? n - i : {block};
        int32_t key = INT32_MAX;
        for (size_t j = 0; j < len; j++) {{
            int32_t k = {name}_key(x[i + j]);
            key = k < key ? k : key;
            y[i + j] = {name}_fast(x[i + j]);
        }}
        if (key < {name}_LIMIT)
            {name}_complete(x + i, y + i, len);
    }}
}}

#if EVO_STREAM_LANES
/* Past the caches, each block is computed into an L1 buffer (as above) and written to y with
   non-temporal stores, which skip the read of y's lines that a cached store makes. */
static void {name}_streamed(const float *restrict x, float *restrict y, size_t n)
{{
    size_t head = (size_t)(-(uintptr_t)y & (4 * EVO_STREAM_LANES - 1)) / 4;  /* to y's alignment */
    {name}_cached(x, y, head);
    size_t i = head;
    for (; i + {block} <= n; i += {block}) {{
        float buffer[{block}] __attribute__((aligned(64)));
        {name}_cached(x + i, buffer, {block});
        for (size_t j = 0; j < {block}; j += EVO_STREAM_LANES)
            evo_stream(y + i + j, buffer + j);
    }}
    _mm_sfence();
    {name}_cached(x + i, y + i, n - i);
}}
#endif

void {name}_array(const float *restrict x, float *restrict y, size_t n)
{{
#if EVO_STREAM_LANES
    if (n >= EVO_STREAM_MIN && ((uintptr_t)y & 3) == 0) {{
        {name}_streamed(x, y, n);
        return;
    }}
#endif
    {name}_cached(x, y, n);
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
    source += _ARRAY.format(name=name, block=BLOCK)
    return FullRange(function, name, kernel, source)
