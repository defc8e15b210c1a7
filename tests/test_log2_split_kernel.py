"""The split-order log2 kernels of the shipped log2f tiers: the same polynomials as the Horner fits,
a shorter dependency chain, and the full-range C function equal bit for bit to the interpreter's."""

from __future__ import annotations

import ctypes
from collections import Counter

import numpy as np
import pytest

from codegen.fullrange import full_range_c
from codegen.fullrange_kernels import tier
from codegen.log2_kernel import (
    LOG2_KERNEL,
    LOG2_KERNEL_DEG8,
    LOG2_KERNEL_DEG8_SPLIT,
    LOG2_KERNEL_SPLIT,
    split_order,
)
from primitives.cycles import critical_path
from primitives.interp import evaluate
from primitives.ops import OPS

PAIRS = [(LOG2_KERNEL, LOG2_KERNEL_SPLIT), (LOG2_KERNEL_DEG8, LOG2_KERNEL_DEG8_SPLIT)]


def _constants(program) -> Counter:
    return Counter(program.constant_values())


@pytest.mark.parametrize("horner,split", PAIRS)
def test_split_kernel_has_the_horner_coefficients_and_a_shorter_chain(horner, split):
    # the same coefficients, no others: only the evaluation order differs
    assert _constants(split) == _constants(horner)
    unit = {op.name: 1.0 for op in OPS}
    assert critical_path(split, unit) <= critical_path(horner, unit) - 2
    assert split.op_count() == horner.op_count() + 1  # the one extra multiply, t*t
    # the order changes roundings, not the function: close to the Horner kernel on its domain
    x = np.linspace(np.sqrt(0.5), np.sqrt(2.0), 20001, dtype=np.float32)
    a, b = evaluate(split, x).astype(np.float64), evaluate(horner, x).astype(np.float64)
    assert np.max(np.abs(a - b) / np.spacing(np.abs(b).astype(np.float32))) <= 2.0


def test_shipped_log2f_tiers_are_the_split_kernels():
    assert tier("log2f", 1).kernel is LOG2_KERNEL_SPLIT
    assert tier("log2f", 2).kernel is tier("log2f", 4).kernel is LOG2_KERNEL_DEG8_SPLIT


def _interpreter_log2f(kernel, x: np.ndarray) -> np.ndarray:
    """The log2f fast path for positive normal finite x with the kernel run by the interpreter."""
    u = x.view(np.uint32)
    tmp = u - np.uint32(0x3F3504F3)
    e = tmp.view(np.int32) >> 23
    m = (u - (tmp & np.uint32(0xFF800000))).view(np.float32)
    return e.astype(np.float32) + evaluate(kernel, m)  # float32 + float32: one rounding


@pytest.mark.cc
@pytest.mark.parametrize("bound", [1, 2])
def test_log2f_c_equals_the_interpreter_bit_for_bit(bound):
    from codegen.exhaustive import _compile

    kernel = tier("log2f", bound).kernel
    full = full_range_c("log2f", kernel)
    library = _compile(full, "log2")
    array = getattr(library, f"{full.name}_array")
    array.restype, array.argtypes = None, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    rng = np.random.default_rng(11)
    bits = rng.integers(0x00800000, 0x7F800000, 200_000, dtype=np.uint32)  # positive normal floats
    bits[:4] = [0x3F3504F3, 0x3F3504F2, 0x3F800000, 0x7F7FFFFF]  # the split point, 1, the largest float
    x = bits.view(np.float32)
    y = np.empty_like(x)
    array(x.ctypes.data, y.ctypes.data, x.shape[0])
    want = _interpreter_log2f(kernel, x)
    assert np.array_equal(y.view(np.uint32), want.view(np.uint32))


def test_split_order_refuses_a_half_too_short_to_split():
    with pytest.raises(ValueError, match="two coefficients"):
        split_order(LOG2_KERNEL_DEG8, horner_tail=6)  # c6..c8: an odd half of one coefficient
