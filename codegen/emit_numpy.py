"""numpy kernels: float32 array code that equals the interpreter bit for bit.

Every op rounds to float32 (numpy float32 arithmetic is IEEE). numpy has no fused multiply-add, so
fma is emulated exactly: the product of two float32 values is exact in float64; the sum with c is
made exact with an error-free transformation (TwoSum), rounded to odd at 53 bits, then rounded once
to float32. Round-to-odd at two or more extra bits makes that second rounding correct, so the result
is the correctly rounded a*b + c, special values included.
"""

from __future__ import annotations

from codegen.common import Provenance, check_name, module_docstring, operand_text, steps
from primitives.program import Program

NUMPY_OPS = {
    "add": "{a} + {b}",
    "sub": "{a} - {b}",
    "mul": "{a} * {b}",
    "div": "{a} / {b}",
    "fma": "_fma({a}, {b}, {c})",
    "neg": "-{a}",
    "sqrt": "np.sqrt({a})",
}

_FMA32 = '''
def _fma(a, b, c):
    """Correctly rounded float32 a*b + c (one rounding), elementwise."""
    a, b, c = (np.asarray(v, dtype=np.float32) for v in (a, b, c))
    p = a.astype(np.float64) * b.astype(np.float64)  # exact: 24 + 24 bits
    c64 = c.astype(np.float64)
    s = p + c64
    bp = s - c64  # TwoSum: s + err == p + c exactly
    err = (p - bp) + (c64 - (s - bp))
    bits = s.view(np.uint64)
    even = (bits & np.uint64(1)) == 0
    toward = np.nextafter(s, np.where(err > 0, np.inf, -np.inf))
    odd = np.where((err != 0) & even & np.isfinite(s), toward, s)  # round to odd at 53 bits
    return odd.astype(np.float32)
'''

_FMA64 = """
def _fma(a, b, c):
    raise NotImplementedError("numpy has no exact float64 fma; use the C or LLVM export")
"""


def emit_numpy(
    program: Program, name: str = "kernel", provenance: Provenance | None = None, header: bool = True
) -> str:
    """A self-contained Python module defining ``NAME(x) -> y`` over numpy arrays."""
    name = check_name(name, "numpy")
    dtype = "np.float32" if program.dtype == "float32" else "np.float64"
    walk, out = steps(program)

    def literal(hex_text: str, value: float) -> str:
        return f"{dtype}(float.fromhex('{hex_text}'))"

    lines = []
    if header:
        lines += module_docstring(
            provenance,
            program,
            ["numpy export: bit-exact (fma emulated exactly with float64 and round-to-odd)."],
        )
    lines += ["", "import numpy as np", ""]
    lines.append((_FMA32 if program.dtype == "float32" else _FMA64).strip("\n"))
    lines += [
        "",
        "",
        f"def {name}(x):",
        f'    """The kernel, elementwise over an array of {program.dtype} inputs."""',
    ]
    lines.append(f"    x = np.asarray(x, dtype={dtype})")
    lines.append("    with np.errstate(all='ignore'):")
    for step in walk:
        args = [operand_text(a, program, literal) for a in step.operands]
        lines.append(
            f"        {step.name} = {NUMPY_OPS[step.op].format(**dict(zip('abc', args, strict=False)))}"
        )
    result = operand_text(out, program, literal)
    lines.append(f"        return np.broadcast_to(np.asarray({result}, dtype={dtype}), x.shape).copy()")
    return "\n".join(lines) + "\n"
