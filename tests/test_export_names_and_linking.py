"""Export names the target language cannot use are refused; the C export links from another file.

The C export is a header plus a source file.
"""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from codegen import emit_files
from codegen.common import KernelNameError, check_name
from codegen.emit_c import C_FLAG_SETS
from codegen.verify import find_compiler
from primitives.interp import evaluate
from primitives.program import Program, const_of
from primitives.textform import parse_text
from tests.strategies import EXP2_ANCHOR, SPECIAL_INPUTS32

EVERY_OP = parse_text("""
t1 = mul(x, x)
t2 = add(t1, 0x1.8p+0)
t3 = sub(t2, x)
t4 = div(0x1p+0, t3)
t5 = sqrt(t2)
t6 = neg(t5)
t7 = fma(t4, t6, -0x1.921fb6p+1)
t8 = neg(-0x1p+0)
t9 = sub(t7, t8)
return t9
""")
PROGRAMS = {"exp2_anchor": EXP2_ANCHOR, "every_op": EVERY_OP, "constant": Program((), const_of(0.75))}

BAD_NAMES = {
    "c": [
        "return",
        "float",
        "exp2f",
        "expf",
        "log2f",
        "fmaf",
        "sqrtf",
        "x",
        "t1",
        "t12",
        "main",
        "NAN",
        "size_t",
        "_Bool",
        "__k",
        "_Kernel",
        "inline",
        "restrict",
        "bool",
    ],
    "llvm": ["return", "exp2f", "x", "t3", "main"],
    "numpy": ["def", "class", "None", "float", "print", "np", "_fma", "x", "t2", "__init__", "match"],
    "jax": ["def", "lambda", "jnp", "jax", "float", "x"],
}
NOT_IDENTIFIERS = ["", "1abc", "a-b", "a b", "caf\u00e9", "k;system", "a" * 64]


@pytest.mark.parametrize("lang", sorted(BAD_NAMES))
def test_reserved_and_clashing_names_are_refused(lang):
    for name in BAD_NAMES[lang] + NOT_IDENTIFIERS:
        with pytest.raises(KernelNameError) as info:
            check_name(name, lang)
        assert "\n" not in str(info.value) and "kernel name" in str(info.value)


@pytest.mark.parametrize("lang", sorted(BAD_NAMES))
def test_ordinary_names_are_accepted(lang):
    for name in ("kernel", "exp2_k6", "my_exp2", "K2", "_private" if lang in ("numpy", "jax") else "k_"):
        assert check_name(name, lang) == name


def test_emitters_refuse_bad_names():
    for lang, name in (("c", "return"), ("numpy", "def"), ("llvm", "exp2f"), ("jax", "lambda")):
        with pytest.raises(KernelNameError):
            emit_files(EXP2_ANCHOR, lang, name, None, "stem")


# ----------------------------------------------------------------------------- linking from another file
CALLER = r"""
#include <stdio.h>
#include <stdlib.h>
#include "HEADER"

int main(int argc, char **argv)
{
    (void)argc;
    FILE *in = fopen(argv[1], "rb");
    fseek(in, 0, SEEK_END);
    size_t n = (size_t)ftell(in) / sizeof(float);
    fseek(in, 0, SEEK_SET);
    float *x = malloc(n * sizeof(float)), *y = malloc(3 * n * sizeof(float));
    if (fread(x, sizeof(float), n, in) != n) return 1;
    fclose(in);
    NAME_array(x, y, n);
    for (size_t i = 0; i < n; i++) {
        y[n + i] = NAME(x[i]);
        y[2 * n + i] = NAME_inline(x[i]);
    }
    FILE *out = fopen(argv[2], "wb");
    fwrite(y, sizeof(float), 3 * n, out);
    fclose(out);
    return 0;
}
"""


def _inputs() -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.concatenate(
        [
            np.array(SPECIAL_INPUTS32, dtype=np.float32),
            np.linspace(0, 1, 4099, dtype=np.float32),
            rng.integers(0, 1 << 32, 4096, dtype=np.uint64).astype(np.uint32).view(np.float32),
        ]
    )


def _link_and_run(
    directory, stem: str, name: str, kernel_flags, caller_flags, cxx: bool = False
) -> np.ndarray:
    cc = find_compiler()
    caller_source = CALLER.replace("HEADER", f"{stem}.h").replace("NAME", name)
    caller = directory / ("caller.cc" if cxx else "caller.c")
    caller.write_text(
        caller_source.replace("float *x = malloc", "float *x = (float *)malloc").replace(
            "*y = malloc", "*y = (float *)malloc"
        )
        if cxx
        else caller_source
    )
    kernel_object = directory / f"{stem}.o"
    subprocess.run(
        [
            cc,
            *kernel_flags,
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-c",
            "-o",
            str(kernel_object),
            str(directory / f"{stem}.c"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    compiler = "c++" if cxx else cc
    standard = "-std=c++17" if cxx else "-std=c99"
    binary = directory / "caller"
    done = subprocess.run(
        [
            compiler,
            *caller_flags,
            standard,
            "-Wall",
            "-Wextra",
            "-Werror",
            "-o",
            str(binary),
            str(caller),
            str(kernel_object),
            "-lm",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    x = _inputs()
    (directory / "x.bin").write_bytes(x.tobytes())
    subprocess.run([str(binary), str(directory / "x.bin"), str(directory / "y.bin")], check=True)
    return x, np.frombuffer((directory / "y.bin").read_bytes(), dtype=np.float32).reshape(3, -1)


def _assert_bits(program, x, ys) -> None:
    want = evaluate(program, x)
    for label, got in zip(("NAME_array", "NAME", "NAME_inline"), ys, strict=True):
        same = (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))
        assert same.all(), f"{label}: x={x[~same][:3]} got {got[~same][:3]} want {want[~same][:3]}"


@pytest.mark.cc
@pytest.mark.parametrize("which", sorted(PROGRAMS))
def test_a_separate_caller_links_against_the_header(which, tmp_path):
    program = PROGRAMS[which]
    for file_name, text in emit_files(program, "c", "evok", None, "evok_1234abcd").items():
        (tmp_path / file_name).write_text(text)
    for flags in C_FLAG_SETS:
        x, ys = _link_and_run(tmp_path, "evok_1234abcd", "evok", flags, ("-O2", "-ffp-contract=off"))
        _assert_bits(program, x, ys)


@pytest.mark.cc
def test_a_cxx_caller_links_against_the_header(tmp_path):
    if not any(
        os.access(os.path.join(p, "c++"), os.X_OK) for p in os.environ.get("PATH", "").split(os.pathsep)
    ):
        pytest.skip("no C++ compiler (c++) on this machine")
    for file_name, text in emit_files(EVERY_OP, "c", "evok", None, "evok").items():
        (tmp_path / file_name).write_text(text)
    x, ys = _link_and_run(
        tmp_path, "evok", "evok", C_FLAG_SETS[1], ("-O3", "-march=native", "-ffp-contract=off"), cxx=True
    )
    _assert_bits(EVERY_OP, x, ys)


# ----------------------------------------------------------------------------- the CLI
@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    from evo.api import evolve

    runs = tmp_path_factory.mktemp("runs")
    result = evolve(
        target="exp2",
        domain="1,1.01",
        max_evals=200,
        seed=2,
        runs_dir=str(runs),
        population_size=20,
        search_points=512,
        select_points=2048,
        signoff="best",
        max_ops=5,
    )
    return result.run_dir


def _snapshot(directory) -> dict:
    return {str(p): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "lang,name",
    [
        ("c", "return"),
        ("c", "float"),
        ("c", "exp2f"),
        ("c", "x"),
        ("c", "a-b"),
        ("numpy", "def"),
        ("numpy", "float"),
        ("llvm", "main"),
        ("jax", "jnp"),
    ],
)
def test_cli_refuses_bad_names_and_writes_nothing(small_run, tmp_path, capsys, lang, name):
    from evo.cli import main

    before = _snapshot(small_run)
    out = tmp_path / "out"
    assert (
        main(["export", str(small_run), "--lang", lang, "--name", name, "--out", str(out), "--verify"]) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("evo: error:") and repr(name) in err[0], err
    assert not out.exists()
    assert _snapshot(small_run) == before  # no kernel and no export event


@pytest.mark.cc
def test_cli_c_export_writes_a_header_that_links(small_run, tmp_path, capsys):
    from evo.cli import main
    from evo.report import find_program

    out = tmp_path / "kernels"
    assert main(["export", str(small_run), "--lang", "c", "--name", "my_exp2", "--out", str(out)]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 2 and written[0].endswith(".c") and written[1].endswith(".h")
    printed = capsys.readouterr().out
    assert all(f"wrote {out / w}" in printed for w in written)
    stem = written[0][:-2]
    assert f'#include "{stem}.h"' in (out / written[0]).read_text()
    program, _ = find_program(small_run, "best")
    x, ys = _link_and_run(out, stem, "my_exp2", C_FLAG_SETS[1], ("-O2", "-ffp-contract=off"))
    _assert_bits(program, x, ys)
    # a second export of the same program gets a fresh stem for both files, still an identifier
    assert main(["export", str(small_run), "--lang", "c", "--name", "my_exp2", "--out", str(out)]) == 0
    again = sorted(p.name for p in out.iterdir() if p.name.startswith("my_exp2") and p.stem != stem)
    assert len(again) == 2 and again[0][:-2].isidentifier()
