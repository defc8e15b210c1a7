"""numba intrinsics for the ops Python cannot spell exactly: a truly fused FMA and IEEE sqrt.

``fma(a, b, c)`` emits LLVM's ``llvm.fma`` for the operands' float type: one rounding, on the
hardware FMA unit where there is one (LLVM falls back to a correctly rounded libm call otherwise,
which is slow but still exact). ``sqrt`` emits ``llvm.sqrt``: correctly rounded, NaN for negative
inputs, never an exception. Both work for float32 and float64 and inside vectorised loops.
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic


@intrinsic
def fma(typingctx, a, b, c):
    """a * b + c with a single rounding (``llvm.fma``)."""
    if isinstance(a, types.Float) and a == b == c:

        def codegen(context, builder, signature, args):
            return builder.fma(*args)

        return a(a, a, a), codegen
    return None


@intrinsic
def sqrt(typingctx, a):
    """Correctly rounded square root (``llvm.sqrt``); NaN for negative inputs."""
    if isinstance(a, types.Float):

        def codegen(context, builder, signature, args):
            value_type = args[0].type
            function = builder.module.declare_intrinsic(
                "llvm.sqrt", [value_type], ir.FunctionType(value_type, [value_type])
            )
            return builder.call(function, args)

        return a(a), codegen
    return None
