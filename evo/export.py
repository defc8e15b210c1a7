"""``evo export``: write a run's programs as kernels (C, LLVM IR, JAX, jax-ffi, numpy), optionally verified.

Verification runs the exported kernel on the run's final point set (every float32 of the domain
where feasible) and compares it bit for bit with the interpreter; the result goes into the file's
header and into the run's event log, and a mismatch makes the command exit with code 3.
Existing files are never overwritten: a numeric suffix is added instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from codegen import emit_files
from codegen.common import KernelNameError, Provenance, check_name
from codegen.emit_jaxffi import BuildError, build, include_dir
from codegen.verify import CompilerMissing, VerifyResult, verify
from evo.errors import RunError, UsageError
from evo.loading import resolve_target
from evo.run import FoundProgram, Run
from evo.runlog import RunLock, RunReader, append_event, storage_error, write_new
from primitives.program import Program
from targets.dataset import build_dataset

EXTENSIONS = {"c": "c", "llvm": "ll", "jax": "py", "numpy": "py", "jax-ffi": "py"}
# The files each export writes, as patterns of its stem (the main one, reported as ``path``, last).
FILES = {
    "c": ("{}.h", "{}.c"),
    "llvm": ("{}.ll",),
    "jax": ("{}.py",),
    "numpy": ("{}.py",),
    "jax-ffi": ("{}.h", "{}.c", "{}_ffi.cc", "lib{}.so", "{}.py"),
}
MISMATCH_EXIT = 3


@dataclass(frozen=True, slots=True)
class Exported:
    """One written kernel file and its verification results (empty if not verified)."""

    path: Path
    program_hash: str
    lang: str
    results: tuple[VerifyResult, ...]
    files: tuple[Path, ...] = ()

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)


def _fresh_stem(directory: Path, stem: str, patterns: tuple[str, ...]) -> str:
    """``stem``, or ``stem_1``, ``stem_2``... so that none of the export's files exists yet
    (still an identifier)."""
    candidate, k = stem, 1
    while any((directory / pattern.format(candidate)).exists() for pattern in patterns):
        candidate = f"{stem}_{k}"
        k += 1
    return candidate


def kernel_name(requested: str | None, target_name: str, program: Program, lang: str) -> str:
    """The user's ``--name`` if the language can use it (else a one-line usage error), or a default
    from the target."""
    if requested is not None:
        try:
            return check_name(requested, lang)
        except KernelNameError as exc:
            raise UsageError(str(exc)) from None
    stem = "".join(ch if ch.isascii() and (ch.isalnum() or ch == "_") else "_" for ch in target_name)
    default = f"{stem}_k{program.op_count()}"
    try:
        return check_name(default if default[0].isalpha() else f"k_{default}", lang)
    except KernelNameError:
        return f"kernel_k{program.op_count()}"


def _picked(run: Run, pick: str) -> list[FoundProgram]:
    if pick == "front":
        if not run.front.entries:
            raise RunError(f"{run.run_dir} has no front yet")
        return [FoundProgram(e.individual.program, e, None) for e in run.front.entries]
    return [run.lookup(pick)]


def export_run(
    run_dir: str | Path,
    pick: str = "best",
    lang: str = "c",
    out_dir: str | Path | None = None,
    verify_kernel: bool = False,
    name: str | None = None,
    limit: int | None = None,
) -> list[Exported]:
    """Export the picked program(s) of a run; see the module docstring. The run's writer lock is
    held throughout: each kernel and its event are written, or neither (a read-only run is refused
    before anything is written)."""
    _check_language(lang)
    RunReader(run_dir)
    with RunLock(run_dir):
        return _export_locked(run_dir, pick, lang, out_dir, verify_kernel, name, limit)


def _check_language(lang: str) -> None:
    """A known language whose toolchain is importable (before any run file is read)."""
    if lang not in EXTENSIONS:
        raise UsageError(f"unknown language {lang!r} ({', '.join(EXTENSIONS)})")
    if lang == "jax-ffi":
        try:
            include_dir()
        except ImportError as exc:
            raise UsageError(str(exc)) from None


def _export_locked(run_dir, pick, lang, out_dir, verify_kernel, name, limit) -> list[Exported]:
    run_dir = Path(run_dir)
    run = Run.load(run_dir)
    config, target_info = run.config, run.target
    picked = _picked(run, pick)
    names = [kernel_name(name, target_info.name or "kernel", found.program, lang) for found in picked]
    directory = Path(out_dir) if out_dir is not None else run_dir / "exports"
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{str(directory)!r} exists and is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, directory, "create") from None
    final_data = None
    written = []
    for found, kernel in zip(picked, names, strict=True):
        program = found.program
        program_hash = program.canonical_hash()
        measured = found.measured()
        provenance = Provenance(
            program_hash,
            f"{target_info.name or '?'}: {target_info.expr or '?'}",
            target_info.domain or "?",
            f"{measured.max_err:.6g} {run.setting.unit}" if measured else "not measured",
            measured.points if measured else "-",
            str(run_dir),
        )
        results: tuple[VerifyResult, ...] = ()
        if verify_kernel:
            if final_data is None:
                target = resolve_target(config.target, config.expr, config.domain, config.name)
                final_data = build_dataset(target, "final", config.dtype, config.data_seed)
            try:
                results = tuple(verify(program, lang, final_data, kernel, limit))
            except CompilerMissing as exc:
                raise UsageError(f"cannot verify the C export: {exc}") from None
            except (ImportError, BuildError) as exc:
                raise UsageError(f"cannot verify the {lang} export: {exc}") from None
            for result in results:
                provenance = provenance.with_note(f"verified: {result.summary()}")
        else:
            provenance = provenance.with_note("not verified (evo export --verify)")
        stem = _fresh_stem(directory, f"{kernel}_{program_hash[:8]}", FILES[lang])
        files = emit_files(program, lang, kernel, provenance, stem)
        paths = [directory / pattern.format(stem) for pattern in FILES[lang]]
        created: list[Path] = []
        try:
            for file_name, text in files.items():
                write_new(directory / file_name, text)
                created.append(directory / file_name)
            if lang == "jax-ffi":
                try:
                    build(directory, stem)
                except (BuildError, ImportError) as exc:
                    raise UsageError(
                        f"wrote the sources to {directory} but did not build the library ({exc}); "
                        f"the build commands are in {stem}.py"
                    ) from None
            append_event(
                run_dir,
                "export",
                lang=lang,
                file=str(paths[-1]),
                files=[str(p) for p in paths],
                hash=program_hash,
                verified=[
                    {
                        "flags": r.flags,
                        "n_points": r.n_points,
                        "mismatches": r.n_mismatches,
                        "seconds": r.seconds,
                    }
                    for r in results
                ],
            )
        except UsageError:
            raise  # the sources stay: the message tells how to build them
        except BaseException:
            for path in created:
                path.unlink(missing_ok=True)  # no kernel without its event
            raise
        written.append(Exported(paths[-1], program_hash, lang, results, tuple(paths)))
    return written
