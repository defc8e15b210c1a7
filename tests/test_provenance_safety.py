"""Provenance text from run files is data: it can never leave the comment or docstring of an export."""

import ast
import shutil
import subprocess

import pytest

from codegen import emit, emit_files
from codegen.common import Provenance
from primitives.textform import parse_text

HOSTILE = 'exp2: 2**x */ int evil = 1; /* \n""" ; import os; os.system("touch pwned") #\r\\x41 ; evil\x00'


def _program():
    return parse_text("t1 = fma(x, 0x1.62e43p-1, 0x1p+0)\nreturn t1")


def _provenance():
    return Provenance("0" * 16, HOSTILE, HOSTILE, HOSTILE, HOSTILE, HOSTILE)


def test_numpy_export_with_hostile_provenance_parses_to_the_same_code():
    code = emit(_program(), "numpy", "kern", _provenance())
    tree = ast.parse(code)  # a docstring escape or a closing quote would be a syntax error or new code
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert "os" not in names and "evil" not in names
    clean = emit(_program(), "numpy", "kern", Provenance("0" * 16, "t", "d", "e", "p", "r"))
    body = [ast.dump(node) for node in tree.body[1:]]
    assert body == [ast.dump(node) for node in ast.parse(clean).body[1:]]


def test_llvm_export_comments_hold_no_line_break():
    code = emit(_program(), "llvm", "kern", _provenance())
    header = [line for line in code.splitlines() if "evil" in line]
    assert header and all(line.startswith(";") for line in header)


@pytest.mark.cc
def test_c_export_with_hostile_provenance_has_no_extra_symbol(tmp_path):
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler on this machine")
    for file_name, text in emit_files(_program(), "c", "kern", _provenance(), "kern").items():
        (tmp_path / file_name).write_text(text)
    source = tmp_path / "kern.c"
    obj = tmp_path / "kern.o"
    subprocess.run([compiler, "-std=c99", "-c", str(source), "-o", str(obj)], check=True, capture_output=True)
    symbols = subprocess.run(["nm", str(obj)], check=True, capture_output=True, text=True).stdout
    assert "evil" not in symbols and "kern" in symbols
