"""Structure: one op table drives every consumer (each computes each op as the oracle does), and
the package layers only import downwards."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy

from codegen.emit_c import C_OPS
from codegen.emit_jax import JAX_OPS
from codegen.verify import build_kernel
from primitives.encode import encode
from primitives.floatbits import FLOAT32, FLOAT64
from primitives.gradient import value_and_jacobian
from primitives.interp import INTERPRETED_OPS, evaluate
from primitives.mathform import to_sympy
from primitives.ops import OP_BY_NAME, OPS
from primitives.oracle import oracle_evaluate
from primitives.program import Instr, Program, Ref, X, const_of

ROOT = Path(__file__).resolve().parents[1]
OP_NAMES = {op.name for op in OPS}

# Emitters whose code cannot run in every test environment (a C compiler, jax): their tables are
# checked for coverage here; what their code computes is verified bit for bit in test_codegen.
NOT_RUN_HERE = {"C emitter": C_OPS, "JAX emitter": JAX_OPS}
OPERANDS = (X, const_of(0.375), const_of(-1.25))  # x, then constants, as the op's arity needs
XS = [0.5, 1.5, 3.0, 2.0**-10, float(np.float32(0.1)), -2.5, 0.0]  # float32 values


def one_op(op) -> Program:
    return Program((Instr(op.name, OPERANDS[: op.arity]),), Ref(1))


def _bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    nan = np.isnan(a)
    same_bits = np.array_equal(a[~nan].view(np.uint32), b[~nan].view(np.uint32))
    return bool(np.array_equal(nan, np.isnan(b)) and same_bits)


@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
def test_every_consumer_computes_every_op(op):
    """Each op, as a one-instruction program, means the same to every consumer of the op table: the
    interpreter, the numpy and LLVM exports match the exact oracle bit for bit, the float64
    derivatives give the oracle's value and its finite-difference slopes, and the math form evaluates
    to the oracle's value."""
    program = one_op(op)
    x32 = np.array(XS, dtype=np.float32)
    exact = np.array(oracle_evaluate(program, XS, FLOAT32), dtype=np.float32)
    assert _bits_equal(evaluate(program, x32), exact), "interpreter"
    for lang in ("numpy", "llvm"):
        exported = np.asarray(build_kernel(program, lang, "k")(x32), dtype=np.float32)
        assert _bits_equal(exported, exact), lang

    positive = [x for x in XS if x > 0]  # where every op is smooth
    exact64 = oracle_evaluate(program, positive, FLOAT64)
    encoded = encode(program, share_constants=False)
    consts = encoded.consts.astype(np.float64)

    def value_and_slopes(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y, jac = np.empty(len(positive)), np.empty((len(positive), len(c)))
        value_and_jacobian(encoded.opcodes, encoded.args, c, encoded.out, np.array(positive), y, jac)
        return y, jac

    y, jac = value_and_slopes(consts)
    assert y.tolist() == exact64, "derivatives: value"
    for k in range(len(consts)):
        step = np.zeros_like(consts)
        step[k] = 1e-6
        slope = (value_and_slopes(consts + step)[0] - value_and_slopes(consts - step)[0]) / 2e-6
        np.testing.assert_allclose(jac[:, k], slope, rtol=1e-6, err_msg="derivatives: slope")

    symbol = sympy.Symbol("x")
    expression = to_sympy(program, symbol)
    for x, want in zip(positive, exact64, strict=True):
        got = float(expression.subs(symbol, sympy.Rational(x)).evalf(30))
        assert got == pytest.approx(want, rel=1e-8), "math form"  # constants are shown to 9 digits


def test_emitters_not_run_here_cover_exactly_the_op_table():
    for name, table in NOT_RUN_HERE.items():
        assert set(table) == OP_NAMES, f"{name} covers {sorted(table)}, op table has {sorted(OP_NAMES)}"


def test_opcodes_are_unique_and_match_the_interpreter():
    assert len({op.opcode for op in OPS}) == len(OPS)
    for name, opcode in INTERPRETED_OPS.items():
        assert OP_BY_NAME[name].opcode == opcode


def test_op_table_rows_are_sane():
    for op in OPS:
        assert op.arity in (1, 2, 3)
        assert op.cost > 0
        assert not (op.commutative and op.arity < 2)
        for operand in "abc"[: op.arity]:
            assert operand in op.meaning


# Allowed imports between our packages: primitives < targets < evo, primitives < codegen.
ALLOWED = {
    "primitives": {"primitives"},
    "targets": {"primitives", "targets"},
    "codegen": {"primitives", "codegen"},
    "evo": {"primitives", "targets", "codegen", "evo"},
}


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(ALLOWED)


def test_layers_only_import_downwards():
    for package, allowed in ALLOWED.items():
        for path in (ROOT / package).rglob("*.py"):
            bad = _imported_packages(path) - allowed
            assert not bad, (
                f"{path.relative_to(ROOT)} imports {sorted(bad)} (layer {package} may use {sorted(allowed)})"
            )


def _module_imports() -> dict[str, set[str]]:
    """Our modules and the modules of ours each imports (also inside functions)."""
    paths = {}
    for package in ALLOWED:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            paths[name.removesuffix(".__init__")] = path
    graph = {}
    for name, path in paths.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names if alias.name in paths)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                submodules = {f"{node.module}.{a.name}" for a in node.names} & paths.keys()
                found |= submodules
                if node.module in paths and len(submodules) < len(node.names):
                    found.add(node.module)
        graph[name] = found - {name}
    return graph


# Program.__str__ shows a program's text form, which is written by the module that parses it
ALLOWED_CYCLES = [{"primitives.program", "primitives.textform"}]


def test_modules_import_no_cycle():
    graph = _module_imports()

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            module = todo.pop()
            if module == goal:
                return True
            if module not in seen:
                seen.add(module)
                todo.extend(graph[module])
        return False

    cycles = [{a, b} for a in graph for b in graph[a] if a < b and reaches(b, a)]
    assert [c for c in cycles if c not in ALLOWED_CYCLES] == []


def test_importing_the_packages_does_no_work():
    """Importing compiles nothing and starts nothing (no numba compilation, no Ray)."""
    code = (
        "import time, sys; t = time.perf_counter();"
        "import primitives, targets, evo, codegen, evo.cli;"
        "assert 'ray' not in sys.modules, 'ray imported';"
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(out.stdout.strip()) < 5.0
