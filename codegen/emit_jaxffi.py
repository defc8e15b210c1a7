"""jax-ffi kernels: the verified C kernel as an XLA FFI custom call, so JAX computes exactly what was scored.

A pure ``jnp`` export cannot be bit-exact (XLA contracts multiply-adds on CPU). Here XLA calls the C
array function itself: the export is the C header and source, a C++ FFI handler (XLA's FFI headers,
from ``jax.ffi.include_dir()``) that runs ``NAME_array`` over the input buffer, a shared library
built from both, and a Python module whose ``NAME(x)`` is an ``jax.ffi.ffi_call`` usable inside
``jax.jit`` (CPU only). The C source is compiled with one of the flag sets that verification checks.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

from codegen.common import Provenance, check_name, module_docstring, provenance_lines
from codegen.emit_c import C_FLAG_SETS, emit_c_files
from primitives.program import Program

KERNEL_FLAGS = C_FLAG_SETS[1]  # -O3 -march=native -ffp-contract=off -fno-math-errno: verified bit for bit
FFI_TYPES = {"float32": ("ffi::F32", "jnp.float32"), "float64": ("ffi::F64", "jnp.float64")}


# XLA runs CPU computations, custom calls included, with subnormal results flushed to zero (MXCSR
# FTZ/DAZ on x86, FPCR.FZ on Arm); the kernel was scored and verified with IEEE subnormals, so the
# handler restores them for the duration of the call.
IEEE_SUBNORMALS = r"""
#include <cstdint>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
struct IeeeSubnormals {  // clear FTZ (bit 15) and DAZ (bit 6) of MXCSR for this scope
    unsigned int saved = _mm_getcsr();
    IeeeSubnormals() { _mm_setcsr(saved & ~0x8040u); }
    ~IeeeSubnormals() { _mm_setcsr(saved); }
};
#elif defined(__aarch64__)
struct IeeeSubnormals {  // clear FZ (bit 24) of FPCR for this scope
    std::uint64_t saved;
    IeeeSubnormals() { __asm__ volatile("mrs %0, fpcr" : "=r"(saved)); std::uint64_t v = saved & ~(std::uint64_t(1) << 24); __asm__ volatile("msr fpcr, %0" : : "r"(v)); }
    ~IeeeSubnormals() { __asm__ volatile("msr fpcr, %0" : : "r"(saved)); }
};
#else
struct IeeeSubnormals {};
#endif""".strip("\n").splitlines()  # noqa: E501 -- emitted C++ kept byte-identical


class BuildError(RuntimeError):
    """The jax-ffi library could not be built (no compiler, or compilation failed)."""


def library_name(stem: str) -> str:
    return f"lib{stem}.so"


def build_commands(stem: str, include_dir: str, cc: str = "cc", cxx: str = "c++") -> list[list[str]]:
    """The commands that build ``libSTEM.so`` in the export's directory (run there)."""
    return [
        [cc, *KERNEL_FLAGS, "-std=c99", "-fPIC", "-c", f"{stem}.c", "-o", f"{stem}.o"],
        [
            cxx,
            "-std=c++17",
            "-O2",
            "-fPIC",
            "-shared",
            "-I",
            include_dir,
            f"{stem}_ffi.cc",
            f"{stem}.o",
            "-o",
            library_name(stem),
            "-lm",
        ],
    ]


def emit_ffi_handler(
    program: Program, name: str, stem: str, provenance: Provenance | None = None, header: bool = True
) -> str:
    """``STEM_ffi.cc``: the XLA FFI handler ``NAME_ffi`` that calls ``NAME_array`` on the whole buffer."""
    name = check_name(name, "jax-ffi")
    ffi_type, _ = FFI_TYPES[program.dtype]
    lines = (
        [
            "/*",
            *(f" * {line}" if line else " *" for line in provenance_lines(provenance, program)),
            " *",
            f" * XLA FFI handler {name}_ffi: runs the C kernel {name}_array over the input buffer.",
            " */",
        ]
        if header
        else []
    )
    lines += [
        '#include "xla/ffi/api/ffi.h"',
        f'#include "{stem}.h"',
        "",
        *IEEE_SUBNORMALS,
        "",
        "namespace ffi = xla::ffi;",
        "",
        f"static ffi::Error {name}_ffi_impl(ffi::Buffer<{ffi_type}> x, ffi::ResultBuffer<{ffi_type}> y)",
        "{",
        "    const IeeeSubnormals ieee;",
        f"    {name}_array(x.typed_data(), y->typed_data(), x.element_count());",
        "    return ffi::Error::Success();",
        "}",
        "",
        f"XLA_FFI_DEFINE_HANDLER_SYMBOL({name}_ffi, {name}_ffi_impl,",
        "                              "
        f"ffi::Ffi::Bind().Arg<ffi::Buffer<{ffi_type}>>().Ret<ffi::Buffer<{ffi_type}>>());",
        "",
    ]
    return "\n".join(lines)


def emit_ffi_module(
    program: Program,
    name: str,
    stem: str,
    provenance: Provenance | None = None,
    header: bool = True,
    target: str | None = None,
) -> str:
    """``STEM.py``: ``NAME(x)``, the FFI call of ``libSTEM.so`` (loaded and registered on first use)."""
    name = check_name(name, "jax-ffi")
    _, jnp_type = FFI_TYPES[program.dtype]
    target = target or f"evo_{stem}"
    include = "\"$(python3 -c 'import jax.ffi; print(jax.ffi.include_dir())')\""
    commands = [
        shlex.join(c).replace("XLA_FFI_INCLUDE", include) for c in build_commands(stem, "XLA_FFI_INCLUDE")
    ]
    lines = (
        module_docstring(
            provenance,
            program,
            [
                f"jax-ffi export: {name}(x) runs the verified C kernel {name}_array ({stem}.c) as an XLA FFI "
                "custom call, so",
                "inside jax.jit it computes the interpreter's bits exactly (CPU). The library next to this "
                "file was",
                "built in this directory with:",
                *(f"    {command}" for command in commands),
            ],
        )
        if header
        else []
    )
    lines += [
        "",
        "import ctypes",
        "import functools",
        "import pathlib",
        "",
        "import jax",
        "import jax.numpy as jnp",
        "",
        f'LIBRARY = pathlib.Path(__file__).resolve().with_name("{library_name(stem)}")',
        f'TARGET = "{target}"',
        "",
        "",
        "@functools.cache",
        "def _registered():",
        '    """Load the library and register its FFI target, once per process '
        '(on first use, not at import)."""',
        "    library = ctypes.cdll.LoadLibrary(str(LIBRARY))",
        f'    jax.ffi.register_ffi_target(TARGET, jax.ffi.pycapsule(library.{name}_ffi), platform="cpu")',
        "    return TARGET",
        "",
        "",
        f"def {name}(x):",
        f'    """The kernel over a {program.dtype} array of any shape (elementwise); '
        'usable inside jax.jit."""',
        f"    x = jnp.asarray(x, dtype={jnp_type})",
        "    call = jax.ffi.ffi_call(_registered(), jax.ShapeDtypeStruct(x.shape, x.dtype), "
        'vmap_method="broadcast_all")',
        "    return call(x)",
        "",
    ]
    return "\n".join(lines)


def emit_jaxffi_files(
    program: Program,
    name: str,
    provenance: Provenance | None,
    stem: str,
    header: bool = True,
    target: str | None = None,
) -> dict[str, str]:
    """The source files of the export: ``STEM.h``, ``STEM.c``, ``STEM_ffi.cc`` and ``STEM.py``."""
    name = check_name(name, "jax-ffi")
    files = emit_c_files(program, name, provenance, stem, header)
    files[f"{stem}_ffi.cc"] = emit_ffi_handler(program, name, stem, provenance, header)
    files[f"{stem}.py"] = emit_ffi_module(program, name, stem, provenance, header, target)
    return files


def include_dir() -> str:
    """XLA's FFI headers, shipped with jaxlib (ImportError when JAX is not installed)."""
    try:
        import jax.ffi
    except ImportError as exc:
        raise ImportError(f"the jax-ffi export needs JAX (pip install 'evo[jax]'): {exc}") from None
    return jax.ffi.include_dir()


def build(directory: Path, stem: str) -> Path:
    """Build ``libSTEM.so`` from the export's sources in ``directory``; the library's path."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    cxx = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if cc is None or cxx is None:
        raise BuildError(
            "the jax-ffi export needs a C and a C++ compiler (looked for cc/gcc/clang and c++/g++/clang++)"
        )
    for command in build_commands(stem, include_dir(), cc, cxx):
        done = subprocess.run(command, cwd=directory, capture_output=True, text=True)
        if done.returncode != 0:
            first = next(
                (line for line in done.stderr.splitlines() if "error" in line), done.stderr.strip()[:200]
            )
            raise BuildError(f"building the jax-ffi library failed ({shlex.join(command)}): {first}")
    (directory / f"{stem}.o").unlink(missing_ok=True)
    return directory / library_name(stem)


def fullrange_jaxffi_files(full, stem: str, target: str | None = None) -> dict[str, str]:
    """The jax-ffi export of a full-range function (``codegen.fullrange.FullRange``): its C source as
    ``STEM.c``, a header declaring it, the FFI handler around ``NAME_array`` and the Python module."""
    name = full.name
    header = "\n".join(
        [
            f"/* {name}: full-range float32 function built by evo (see {stem}.c). Compile with "
            "-ffp-contract=off. */",
            f"#ifndef {stem.upper()}_H",
            f"#define {stem.upper()}_H",
            "#include <stddef.h>",
            "#ifdef __cplusplus",
            'extern "C" {',
            "#endif",
            f"float {name}(float x);",
            f"void {name}_array(const float *x, float *y, size_t n);",
            "#ifdef __cplusplus",
            "}",
            "#endif",
            "#endif",
            "",
        ]
    )
    return {
        f"{stem}.h": header,
        f"{stem}.c": full.source,
        f"{stem}_ffi.cc": emit_ffi_handler(full.kernel, name, stem, header=False),
        f"{stem}.py": emit_ffi_module(full.kernel, name, stem, header=False, target=target),
    }


def build_fullrange(full, directory: Path, target: str | None = None):
    """Write and build the jax-ffi export of ``full`` in ``directory``; its ``NAME`` under ``jax.jit``.

    BuildError without a C and a C++ compiler; ImportError without JAX.
    """
    import importlib.util

    import jax

    stem = full.name
    for file_name, text in fullrange_jaxffi_files(full, stem, target).items():
        (directory / file_name).write_text(text)
    build(directory, stem)
    spec = importlib.util.spec_from_file_location(f"evo_fullrange_{stem}", directory / f"{stem}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # our own generated module
    return jax.jit(getattr(module, full.name))
