"""C99 kernels: a header and a source with a scalar function and an array function that compilers vectorise.

One statement per instruction, in program order; fma is ``fmaf`` (one rounding); constants are
exact hex floats. Contraction must be off (GCC fuses ``a*b + c`` by default in GNU mode), which the
header and a ``#pragma STDC FP_CONTRACT OFF`` say; every statement holds a single operation anyway.
"""

from __future__ import annotations

from codegen.common import Provenance, check_name, identifier, operand_text, provenance_lines, steps
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


# GCC does not implement the standard pragma (it warns under -Wall and relies on -ffp-contract=off);
# Clang and other compilers honour it.
CONTRACT_PRAGMA = ["#if defined(__clang__) || !defined(__GNUC__)", "#pragma STDC FP_CONTRACT OFF", "#endif"]


def c_type(program: Program) -> tuple[str, str]:
    """(C type, libm suffix) of the program's format."""
    return ("float", "f") if program.dtype == "float32" else ("double", "")


def c_function(
    program: Program, name: str, storage: str = "static inline", contract_pragma: bool = False
) -> list[str]:
    """The scalar C function ``NAME(x)`` alone (one statement per instruction).

    ``contract_pragma`` puts ``#pragma STDC FP_CONTRACT OFF`` inside the body, where it holds for
    that function only (a header must not change the contraction of its includer's own code).
    """
    ctype, suffix = c_type(program)
    walk, out = steps(program)

    def literal(hex_text: str, value: float) -> str:
        return f"{hex_text}{suffix}" if ctype == "float" else hex_text

    lines = [f"{storage} {ctype} {identifier(name)}({ctype} x)", "{"]
    if contract_pragma:
        lines += CONTRACT_PRAGMA
    if not (out == Ref(0) or any(a == Ref(0) for step in walk for a in step.operands)):
        lines.append("    (void)x;")
    for step in walk:
        args = [operand_text(a, program, literal) for a in step.operands]
        if step.op == "neg" and args[0].startswith("-"):
            args[0] = f"({args[0]})"  # "--c" would be a decrement
        expression = C_OPS[step.op].format(f=suffix, **dict(zip("abc", args, strict=False)))
        lines.append(f"    const {ctype} {step.name} = {expression};")
    lines += [f"    return {operand_text(out, program, literal)};", "}"]
    return lines


def _comment(provenance: Provenance | None, program: Program, extra: list[str]) -> list[str]:
    lines = ["/*"]
    lines.extend(
        f" * {line}" if line else " *" for line in [*provenance_lines(provenance, program), "", *extra]
    )
    return [*lines, " */"]


COMPILE_NOTE = [
    f"Compile with {C_FLAGS_REQUIRED} and without -ffast-math: GCC contracts a*b+c into an FMA by default",
    "in GNU mode, which would change the rounding. `evo export --verify` checks it bit for bit with:",
    *(f"  {' '.join(flags)}" for flags in C_FLAG_SETS),
]


def emit_c_header(
    program: Program,
    name: str = "kernel",
    provenance: Provenance | None = None,
    header: bool = True,
    guard: str | None = None,
) -> str:
    """``NAME.h``: the declarations of ``NAME`` and ``NAME_array``, and ``static inline NAME_inline``."""
    name = check_name(name, "c")
    ctype, _ = c_type(program)
    guard = guard or f"EVO_{name}_H"
    lines = (
        _comment(
            provenance,
            program,
            [
                f"{name}(x) and {name}_array(x, y, n) (x and y must not overlap) are defined in the .c file "
                "next to",
                f"this header; link it. {name}_inline is the same function for inlining into your own code: "
                "it is",
                "compiled with your flags, so the bits are the verified ones only under the flags below.",
                "",
                *COMPILE_NOTE,
            ],
        )
        if header
        else []
    )
    lines += [
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        "#include <math.h>",
        "#include <stddef.h>",
        "",
        "#ifdef __cplusplus",
        'extern "C" {',
        "#endif",
        "",
        f"{ctype} {name}({ctype} x);",
        f"void {name}_array(const {ctype} *x, {ctype} *y, size_t n);",
        "",
        "#ifdef __cplusplus",
        "}",
        "#endif",
        "",
        *c_function(program, f"{name}_inline", contract_pragma=True),
        "",
        f"#endif /* {guard} */",
        "",
    ]
    return "\n".join(lines)


def emit_c(
    program: Program,
    name: str = "kernel",
    provenance: Provenance | None = None,
    header: bool = True,
    header_file: str | None = None,
) -> str:
    """``NAME.c``: the external ``NAME`` and ``NAME_array``, built on ``NAME_inline`` of ``header_file``."""
    name = check_name(name, "c")
    ctype, _ = c_type(program)
    header_file = header_file or f"{name}.h"
    lines = _comment(provenance, program, COMPILE_NOTE) if header else []
    lines += [
        f'#include "{header_file}"',
        "",
        *CONTRACT_PRAGMA,
        "",
        f"{ctype} {name}({ctype} x)",
        "{",
        f"    return {name}_inline(x);",
        "}",
        "",
        f"void {name}_array(const {ctype} *restrict x, {ctype} *restrict y, size_t n)",
        "{",
        "    for (size_t i = 0; i < n; i++)",
        f"        y[i] = {name}_inline(x[i]);",
        "}",
        "",
    ]
    return "\n".join(lines)


def emit_c_files(
    program: Program, name: str, provenance: Provenance | None, stem: str, header: bool = True
) -> dict[str, str]:
    """The export as files: ``{STEM.h: header, STEM.c: source}`` (the source includes the header)."""
    return {
        f"{stem}.h": emit_c_header(program, name, provenance, header, guard=f"EVO_{stem}_H"),
        f"{stem}.c": emit_c(program, name, provenance, header, header_file=f"{stem}.h"),
    }
