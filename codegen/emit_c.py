"""C99 kernels: a scalar function and an array function that compilers auto-vectorise.

One statement per instruction, in program order; fma is ``fmaf`` (one rounding); constants are
exact hex floats. Contraction must be off (GCC fuses ``a*b + c`` by default in GNU mode), which the
header and a ``#pragma STDC FP_CONTRACT OFF`` say; every statement holds a single operation anyway.
"""

from __future__ import annotations

from codegen.common import Provenance, identifier, operand_text, provenance_lines, steps
from primitives.program import Program, Ref

C_FLAGS_REQUIRED = "-ffp-contract=off"
C_FLAG_SETS = (
    ("-O2", "-ffp-contract=off"),
    ("-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno"),
    ("-O3", "-march=native", "-mprefer-vector-width=512", "-ffp-contract=off", "-fno-math-errno"),
)

# Spelling of every op, keyed by the op table (a test checks coverage). {f} is the float suffix.
C_OPS = {
    "add": "{a} + {b}",
    "sub": "{a} - {b}",
    "mul": "{a} * {b}",
    "div": "{a} / {b}",
    "fma": "fma{f}({a}, {b}, {c})",
    "neg": "-{a}",
    "sqrt": "sqrt{f}({a})",
}


def c_type(program: Program) -> tuple[str, str]:
    """(C type, libm suffix) of the program's format."""
    return ("float", "f") if program.dtype == "float32" else ("double", "")


def c_function(program: Program, name: str, storage: str = "static inline") -> list[str]:
    """The scalar C function ``NAME(x)`` alone (one statement per instruction)."""
    ctype, suffix = c_type(program)
    walk, out = steps(program)

    def literal(hex_text: str, value: float) -> str:
        return f"{hex_text}{suffix}" if ctype == "float" else hex_text

    lines = [f"{storage} {ctype} {identifier(name)}({ctype} x)", "{"]
    if not (out == Ref(0) or any(a == Ref(0) for step in walk for a in step.operands)):
        lines.append("    (void)x;")
    for step in walk:
        args = [operand_text(a, program, literal) for a in step.operands]
        expression = C_OPS[step.op].format(f=suffix, **dict(zip("abc", args, strict=False)))
        lines.append(f"    const {ctype} {step.name} = {expression};")
    lines += [f"    return {operand_text(out, program, literal)};", "}"]
    return lines


def emit_c(program: Program, name: str = "kernel", provenance: Provenance | None = None, header: bool = True) -> str:
    """A self-contained C99 translation unit with ``NAME`` and ``NAME_array``."""
    name = identifier(name)
    ctype, _ = c_type(program)
    lines = []
    if header:
        lines.append("/*")
        lines.extend(f" * {line}" if line else " *" for line in provenance_lines(provenance, program))
        lines += [
            " *",
            f" * Compile with {C_FLAGS_REQUIRED} (GCC contracts a*b+c into an FMA by default in GNU mode,",
            " * which would change the rounding). `evo export --verify` checks it bit for bit with: "
            + "; ".join(" ".join(flags) for flags in C_FLAG_SETS) + ".",
            " */",
        ]
    lines += [
        "#include <math.h>",
        "#include <stddef.h>",
        "",
        "#pragma STDC FP_CONTRACT OFF",
        "",
        *c_function(program, name),
        "",
    ]
    lines += [
        f"void {name}_array(const {ctype} *restrict x, {ctype} *restrict y, size_t n)",
        "{",
        "    for (size_t i = 0; i < n; i++)",
        f"        y[i] = {name}(x[i]);",
        "}",
        "",
    ]
    return "\n".join(lines)
