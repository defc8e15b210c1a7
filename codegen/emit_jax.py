"""JAX kernels: float32 ``jnp`` code, jit-friendly, with no Python scalars.

XLA has no explicit fused multiply-add, so fma is written ``a * b + c``. XLA decides the rounding of
the compiled code, not the program: on CPU it contracts *any* multiply feeding an add into an FMA
(also where the program rounds in between) and rewrites division by a constant into multiplication
by its reciprocal; GPU and TPU backends have rules of their own. A JAX export is therefore not
bit-exact: the header says so, and verification reports how many outputs differ and by how many
float32 steps at most. Ship the C, LLVM, numpy or jax-ffi export where the bits matter.
"""

from __future__ import annotations

from codegen.common import Provenance, check_name, module_docstring, operand_text, steps
from primitives.program import Program

JAX_OPS = {
    "add": "{a} + {b}",
    "sub": "{a} - {b}",
    "mul": "{a} * {b}",
    "div": "{a} / {b}",
    "fma": "{a} * {b} + {c}",
    "neg": "-{a}",
    "sqrt": "jnp.sqrt({a})",
}


def emit_jax(
    program: Program, name: str = "kernel", provenance: Provenance | None = None, header: bool = True
) -> str:
    """A Python module defining ``NAME(x)`` with jax.numpy (jit it yourself, or use ``NAME_jit``)."""
    name = check_name(name, "jax")
    dtype = "jnp.float32" if program.dtype == "float32" else "jnp.float64"
    walk, out = steps(program)

    def literal(hex_text: str, value: float) -> str:
        return f"{dtype}(float.fromhex('{hex_text}'))"

    lines = []
    if header:
        lines += module_docstring(
            provenance,
            program,
            [
                "JAX export: XLA has no explicit FMA; fma is written a * b + c. XLA chooses the rounding of "
                "the",
                "compiled code (on CPU it fuses any a * b + c and turns division by a constant into a",
                "multiplication), so results can differ from the verified C/LLVM/numpy kernels in the last "
                "bits.",
            ],
        )
    lines += [
        "",
        "import jax",
        "import jax.numpy as jnp",
        "",
        "",
        f"def {name}(x):",
        f'    """The kernel over a {program.dtype} array."""',
    ]
    lines.append(f"    x = jnp.asarray(x, dtype={dtype})")
    for step in walk:
        args = [operand_text(a, program, literal) for a in step.operands]
        lines.append(f"    {step.name} = {JAX_OPS[step.op].format(**dict(zip('abc', args, strict=False)))}")
    lines.append(
        f"    return jnp.broadcast_to({operand_text(out, program, literal)}, x.shape).astype({dtype})"
    )
    lines += ["", "", f"{name}_jit = jax.jit({name})", ""]
    return "\n".join(lines)
