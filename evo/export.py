"""``evo export``: write a run's programs as kernels (C, LLVM IR, JAX, jax-ffi, numpy), optionally verified.

Verification runs the exported kernel on the run's final point set (every float32 of the domain
where feasible) and compares it bit for bit with the interpreter; the result goes into the file's
header and into the run's event log, and a mismatch makes the command exit with code 3.
Existing files are never overwritten: a numeric suffix is added instead.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from codegen import emit_files
from codegen.common import KernelNameError, Provenance, check_name
from codegen.emit_jaxffi import BuildError, build, include_dir
from codegen.verify import CompilerMissing, VerifyResult, verify
from evo.errors import RunError, UsageError
from evo.loading import resolve_target
from evo.report import find_program
from evo.runlog import RunLock, RunReader, append_event, storage_error, write_new
from primitives.jsonform import from_dict
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
    """``stem``, or ``stem_1``, ``stem_2``... so that none of the export's files exists yet (still an identifier)."""
    candidate, k = stem, 1
    while any((directory / pattern.format(candidate)).exists() for pattern in patterns):
        candidate = f"{stem}_{k}"
        k += 1
    return candidate


def kernel_name(requested: str | None, target_name: str, program: Program, lang: str) -> str:
    """The user's ``--name`` if the language can use it (else a one-line usage error), or a default from the target."""
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


def _picked(reader: RunReader, run_dir: Path, pick: str) -> list[tuple[Program, dict]]:
    if pick == "front":
        front = reader.front()
        if not front:
            raise RunError(f"{run_dir} has no front yet")
        return [(from_dict(e["program"]), e) for e in front]
    return [find_program(run_dir, pick)]


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
    reader = RunReader(run_dir)
    config = reader.config
    meta = reader.meta
    target_info = meta.get("target") or {}
    picked = _picked(reader, run_dir, pick)
    names = [kernel_name(name, str(target_info.get("name", "kernel")), program, lang) for program, _ in picked]
    directory = Path(out_dir) if out_dir is not None else run_dir / "exports"
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{str(directory)!r} exists and is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, directory, "create") from None
    final_data = None
    written = []
    for (program, entry), kernel in zip(picked, names, strict=True):
        program_hash = program.canonical_hash()
        measured = entry.get("final") or entry.get("select") or entry.get("score")
        unit = "ULP" if config.mode == "float32" else "relative"
        provenance = Provenance(
            program_hash,
            f"{target_info.get('name', '?')}: {target_info.get('expr', '?')}",
            target_info.get("domain", "?"),
            f"{float(measured['max_err']):.6g} {unit}" if measured else "not measured",
            measured["points"] if measured else "-",
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
                    raise UsageError(f"wrote the sources to {directory} but did not build the library ({exc}); "
                                     f"the build commands are in {stem}.py") from None
            append_event(
                run_dir, "export", lang=lang, file=str(paths[-1]), files=[str(p) for p in paths], hash=program_hash,
                verified=[{"flags": r.flags, "n_points": r.n_points, "mismatches": r.n_mismatches, "seconds": r.seconds}
                          for r in results],
            )
        except UsageError:
            raise  # the sources stay: the message tells how to build them
        except BaseException:
            for path in created:
                path.unlink(missing_ok=True)  # no kernel without its event
            raise
        written.append(Exported(paths[-1], program_hash, lang, results, tuple(paths)))
    return written


def register(commands) -> None:
    """Add the ``export`` subcommand to the ``evo`` argument parser."""
    parser = commands.add_parser("export", help="write a run's programs as C, LLVM IR, JAX, jax-ffi or numpy kernels")
    parser.add_argument("run", help="run directory")
    parser.add_argument("--pick", default="best", help="best (default), front, or a program hash (prefix)")
    parser.add_argument("--lang", default="c", choices=tuple(EXTENSIONS), help="output language (default c)")
    parser.add_argument("--out", help="output directory (default RUN/exports)")
    parser.add_argument("--verify", action="store_true", help="check the kernel bit for bit on the final set (exit 3 on a mismatch)")
    parser.add_argument("--name", help="kernel function name")
    parser.set_defaults(handler=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    exported = export_run(args.run, args.pick, args.lang, args.out, args.verify, args.name)
    status = 0
    for item in exported:
        for path in item.files or (item.path,):
            print(f"wrote {path}")
        for result in item.results:
            print(f"  {result.summary()}")
            if not result.ok:
                status = MISMATCH_EXIT
    if status:
        print("evo: error: the exported kernel does not compute what was scored", flush=True)
    return status


FULLRANGE_FUNCTIONS = ("exp2f", "expf", "log2f")


def register_fullrange(commands) -> None:
    """Add the ``fullrange`` subcommand: build exp2f/expf/log2f around a kernel and check all 2^32 inputs."""
    parser = commands.add_parser("fullrange", help="wrap a kernel into a full-range exp2f/expf/log2f and check every float32")
    parser.add_argument("function", choices=FULLRANGE_FUNCTIONS)
    parser.add_argument("--kernel", help="kernel program (file, RUN or RUN:HASH, or anchor:... spec); default: the shipped kernel of --tier")
    parser.add_argument("--tier", type=int, choices=(1, 2, 4), default=1, help="accuracy tier in ULPs of the shipped kernel (default 1)")
    parser.add_argument("--out", help="also write the C source to this file (never overwritten)")
    parser.add_argument("--no-check", action="store_true", help="only write the source")
    parser.set_defaults(handler=_cmd_fullrange)


def _cmd_fullrange(args: argparse.Namespace) -> int:
    from codegen.exhaustive import check
    from codegen.fullrange import full_range_c
    from codegen.fullrange_kernels import tier
    from evo.loading import load_program

    kernel = tier(args.function, args.tier).kernel if args.kernel is None else load_program(args.kernel)
    if args.out:
        out = Path(args.out)
        if out.exists():
            raise UsageError(f"{args.out!r} exists; not overwriting it")
        out.write_text(full_range_c(args.function, kernel).source)
        print(f"wrote {out}")
    if args.no_check:
        return 0
    try:
        report = check(args.function, kernel)
    except CompilerMissing as exc:
        raise UsageError(f"the exhaustive check needs a C compiler: {exc}") from None
    print(report.text())
    return 0 if report.ok else MISMATCH_EXIT
