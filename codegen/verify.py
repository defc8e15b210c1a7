"""Verification: build an exported kernel, run it on a point set, compare it bit for bit with the interpreter.

C is compiled with the system compiler into a shared library and called through ctypes (with each
flag set of ``C_FLAG_SETS``); LLVM IR is JIT-compiled in-process; numpy and JAX modules are executed;
the jax-ffi export is built (C kernel, C++ FFI handler) and called inside ``jax.jit``.
Exhaustive point sets are streamed in chunks, so a billion inputs take seconds to a minute. NaNs
compare equal to NaNs (payloads are unspecified); everything else, signed zeros included, must have
identical bits.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codegen.emit_c import C_FLAG_SETS, emit_c_files
from codegen.emit_jax import emit_jax
from codegen.emit_llvm import jit
from codegen.emit_numpy import emit_numpy
from primitives.floatbits import from_ordinals32, ordinals32
from primitives.interp import evaluate
from primitives.program import Program

CHUNK = 1 << 22


class CompilerMissing(RuntimeError):
    """No C compiler on this machine."""


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of one verification."""

    lang: str
    flags: str
    n_points: int
    n_mismatches: int
    first_mismatch_x: float | None
    seconds: float
    points: str
    max_apart: int = 0  # largest distance, in float32 steps, between kernel and interpreter (float32 only)

    @property
    def ok(self) -> bool:
        return self.n_mismatches == 0

    def summary(self) -> str:
        verdict = (
            "bit-identical to the interpreter"
            if self.ok
            else (
                f"{self.n_mismatches} MISMATCHES (first at x = {self.first_mismatch_x!r}"
                + (f", at most {self.max_apart} float32 steps apart)" if self.max_apart else ")")
            )
        )
        flags = f" [{self.flags}]" if self.flags else ""
        return (
            f"{self.lang}{flags}: {verdict} on {self.n_points:,d} points ({self.points}), "
            f"{self.seconds:.1f} s"
        )


def find_compiler() -> str:
    for name in ("cc", "gcc", "clang"):
        path = shutil.which(name)
        if path:
            return path
    raise CompilerMissing("no C compiler found (looked for cc, gcc, clang)")


@dataclass
class CKernel:
    """A compiled C kernel loaded with ctypes (the library stays loaded while this lives)."""

    library: ctypes.CDLL
    array: Callable
    dtype: np.dtype

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=self.dtype)
        y = np.empty_like(x)
        self.array(x.ctypes.data, y.ctypes.data, x.shape[0])
        return y


def compile_c(
    source: str | dict[str, str],
    name: str,
    flags: tuple[str, ...],
    dtype: str = "float32",
    extra: tuple[str, ...] = (),
) -> CKernel:
    """Compile C source exporting ``NAME_array`` into a shared library and load it.

    ``source`` is one translation unit, or ``{file name: text}`` (headers and sources written side by
    side; the ``.c`` files are compiled).
    """
    compiler = find_compiler()
    directory = Path(tempfile.mkdtemp(prefix="evo-cc-"))
    files = source if isinstance(source, dict) else {f"{name}.c": source}
    for file_name, text in files.items():
        (directory / file_name).write_text(text)
    library_path = directory / f"lib{name}.so"
    sources = [str(directory / f) for f in files if f.endswith(".c")]
    command = [
        compiler,
        *flags,
        "-std=c99",
        "-shared",
        "-fPIC",
        "-o",
        str(library_path),
        *sources,
        *extra,
        "-lm",
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        raise RuntimeError(f"C compilation failed ({' '.join(command)}):\n{done.stderr}")
    library = ctypes.CDLL(str(library_path))
    array = getattr(library, f"{name}_array")
    array.restype = None
    array.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    shutil.rmtree(directory, ignore_errors=True)  # the loaded library stays mapped
    return CKernel(library, array, np.dtype(dtype))


def load_module(source: str, name: str) -> Callable[[np.ndarray], np.ndarray]:
    """Execute a generated numpy/JAX module and return its kernel function."""
    namespace: dict = {}
    exec(compile(source, f"<evo export {name}>", "exec"), namespace)  # our own generated code
    return namespace[name]


def chunks(data, limit: int | None = None) -> Iterator[np.ndarray]:
    """The points of a dataset (explicit, or an exhaustive ordinal range) in chunks."""
    if isinstance(data, np.ndarray):
        total = data.shape[0] if limit is None else min(limit, data.shape[0])
        for start in range(0, total, CHUNK):
            yield data[start : start + CHUNK]
        return
    points = data.points
    if points.x is not None:
        yield from chunks(points.x, limit)
        return
    total = points.size if limit is None else min(limit, points.size)
    for start in range(0, total, CHUNK):
        stop = min(total, start + CHUNK)
        yield from_ordinals32(np.arange(points.ord_lo + start, points.ord_lo + stop, dtype=np.int64))


def compare(
    program: Program,
    kernel: Callable[[np.ndarray], np.ndarray],
    data,
    lang: str,
    flags: str = "",
    limit: int | None = None,
) -> VerifyResult:
    """Run ``kernel`` and the interpreter on every point of ``data``; count bit differences."""
    started = time.perf_counter()
    uint = np.uint32 if program.dtype == "float32" else np.uint64
    n, mismatches, first, apart = 0, 0, None, 0
    for x in chunks(data, limit):
        x = np.ascontiguousarray(x, dtype=program.dtype)
        got = np.asarray(kernel(x), dtype=program.dtype)
        want = evaluate(program, x)
        differ = (got.view(uint) != want.view(uint)) & ~(np.isnan(got) & np.isnan(want))
        count = int(np.count_nonzero(differ))
        if count and first is None:
            first = float(x[np.argmax(differ)])
        if count and program.dtype == "float32":
            both = differ & ~np.isnan(got) & ~np.isnan(want)
            if both.any():
                gap = np.abs(ordinals32(got[both]) - ordinals32(want[both]))
                apart = max(apart, int(gap.max()))
        mismatches += count
        n += x.shape[0]
    label = data.label if hasattr(data, "label") else f"{n} given points"
    if limit is not None and hasattr(data, "size") and n < data.size:
        label = f"the first {n} points of {label}"
    return VerifyResult(lang, flags, n, mismatches, first, time.perf_counter() - started, label, apart)


def build_kernel(
    program: Program, lang: str, name: str, flags: tuple[str, ...] = ()
) -> Callable[[np.ndarray], np.ndarray]:
    """The exported kernel of ``lang`` as a callable over arrays."""
    if lang == "c":
        return compile_c(emit_c_files(program, name, None, name, header=False), name, flags, program.dtype)
    if lang == "llvm":
        return jit(program, name)
    if lang == "numpy":
        return load_module(emit_numpy(program, name, header=False), name)
    if lang == "jax":
        function = load_module(emit_jax(program, name, header=False), f"{name}_jit")
        return lambda x: np.asarray(function(x))
    if lang == "jax-ffi":
        return build_jaxffi(program, name)
    raise ValueError(f"unknown language {lang!r}")


def load_module_file(path: Path, name: str):
    """Import a generated module from its file (our own generated code) and return its function ``name``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"evo_export_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def jitted_ffi_kernel(module_path: Path, name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The jax-ffi module's ``NAME`` under ``jax.jit``, as a callable over numpy arrays."""
    import jax

    function = jax.jit(load_module_file(module_path, name))
    return lambda x: np.asarray(function(x))


def build_jaxffi(program: Program, name: str) -> Callable[[np.ndarray], np.ndarray]:
    """Write the jax-ffi export to a scratch directory, build its library and return it jitted."""
    import uuid

    from codegen.emit_jaxffi import build, emit_jaxffi_files

    directory = Path(tempfile.mkdtemp(prefix="evo-jaxffi-"))
    target = f"evo_verify_{uuid.uuid4().hex}"  # a fresh FFI target per build: registrations last the process
    try:
        for file_name, text in emit_jaxffi_files(
            program, name, None, name, header=False, target=target
        ).items():
            (directory / file_name).write_text(text)
        build(directory, name)
        kernel = jitted_ffi_kernel(directory / f"{name}.py", name)
        kernel(np.zeros(1, dtype=program.dtype))  # load and register now, while the library file exists
    finally:
        shutil.rmtree(directory, ignore_errors=True)  # the loaded library stays mapped
    return kernel


def verify(
    program: Program, lang: str, data, name: str = "kernel", limit: int | None = None
) -> list[VerifyResult]:
    """Verify the ``lang`` export of ``program`` on ``data`` (every C flag set for C)."""
    if lang == "c":
        return [
            compare(program, build_kernel(program, "c", name, flags), data, "c", " ".join(flags), limit)
            for flags in C_FLAG_SETS
        ]
    if lang == "jax-ffi":
        from codegen.emit_jaxffi import KERNEL_FLAGS

        flags = f"inside jax.jit; C kernel at {' '.join(KERNEL_FLAGS)}"
        return [compare(program, build_kernel(program, lang, name), data, lang, flags, limit)]
    return [compare(program, build_kernel(program, lang, name), data, lang, "", limit)]
