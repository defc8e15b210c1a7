"""Exhaustive check of a full-range float32 function over all 2^32 inputs, and its special cases.

The reference is the glibc binary64 function of the float input, rounded to float32 where needed;
it deviates from the exact value by about 1e-9 float32 ULP (measured against mpmath for the reduced
domains), far below what is reported. The ULP error is the project's one definition
(``primitives.ulp``): |y - f(x)| / ulp32(RN32(f(x))). Non-finite expected results (NaN, overflow to
infinity) must be matched exactly; a non-finite output where a finite one is expected counts as a
special-case failure (infinite error).

The checker runs the array function (fast path plus the fallback blocks) on all inputs in chunks,
and also the scalar function, counting inputs where the two differ in any bit.

From the command line: ``evo fullrange exp2f [--tier 1|2|4 | --kernel PROGRAM.json | anchor:exp2_m05_05]``.
"""

from __future__ import annotations

import ctypes
import math
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mpmath
import numpy as np

from codegen.fullrange import FullRange, full_range_c
from codegen.verify import find_compiler
from primitives.floatbits import FLOAT32, format_hex
from primitives.program import Program
from primitives.rounding import round_mpf
from primitives.ulp import ulp32

REFERENCES = {
    "exp2f": ("exp2", mpmath.exp2 if hasattr(mpmath, "exp2") else (lambda v: mpmath.power(2, v))),
    "expf": ("exp", mpmath.exp),
    "log2f": ("log2", lambda v: mpmath.log(v, 2)),
}

_CHECKER = r"""
#include <omp.h>
#define EVO_CHUNK 4096

typedef struct {
    double max_ulp;
    uint32_t argmax;
    uint64_t over_one;
    uint64_t exact;
    uint64_t finite;
    uint64_t special_fail;
    uint32_t first_special_fail;
    uint64_t disagree;
} evo_report;

static double evo_ulp32(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    int e = (int)((u >> 23) & 0xff);
    return ldexp(1.0, (e == 0 ? 1 : e) - 150);
}

void evo_check(evo_report *out)
{
    double best = -1.0;
    uint32_t argmax = 0, first_fail = 0;
    uint64_t over_one = 0, exact = 0, finite = 0, special_fail = 0, disagree = 0;
    #pragma omp parallel
    {
        double my_best = -1.0;
        uint32_t my_arg = 0, my_fail = 0xffffffffu;
        uint64_t my_over = 0, my_exact = 0, my_finite = 0, my_special = 0, my_disagree = 0;
        float xs[EVO_CHUNK], ys[EVO_CHUNK];
        #pragma omp for schedule(static, 16)
        for (int64_t c = 0; c < ((int64_t)1 << 32) / EVO_CHUNK; c++) {
            for (int k = 0; k < EVO_CHUNK; k++) {
                uint32_t u = (uint32_t)(c * EVO_CHUNK + k);
                memcpy(&xs[k], &u, sizeof u);
            }
            ARRAY(xs, ys, EVO_CHUNK);  /* the array function (fast path plus fallback blocks) */
            for (int k = 0; k < EVO_CHUNK; k++) {
            uint32_t u = (uint32_t)(c * EVO_CHUNK + k);
            float x = xs[k];
            float y = ys[k];
            float z = FUNCTION(x);
            uint32_t yb, zb;
            memcpy(&yb, &y, sizeof yb);
            memcpy(&zb, &z, sizeof zb);
            if (yb != zb && !(isnan(y) && isnan(z))) my_disagree++;
            double ref = REFERENCE((double)x);
            float rn = (float)ref;
            int ok;
            if (isnan(ref)) {
                ok = isnan(y);
            } else if (isinf(rn)) {
                ok = (y == rn);
            } else if (!isfinite(y)) {
                ok = 0;
            } else {
                double err = fabs((double)y - ref) / evo_ulp32(rn);
                my_finite++;
                if (err > 1.0) my_over++;
                if (y == rn) my_exact++;
                if (err > my_best || (err == my_best && u < my_arg)) { my_best = err; my_arg = u; }
                ok = 1;
            }
            if (!ok) {
                my_special++;
                if (u < my_fail) my_fail = u;
            }
            }
        }
        #pragma omp critical
        {
            if (my_best > best || (my_best == best && my_arg < argmax)) { best = my_best; argmax = my_arg; }
            over_one += my_over; exact += my_exact; finite += my_finite; disagree += my_disagree;
            if (my_special && (special_fail == 0 || my_fail < first_fail)) first_fail = my_fail;
            special_fail += my_special;
        }
    }
    out->max_ulp = best; out->argmax = argmax; out->over_one = over_one; out->exact = exact;
    out->finite = finite; out->special_fail = special_fail; out->first_special_fail = first_fail;
    out->disagree = disagree;
}
"""


class _Report(ctypes.Structure):
    _fields_ = [
        ("max_ulp", ctypes.c_double),
        ("argmax", ctypes.c_uint32),
        ("over_one", ctypes.c_uint64),
        ("exact", ctypes.c_uint64),
        ("finite", ctypes.c_uint64),
        ("special_fail", ctypes.c_uint64),
        ("first_special_fail", ctypes.c_uint32),
        ("disagree", ctypes.c_uint64),
    ]


@dataclass(frozen=True, slots=True)
class SpecialCase:
    label: str
    x: float
    expected: float
    got: float

    @property
    def ok(self) -> bool:
        if math.isnan(self.expected):
            return math.isnan(self.got)
        if math.isinf(self.expected):
            return self.got == self.expected
        if not math.isfinite(self.got):
            return False
        # under 1 ULP means at most one float away from the correctly rounded value
        return abs(self.got - self.expected) <= ulp32(self.expected)


@dataclass(frozen=True, slots=True)
class ExhaustiveReport:
    """Max ULP over every float32 input with a finite expected result, and the special cases."""

    function: str
    kernel_hash: str
    max_ulp: float
    argmax_x: float
    n_over_one: int
    n_correctly_rounded: int
    n_finite: int
    n_special_failures: int
    first_special_failure: float | None
    n_scalar_array_disagree: int
    specials: tuple[SpecialCase, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        """No special-case failure over the sweep, and the array function equal to the scalar one
        everywhere."""
        return self.n_special_failures == 0 and self.n_scalar_array_disagree == 0

    def text(self) -> str:
        lines = [
            f"{self.function} (kernel {self.kernel_hash[:12]}): all 2^32 float32 inputs in "
            f"{self.seconds:.1f} s",
            f"  max error {self.max_ulp:.6f} ULP at x = {format_hex(self.argmax_x)} ({self.argmax_x!r})",
            f"  {self.n_finite:,d} inputs with a finite result: "
            f"{self.n_correctly_rounded / self.n_finite:.4%} correctly rounded, "
            f"{self.n_over_one:,d} over 1 ULP",
            f"  special-case failures (NaN, infinities, overflow, zero): {self.n_special_failures}"
            + (
                ""
                if self.first_special_failure is None
                else f" (first at x = {self.first_special_failure!r})"
            ),
            f"  scalar and array functions disagree (bits) on {self.n_scalar_array_disagree} inputs",
            "  spot checks:",
        ]
        for case in self.specials:
            lines.append(
                f"    {'ok ' if case.ok else 'BAD'} {case.label:28s} f({case.x!r}) = {case.got!r} (expected "
                f"{case.expected!r})"
            )
        return "\n".join(lines)


def _compile(full: FullRange, reference: str) -> ctypes.CDLL:
    directory = Path(tempfile.mkdtemp(prefix="evo-exhaustive-"))
    source = (
        full.source
        + f"\n#define FUNCTION {full.name}\n#define ARRAY {full.name}_array\n#define REFERENCE {reference}\n"
        + _CHECKER
    )
    (directory / "check.c").write_text(source)
    library = directory / "libcheck.so"
    command = [
        find_compiler(),
        "-O3",
        "-march=native",
        "-ffp-contract=off",
        "-fopenmp",
        "-std=gnu99",
        "-shared",
        "-fPIC",
        "-o",
        str(library),
        str(directory / "check.c"),
        "-lm",
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"compiling the exhaustive checker failed:\n{done.stderr}")
    return ctypes.CDLL(str(library))


def _special_inputs(function: str) -> list[tuple[str, float]]:
    tiny = 2.0**-149
    common = [
        ("NaN", math.nan),
        ("+inf", math.inf),
        ("-inf", -math.inf),
        ("+0", 0.0),
        ("-0", -0.0),
        ("1", 1.0),
    ]
    if function == "exp2f":
        return common + [
            ("127.99999", float(np.nextafter(np.float32(128), np.float32(0)))),
            ("128 (overflow)", 128.0),
            ("-126 (smallest normal)", -126.0),
            ("-140 (subnormal)", -140.0),
            ("-149 (min subnormal)", -149.0),
            ("-150 (tie -> 0)", -150.0),
            ("-149.5", -149.5),
            ("-200", -200.0),
            ("0.5", 0.5),
            ("-0.5", -0.5),
        ]
    if function == "expf":
        return common + [
            ("88.72283 (last finite)", float.fromhex("0x1.62e42ep+6")),
            ("88.72284 (overflow)", float.fromhex("0x1.62e430p+6")),
            ("-87.33655", -87.33655),
            ("-100 (subnormal)", -100.0),
            ("-103.97 (first nonzero)", float.fromhex("-0x1.9fe368p+6")),
            ("-104 (zero)", -104.0),
            ("ln2/2", float(np.float32(0.34657359))),
        ]
    return common + [
        ("-1 (NaN)", -1.0),
        ("2", 2.0),
        ("0.5", 0.5),
        ("min subnormal", tiny),
        ("max float", float(np.finfo(np.float32).max)),
        ("1 - ulp", float(np.nextafter(np.float32(1), np.float32(0)))),
        ("1 + ulp", float(np.nextafter(np.float32(1), np.float32(2)))),
    ]


def _expected(function: str, x: float) -> float:
    _, exact = REFERENCES[function]
    if math.isnan(x):
        return math.nan
    with mpmath.workprec(300):
        if function == "log2f":
            if x == 0:
                return -math.inf
            if x < 0:
                return math.nan
            if math.isinf(x):
                return math.inf
        elif math.isinf(x):
            return math.inf if x > 0 else 0.0
        return round_mpf(exact(mpmath.mpf(x)), FLOAT32)


def check(function: str, kernel: Program) -> ExhaustiveReport:
    """Compile the full-range function with a checker and sweep all 2^32 inputs."""
    full = full_range_c(function, kernel)
    reference, _ = REFERENCES[function]
    library = _compile(full, reference)
    scalar = getattr(library, full.name)
    scalar.restype = ctypes.c_float
    scalar.argtypes = [ctypes.c_float]
    report = _Report()
    started = time.perf_counter()
    library.evo_check(ctypes.byref(report))
    seconds = time.perf_counter() - started
    inputs = [
        (label, float(np.float32(x))) for label, x in _special_inputs(function)
    ]  # the float32 actually passed
    specials = tuple(SpecialCase(label, x, _expected(function, x), float(scalar(x))) for label, x in inputs)
    argmax = float(np.uint32(report.argmax).view(np.float32))
    first = None if report.special_fail == 0 else float(np.uint32(report.first_special_fail).view(np.float32))
    return ExhaustiveReport(
        function,
        kernel.canonical_hash(),
        report.max_ulp,
        argmax,
        int(report.over_one),
        int(report.exact),
        int(report.finite),
        int(report.special_fail),
        first,
        int(report.disagree),
        specials,
        seconds,
    )
