"""The full-range functions as jax-ffi custom calls: inside jax.jit they return the C function's bits."""

from __future__ import annotations

import ctypes
import importlib.util

import numpy as np
import pytest

from codegen.emit_jaxffi import fullrange_jaxffi_files
from codegen.fullrange import BLOCK, full_range_c
from codegen.fullrange_kernels import tier
from codegen.verify import compile_c
from tests.strategies import SPECIAL_INPUTS32


def test_fullrange_jaxffi_sources_wrap_the_full_range_array_function():
    full = full_range_c("log2f", tier("log2f", 1).kernel, name="evo_log2f")
    files = fullrange_jaxffi_files(full, "evo_log2f")
    assert set(files) == {"evo_log2f.h", "evo_log2f.c", "evo_log2f_ffi.cc", "evo_log2f.py"}
    assert files["evo_log2f.c"] == full.source
    assert "void evo_log2f_array(const float *x, float *y, size_t n);" in files["evo_log2f.h"]
    assert 'extern "C"' in files["evo_log2f.h"]
    assert "evo_log2f_array(x.typed_data(), y->typed_data(), x.element_count())" in files["evo_log2f_ffi.cc"]
    compile(files["evo_log2f.py"], "evo_log2f.py", "exec")


@pytest.mark.cc
@pytest.mark.parametrize("function", ["exp2f", "expf", "log2f"])
def test_fullrange_jaxffi_is_bit_exact_inside_jit(function, tmp_path):
    if importlib.util.find_spec("jax") is None:
        pytest.skip("JAX is not installed (pip install -e '.[jax]'); the jax-ffi export needs it")
    from codegen.emit_jaxffi import build_fullrange

    full = full_range_c(function, tier(function, 1).kernel, name=f"evo_{function}_ffitest")
    jitted = build_fullrange(full, tmp_path, target=f"evo_test_{function}")
    reference = compile_c(full.source, full.name, ("-O2", "-ffp-contract=off"))
    rng = np.random.default_rng(11)
    random_bits = rng.integers(0, 1 << 32, 3 * BLOCK + 17, dtype=np.uint64).astype(np.uint32)
    x = np.concatenate(
        [
            np.array(SPECIAL_INPUTS32, dtype=np.float32),
            random_bits.view(np.float32),
            np.float32(2.0) ** -np.arange(120, 149, dtype=np.float32),  # subnormal in and out
            np.linspace(-150, 130, 4099, dtype=np.float32),
        ]
    )
    got = np.asarray(jitted(x))
    want = reference(x)
    same = (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))
    assert same.all(), f"x={x[~same][:3]} got {got[~same][:3]} want {want[~same][:3]}"
    scalar = ctypes.CDLL(reference.library._name)[full.name]
    scalar.restype, scalar.argtypes = ctypes.c_float, [ctypes.c_float]
    at = np.flatnonzero(x == 1.5)[0]
    assert np.float32(scalar(ctypes.c_float(1.5))).view(np.uint32) == got[at].view(np.uint32)
