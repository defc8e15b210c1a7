"""The safe expression language (defect 1 of the hardening list: code execution through expressions).

Every payload below was evaluated by sympy's ``sympify`` before: ``--expr``, ``--domain`` (built-in
targets too), TOML ``expr``/``domain`` and a stored ``config.json`` all reached it. Each must now be
refused with a one-line error, quickly, and without its side effect (a sentinel file the payload
would create), through the API and the CLI (score, evolve, TOML, resume and export of a tampered run).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from evo.cli import main
from targets.expr import FUNCTIONS, MAX_TEXT, ExpressionError, X, parse_constant_expression, parse_expression
from targets.registry import expression_target, get_target
from targets.target import TargetError

SENTINEL = "evo_pwned_sentinel"


def payloads(sentinel: Path) -> list[str]:
    s = str(sentinel)
    touch = f"__import__('os').system('touch {s}')"
    return [
        f"x + 0*{touch}",
        touch,
        f"x + 0*len(open('{s}', 'w').name)",
        f"(lambda: {touch})()",
        "x + (lambda y: y)(1)",
        "x.__class__.__mro__[1].__subclasses__()",
        "().__class__.__base__.__subclasses__()",
        "exp.__globals__",
        "__builtins__",
        "x.__dict__",
        f"x + 0*[c for c in ({touch},)][0]",
        f"x + 0*sum(c for c in ({touch},))",
        f"f'{{{touch}}}'",
        f"(y := {touch})",
        f"x if {touch} else x",
        "x[0]",
        "import os",
        f"exec(\"open('{s}', 'w')\")",
        "eval('1')",
        "getattr(x, 'y')",
        "Symbol('y') + x",
        "Function('f')(x)",
        "x + 0*9**9**9",
        "x + 10**10**10",
        "2**(2**(2**(2**(2**x))))**9**9",
        "x + 1e999999999",
        "x + " + "9" * 500,
        "x + " + "9" * (MAX_TEXT + 10),
        "(" * 100_000 + "x" + ")" * 100_000,
        "-" * 300 + "x",
        "sin(" * 150 + "x" + ")" * 150,
        "+".join(["x"] * 700),
        "x\n+ 1",
        "x + \x00",
        "\uff58 + 1",
        "0x10 + x",
        "1_000 + x",
        "1j*x",
        "x @ x",
        "x // 2",
        "x % 2",
        "x < 1",
        "x and 1",
        "not x",
        "~x",
        "x << 1",
        "x | 1",
        "sin(x, y=1)",
        "sin(*x)",
        "{'a': x}",
        "(x, x)",
        "'x'",
        "b'x'",
        "None",
        "True + x",
        "...",
        "gamma(10**6)",
        "x + 1/0",
        "sqrt(-1) + x",
        "await x",
    ]


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and text, repr(text)
    return text


@pytest.fixture()
def sentinel(tmp_path):
    path = tmp_path / SENTINEL
    yield path
    assert not path.exists(), "a payload ran"


# ----------------------------------------------------------------------------- the API
def test_every_payload_is_refused_in_one_line_without_side_effects(sentinel):
    for payload in payloads(sentinel):
        started = time.perf_counter()
        with pytest.raises(TargetError) as info:
            expression_target(payload, "0,1")
        one_line(info)
        assert time.perf_counter() - started < 5, payload
        assert not sentinel.exists(), payload


def test_every_payload_is_refused_as_a_domain_endpoint(sentinel):
    for payload in payloads(sentinel):
        for domain in (f"{payload},1", f"0,{payload}"):
            started = time.perf_counter()
            with pytest.raises(TargetError) as info:
                get_target("exp2", domain)
            one_line(info)
            assert time.perf_counter() - started < 5, payload
            assert not sentinel.exists(), payload


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("x + 0*__import__('os').system('ls')", "__import__('os').system"),
        ("__import__('os')", "__import__"),
        ("x.real", "x.real"),
        ("x[0]", "x[0]"),
        ("foo(x)", "foo"),
        ("x*y", "'y'"),
        ("x // 2", "//"),
        ("lambda: 1", "lambda"),
        ("x + 0*9**9**9", "9**9**9"),
        ("(y := 1)", ":="),
        ("0x10", "0x10"),
    ],
)
def test_the_error_names_the_offending_token(text, token):
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    assert token in one_line(info)


def test_huge_powers_are_refused_fast():
    for text in (
        "x + 0*9**9**9",
        "x + 0*9**9**9**9",
        "2**2**2**2**2**2",
        "(3**1000)**1000",
        "x**100000",
        "sqrt(2)**100000",
    ):
        started = time.perf_counter()
        with pytest.raises(ExpressionError, match="too large"):
            parse_expression(text)
        assert time.perf_counter() - started < 1, text


def test_pathological_evaluation_is_refused_fast():
    """sin of 2^(4.7 million) would need millions of bits of pi: refused, not computed."""
    started = time.perf_counter()
    with pytest.raises(TargetError):
        expression_target("x + sin(exp(exp(15)))", "0,1")
    assert time.perf_counter() - started < 5


# ----------------------------------------------------------------------------- what stays valid
VALID = [
    ("2**x", 2**X),
    ("2^x", 2**X),
    ("exp(x) - 1", sympy.exp(X) - 1),
    ("log(1+x)/log(2)", sympy.log(1 + X) / sympy.log(2)),
    ("ln(x)", sympy.log(X)),
    ("log(x, 2)", sympy.log(X) / sympy.log(2)),
    ("log2(x)", sympy.log(X) / sympy.log(2)),
    ("log10(x)", sympy.log(X) / sympy.log(10)),
    ("log1p(x)", sympy.log(1 + X)),
    ("expm1(x)", sympy.exp(X) - 1),
    ("exp2(x)", 2**X),
    ("x + 2**-24 + 2**-60", X + sympy.Rational(1, 2**24) + sympy.Rational(1, 2**60)),
    ("0.1*x", sympy.Rational(1, 10) * X),
    ("1e-3*x + .5 + 2.", X / 1000 + sympy.Rational(5, 2)),
    ("-x**2", -(X**2)),
    ("x**(1/3)", X ** sympy.Rational(1, 3)),
    ("cbrt(x)", sympy.sign(X) * sympy.Abs(X) ** sympy.Rational(1, 3)),
    ("abs(x) + Abs(x)", 2 * sympy.Abs(X)),
    ("sin(x)*cos(x) + tan(x)", sympy.sin(X) * sympy.cos(X) + sympy.tan(X)),
    ("asin(x) + acos(x) + atan(x)", sympy.asin(X) + sympy.acos(X) + sympy.atan(X)),
    (
        "sinh(x) + cosh(x) + tanh(x) + asinh(x) + acosh(x+2) + atanh(x/2)",
        sympy.sinh(X)
        + sympy.cosh(X)
        + sympy.tanh(X)
        + sympy.asinh(X)
        + sympy.acosh(X + 2)
        + sympy.atanh(X / 2),
    ),
    ("erf(x) + erfc(x)", sympy.erf(X) + sympy.erfc(X)),
    ("gamma(x+1) + lgamma(x+1)", sympy.gamma(X + 1) + sympy.loggamma(X + 1)),
    ("exp(-x**2) * E + pi", sympy.exp(-(X**2)) * sympy.E + sympy.pi),
    ("+x", X),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[t for t, _ in VALID])
def test_valid_expressions_parse_to_the_expected_sympy(text, expected):
    parsed = parse_expression(text)
    assert sympy.simplify(parsed - expected) == 0
    assert parse_expression(str(parsed)) == parsed  # the stored canonical text parses back


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("-pi/4", -sympy.pi / 4),
        ("log(2)/2", sympy.log(2) / 2),
        ("sqrt(2)/2", sympy.sqrt(2) / 2),
        ("-1/2", sympy.Rational(-1, 2)),
        ("1e-3", sympy.Rational(1, 1000)),
        ("ln(2)", sympy.log(2)),
    ],
)
def test_constant_endpoints(text, value):
    assert parse_constant_expression(text) == value


def test_builtin_targets_and_readme_examples_still_work():
    for name in ("exp2", "exp2_m05_05", "exp", "log2", "sin", "cos", "erf", "tanh"):
        target = get_target(name)
        assert parse_expression(target.expr) == target.sympy_expr()
        target.domain()
    assert expression_target("log(1+x)", "0,1").expr == "log(x + 1)"
    assert expression_target("log(1+x)/log(2)", "0,1").expr == "log(x + 1)/log(2)"
    assert expression_target("log1p(x)", "0,1").expr == "log(x + 1)"
    assert get_target("sin", "-pi/2,pi/2").domain()[1] == pytest.approx(1.5707963705062866)


@settings(deadline=None, max_examples=300)
@given(
    st.lists(
        st.sampled_from(list("x+-*/^().,0123456789e pi") + ["sin", "exp", "log", "sqrt", "gamma", "**", "E"]),
        max_size=40,
    ).map("".join)
)
def test_random_text_parses_or_is_refused_in_one_line(text):
    """Fuzz: any text is a sympy expression of the language or an ExpressionError, never another exception."""
    started = time.perf_counter()
    try:
        parsed = parse_expression(text)
    except ExpressionError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(parsed, sympy.Expr) and parsed.free_symbols <= {X}
    assert time.perf_counter() - started < 2.5


def test_every_function_of_the_language_has_an_mpmath_evaluation():
    import mpmath

    from targets.expr import mp_function

    for name, (arities, _) in FUNCTIONS.items():
        text = f"{name}(x + 2)" if 1 in arities else f"{name}(x + 2, 3)"
        with mpmath.workprec(64):
            value = mp_function(parse_expression(text))(mpmath.mpf("0.25"))
        assert mpmath.isfinite(value), name


# ----------------------------------------------------------------------------- the CLI
def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def assert_refused(code: int, out: str, err: str) -> None:
    assert code == 2, (code, out, err)
    assert "Traceback" not in err + out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("evo: error: "), err


CLI_PAYLOADS = lambda s: [p for p in payloads(s) if "\n" not in p and "\x00" not in p]  # noqa: E731 (argv cannot hold NUL)


def test_cli_score_refuses_payloads(sentinel):
    for payload in CLI_PAYLOADS(sentinel):
        assert_refused(
            *cli("score", "anchor:exp2", "--expr", payload, "--domain", "0,1", "--points", "search")
        )
        assert_refused(
            *cli("score", "anchor:exp2", "--target", "exp2", "--domain", f"{payload},1", "--points", "search")
        )
        assert not sentinel.exists(), payload


def test_cli_evolve_and_toml_refuse_payloads(sentinel, tmp_path):
    runs = tmp_path / "runs"
    for i, payload in enumerate(CLI_PAYLOADS(sentinel)):
        assert_refused(
            *cli("evolve", "--expr", payload, "--domain", "0,1", "--max-evals", "10", "--runs-dir", runs)
        )
        assert_refused(
            *cli(
                "evolve",
                "--target",
                "exp2",
                "--domain",
                f"0,{payload}",
                "--max-evals",
                "10",
                "--runs-dir",
                runs,
            )
        )
        toml = tmp_path / f"c{i}.toml"
        toml.write_text(
            f'expr = {json.dumps(payload)}\ndomain = "0,1"\nmax_evals = 10\nruns_dir = '
            f"{json.dumps(str(runs))}\n"
        )
        assert_refused(*cli("evolve", "--config", toml))
        toml.write_text(
            f"domain = {json.dumps(payload + ',1')}\nmax_evals = 10\nruns_dir = {json.dumps(str(runs))}\n"
        )
        assert_refused(*cli("evolve", "--config", toml))
        assert not sentinel.exists(), payload
    assert not runs.exists() or not any(runs.iterdir())  # no run directory was created


def test_console_script_reproduction_of_the_report(tmp_path):
    """The report's reproduction, as a subprocess: no file created, one line, exit 2."""
    beside = Path(sys.executable).parent / "evo"
    script = [str(beside)] if beside.exists() else [sys.executable, "-m", "evo.cli"]
    done = subprocess.run(
        [
            *script,
            "score",
            "anchor:exp2",
            "--expr",
            "x + 0*__import__('os').system('touch pwned')",
            "--domain",
            "0,1",
            "--points",
            "search",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "__import__" in done.stderr
    assert not (tmp_path / "pwned").exists()


# ----------------------------------------------------------------------------- stored runs
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A real, very small run to tamper with (exp2 on [1, 1.001]: 8390 floats)."""
    runs = tmp_path_factory.mktemp("safety-runs")
    code, out, err = cli(
        "evolve",
        "--target",
        "exp2",
        "--domain",
        "1,1.001",
        "--max-evals",
        "120",
        "--seed",
        "3",
        "--runs-dir",
        runs,
        "--set",
        "population_size=10",
        "--set",
        "tournament_size=3",
        "--set",
        "search_points=256",
        "--set",
        "select_points=1024",
        "--set",
        "checkpoint_every=50",
        "--signoff",
        "none",
        "--quiet",
    )
    assert code == 0, err
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    return run_dir


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def tampered(tiny_run: Path, tmp_path: Path, **changes) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    config = json.loads((copy / "config.json").read_text())
    config.update(changes)
    (copy / "config.json").write_text(json.dumps(config))
    return copy


@pytest.mark.parametrize("field", ["expr", "domain"])
def test_tampered_config_is_refused_on_resume_export_and_inspect(tiny_run, tmp_path, field):
    sentinel = tmp_path / SENTINEL
    payload = f"x + 0*__import__('os').system('touch {sentinel}')"
    changes = (
        {"target": None, "expr": payload, "domain": "1,1.001"}
        if field == "expr"
        else {"domain": f"1,{payload}"}
    )
    run_dir = tampered(tiny_run, tmp_path, **changes)
    before = snapshot(run_dir)
    assert_refused(*cli("resume", run_dir, "--max-evals", "400", "--quiet"))
    assert_refused(*cli("export", run_dir, "--lang", "numpy", "--verify"))
    assert_refused(*cli("export", run_dir, "--lang", "c"))
    assert_refused(*cli("score", f"{run_dir}:best", "--target", "exp2", "--points", "search"))
    assert not sentinel.exists()
    assert snapshot(run_dir) == before  # nothing written, nothing moved aside


def test_no_package_code_evaluates_text():
    """No call of sympify / parse_expr / eval / exec in the packages (exec only for generated code in
    codegen/verify.py, which compiles evo's own emitted source)."""
    import ast as python_ast

    root = Path(__file__).resolve().parents[1]
    found = []
    for package in ("primitives", "targets", "evo", "codegen"):
        for path in (root / package).rglob("*.py"):
            for node in python_ast.walk(python_ast.parse(path.read_text())):
                if isinstance(node, python_ast.Call):
                    name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                    if name in ("sympify", "parse_expr", "eval", "exec", "S") and not (
                        name == "exec" and path.name == "verify.py"
                    ):
                        found.append(f"{path.relative_to(root)}:{node.lineno} {name}")
    assert found == []
