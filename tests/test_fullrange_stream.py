"""The full-range array functions' non-temporal path (arrays past the caches): bit for bit what the
cached path and the scalar function give, whatever y's alignment and wherever special inputs fall."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from codegen.fullrange import BLOCK, full_range_c
from codegen.fullrange_kernels import tier

STREAM_MIN = 1 << 20  # the default EVO_STREAM_MIN of the generated source


def test_the_streamed_path_is_in_the_source_and_guarded():
    source = full_range_c("exp2f", tier("exp2f", 1).kernel).source
    assert "#define EVO_STREAM_MIN (1u << 20)" in source
    assert "_mm512_stream_ps" in source and "_mm256_stream_ps" in source and "_mm_sfence" in source
    # without an x86 vector ISA there are no streaming stores: the cached loop only
    assert "#define EVO_STREAM_LANES 0" in source


@pytest.mark.cc
@pytest.mark.parametrize("function", ["exp2f", "expf", "log2f"])
def test_streamed_array_agrees_with_the_cached_path_bit_for_bit(function):
    from codegen.exhaustive import _compile

    full = full_range_c(function, tier(function, 1).kernel)
    library = _compile(full, {"exp2f": "exp2", "expf": "exp", "log2f": "log2"}[function])
    array = getattr(library, f"{full.name}_array")
    array.restype, array.argtypes = None, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    scalar = getattr(library, full.name)
    scalar.restype, scalar.argtypes = ctypes.c_float, [ctypes.c_float]
    rng = np.random.default_rng(3)
    n = STREAM_MIN + 3 * BLOCK + 21  # a ragged tail after the last full block
    # every float32 bit pattern is possible: NaNs, infinities, subnormals, out-of-range inputs
    x = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    ordinary = {"exp2f": (-30, 30), "expf": (-20, 20), "log2f": (1e-3, 1e3)}[function]
    x[: n // 2] = rng.uniform(*ordinary, n // 2).astype(np.float32)  # fast-path blocks too
    x[5 * BLOCK + 3] = np.nan  # one special input in an otherwise ordinary block
    for offset in (0, 1, 3, 15):  # y at every kind of misalignment to the vector width
        out = np.empty(n + 16, dtype=np.float32)
        y = out[offset : offset + n]
        array(x.ctypes.data, y.ctypes.data, n)
        cached = np.empty_like(x)
        for start in range(0, n, 4096):  # short arrays take the cached path
            chunk = slice(start, min(n, start + 4096))
            array(x[chunk].ctypes.data, cached[chunk].ctypes.data, chunk.stop - chunk.start)
        same = (y.view(np.uint32) == cached.view(np.uint32)) | (np.isnan(y) & np.isnan(cached))
        assert same.all(), (offset, int((~same).sum()))
    picks = rng.integers(0, n, 2000)
    want = np.array([scalar(float(v)) for v in x[picks]], dtype=np.float32)
    got = y[picks]
    assert ((got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))).all()
