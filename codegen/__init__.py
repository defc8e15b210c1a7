"""How a program becomes source code: C, LLVM IR, JAX, jax-ffi and numpy kernels.

Every kernel computes what was scored.
"""

from __future__ import annotations

from codegen.common import Provenance


def emit(program, lang: str, name: str = "kernel", provenance: Provenance | None = None) -> str:
    """Source text of ``program`` in ``lang`` ("c", "llvm", "jax" or "numpy")."""
    from codegen.emit_c import emit_c
    from codegen.emit_jax import emit_jax
    from codegen.emit_llvm import emit_llvm
    from codegen.emit_numpy import emit_numpy

    emitters = {"c": emit_c, "llvm": emit_llvm, "jax": emit_jax, "numpy": emit_numpy}
    if lang not in emitters:
        raise ValueError(f"unknown language {lang!r} (c, llvm, jax, numpy)")
    return emitters[lang](program, name, provenance)


def emit_files(program, lang: str, name: str, provenance: Provenance | None, stem: str) -> dict[str, str]:
    """The files of the ``lang`` export, ``{file name: text}``, all named after ``stem``.

    C is a header and a source (``STEM.h``, ``STEM.c``); jax-ffi adds a C++ FFI handler and a Python
    module to them (its library is built from these by ``codegen.emit_jaxffi.build``); the others are
    one file.
    """
    from codegen.emit_c import emit_c_files
    from codegen.emit_jaxffi import emit_jaxffi_files

    if lang == "c":
        return emit_c_files(program, name, provenance, stem)
    if lang == "jax-ffi":
        return emit_jaxffi_files(program, name, provenance, stem)
    extension = {"llvm": "ll", "jax": "py", "numpy": "py"}.get(lang)
    if extension is None:
        raise ValueError(f"unknown language {lang!r} (c, llvm, jax, jax-ffi, numpy)")
    return {f"{stem}.{extension}": emit(program, lang, name, provenance)}


__all__ = ["Provenance", "emit", "emit_files"]
