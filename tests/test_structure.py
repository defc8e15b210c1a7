"""Structure: one op table drives every consumer, and the package layers only import downwards."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from codegen.emit_c import C_OPS
from codegen.emit_jax import JAX_OPS
from codegen.emit_llvm import LLVM_OPS
from codegen.emit_numpy import NUMPY_OPS
from primitives.gradient import DIFFERENTIATED_OPS
from primitives.interp import INTERPRETED_OPS
from primitives.mathform import SYMPY_OPS
from primitives.ops import OP_BY_NAME, OPS
from primitives.oracle import EXACT_OPS

ROOT = Path(__file__).resolve().parents[1]
OP_NAMES = {op.name for op in OPS}

# Every table keyed by op name; emitters add theirs here as they land.
CONSUMERS = {
    "interpreter": INTERPRETED_OPS,
    "oracle": EXACT_OPS,
    "math form": SYMPY_OPS,
    "derivatives": DIFFERENTIATED_OPS,
    "C emitter": C_OPS,
    "LLVM emitter": LLVM_OPS,
    "numpy emitter": NUMPY_OPS,
    "JAX emitter": JAX_OPS,
}


def test_every_consumer_covers_exactly_the_op_table():
    for name, table in CONSUMERS.items():
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
            assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)} (layer {package} may use {sorted(allowed)})"


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
