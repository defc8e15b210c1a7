"""The jax-ffi export: the verified C kernel as an XLA FFI custom call, bit for bit inside jax.jit."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from codegen.common import KernelNameError
from codegen.emit_jaxffi import emit_jaxffi_files
from primitives.interp import evaluate
from primitives.textform import parse_text
from tests.strategies import SPECIAL_INPUTS32

EVERY_OP = parse_text("""
t1 = mul(x, x)
t2 = add(t1, 0x1.8p+0)
t3 = sub(t2, x)
t4 = div(0x1p+0, t3)
t5 = sqrt(t2)
t6 = neg(t5)
t7 = fma(t4, t6, -0x1.921fb6p+1)
t8 = fma(t7, x, t1)
return t8
""")


def _require_jax():
    if importlib.util.find_spec("jax") is None:
        pytest.skip("JAX is not installed (pip install -e '.[jax]'); the jax-ffi export needs it")


def _assert_bits(program, got, x) -> None:
    want = evaluate(program, np.ascontiguousarray(x).ravel()).reshape(x.shape)
    got = np.asarray(got, dtype=np.float32)
    assert got.shape == want.shape
    same = (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))
    assert same.all(), f"x={x[~same][:3]} got {got[~same][:3]} want {want[~same][:3]}"


def _inputs() -> np.ndarray:
    rng = np.random.default_rng(5)
    return np.concatenate(
        [
            np.array(SPECIAL_INPUTS32, dtype=np.float32),
            np.linspace(-4, 4, 5003, dtype=np.float32),
            rng.integers(0, 1 << 32, 5000, dtype=np.uint64).astype(np.uint32).view(np.float32),
        ]
    )


def test_jaxffi_sources_call_the_c_kernel():
    files = emit_jaxffi_files(EVERY_OP, "evok", None, "evok_12345678")
    assert set(files) == {"evok_12345678.h", "evok_12345678.c", "evok_12345678_ffi.cc", "evok_12345678.py"}
    handler = files["evok_12345678_ffi.cc"]
    assert (
        '#include "evok_12345678.h"' in handler
        and "evok_array(x.typed_data(), y->typed_data(), x.element_count())" in handler
    )
    assert "XLA_FFI_DEFINE_HANDLER_SYMBOL(evok_ffi," in handler
    module = files["evok_12345678.py"]
    assert "jax.ffi.ffi_call" in module and "library.evok_ffi" in module and "libevok_12345678.so" in module
    assert "-ffp-contract=off" in module  # the build command is documented next to the library
    compile(module, "evok_12345678.py", "exec")  # valid Python


def test_jaxffi_refuses_names_of_both_languages():
    for name in ("return", "def", "exp2f", "jnp", "LIBRARY", "ffi", "class", "x"):
        with pytest.raises(KernelNameError):
            emit_jaxffi_files(EVERY_OP, name, None, "stem")


def test_cli_without_jax_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    import evo.export
    from evo.cli import main

    def no_jax():
        raise ImportError("the jax-ffi export needs JAX (pip install 'evo[jax]'): No module named 'jax'")

    monkeypatch.setattr(evo.export, "include_dir", no_jax)
    assert main(["export", str(tmp_path), "--lang", "jax-ffi", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs JAX" in err[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.cc
def test_jaxffi_kernel_is_bit_exact_inside_jit():
    _require_jax()
    import jax
    import jax.numpy as jnp

    from codegen.verify import build_kernel, compare

    kernel = build_kernel(EVERY_OP, "jax-ffi", "evok")  # the module's function under jax.jit
    x = _inputs()
    _assert_bits(EVERY_OP, kernel(x), x)
    result = compare(EVERY_OP, kernel, x, "jax-ffi")
    assert result.ok and result.n_points == x.shape[0], result.summary()
    # inside a larger jitted function, on a 2-D array and under vmap (data movement only around it: XLA's own
    # arithmetic flushes subnormals to zero on CPU, the kernel's does not)
    function = kernel.__closure__[0].cell_contents  # jax.jit(NAME)
    composed = jax.jit(lambda v: jnp.flip(function(jnp.flip(v, 0)), 0))
    grid = x[: 60 * 50].reshape(60, 50)
    _assert_bits(EVERY_OP, composed(grid), grid)
    _assert_bits(EVERY_OP, jax.vmap(function)(grid), grid)


@pytest.mark.cc
def test_cli_jaxffi_export_verifies_and_imports(tmp_path, capsys):
    _require_jax()
    from evo.api import evolve
    from evo.cli import main
    from evo.report import find_program

    run = evolve(
        target="exp2",
        domain="1,1.01",
        max_evals=150,
        seed=3,
        runs_dir=str(tmp_path / "runs"),
        population_size=20,
        search_points=512,
        select_points=2048,
        signoff="none",
        max_ops=5,
    ).run_dir
    out = tmp_path / "kernels"
    assert (
        main(["export", str(run), "--lang", "jax-ffi", "--verify", "--name", "exp2k", "--out", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    assert "jax-ffi [inside jax.jit" in printed and "bit-identical to the interpreter" in printed
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 5 and any(n.startswith("lib") and n.endswith(".so") for n in names)
    module_path = next(p for p in out.iterdir() if p.suffix == ".py")
    assert "verified: jax-ffi" in module_path.read_text()
    from codegen.verify import jitted_ffi_kernel

    program, _ = find_program(run, "best")
    x = _inputs()
    _assert_bits(program, jitted_ffi_kernel(module_path, "exp2k")(x), x)
