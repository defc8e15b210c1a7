"""The expression language of targets and domain endpoints: text -> sympy through a whitelist.

The text is never run as Python.

Text is parsed with Python's ``ast`` (``mode="eval"``; the tree is only read, never compiled or
evaluated) and every node must be one of: a decimal number, the names ``x``, ``pi`` and ``E``,
``+ - * / **`` (``^`` is read as ``**``), unary ``-``/``+``, parentheses and calls of the functions
in ``FUNCTIONS``. The sympy expression is built directly from those nodes. Anything else is refused
with a one-line ``ExpressionError`` naming the offending token.

Work is bounded before sympy sees it: the text length, the tree's depth and size, the digits of
literals, numeric exponents, and the bits of every exact constant (so ``9**9**9`` is refused at once
instead of computed), plus a wall-clock budget over the whole build.

``mp_function`` turns a parsed expression into an mpmath function by walking the same closed set of
node types (no ``lambdify``, no generated code); arguments of the trigonometric functions are bounded
so a pathological expression cannot make mpmath compute millions of bits of pi.
"""

from __future__ import annotations

import ast
import math
import re
import time
import warnings
from collections.abc import Callable

import sympy

from targets.errors import TargetError

X = sympy.Symbol("x", real=True)

MAX_TEXT = 1000  # characters of an expression or endpoint
MAX_DEPTH = 120  # nesting of the syntax tree
MAX_NODES = 600  # nodes of the syntax tree
MAX_NUMBER_BITS = 1100  # numerator and denominator of any exact constant (2^-1074 and 1e300 fit)
MAX_DECIMAL_EXPONENT = 400  # the e in 1e-320
MAX_EXPONENT = 4096  # |n| of a numeric exponent in a ** n
MAX_FUNCTION_ARGUMENT = 1000  # |a| of gamma(a) / lgamma(a) with a numeric a (sympy would expand factorials)
MAX_TRIG_ARGUMENT_BITS = 1 << 14  # mpmath reduces sin(a) with about log2|a| extra bits of pi
BUILD_SECONDS = 2.0

_NON_FINITE_NAMES = frozenset({"inf", "oo", "infinity", "nan", "zoo", "Infinity"})
_DECIMAL = re.compile(r"^(?P<int>\d*)(?:\.(?P<frac>\d*))?(?:[eE](?P<exp>[+-]?\d+))?$")


class ExpressionError(TargetError):
    """Text that is not an expression of the language (or too large to handle)."""


def _exp2(a):
    return sympy.Pow(2, a)


def _cbrt(a):
    return sympy.sign(a) * sympy.Abs(a) ** sympy.Rational(1, 3)  # the real cube root


def _log(a, base=None):
    return sympy.log(a) if base is None else sympy.log(a) / sympy.log(base)


FUNCTIONS: dict[str, tuple[tuple[int, ...], Callable]] = {
    # name: (accepted numbers of arguments, builder); the names sympy prints (Abs, loggamma, sign)
    # are included so a parsed expression's text parses back to the same expression
    "exp": ((1,), sympy.exp),
    "exp2": ((1,), _exp2),
    "expm1": ((1,), lambda a: sympy.exp(a) - 1),
    "log": ((1, 2), _log),
    "ln": ((1,), sympy.log),
    "log2": ((1,), lambda a: sympy.log(a) / sympy.log(2)),
    "log10": ((1,), lambda a: sympy.log(a) / sympy.log(10)),
    "log1p": ((1,), lambda a: sympy.log(1 + a)),
    "sqrt": ((1,), sympy.sqrt),
    "cbrt": ((1,), _cbrt),
    "sin": ((1,), sympy.sin),
    "cos": ((1,), sympy.cos),
    "tan": ((1,), sympy.tan),
    "asin": ((1,), sympy.asin),
    "acos": ((1,), sympy.acos),
    "atan": ((1,), sympy.atan),
    "sinh": ((1,), sympy.sinh),
    "cosh": ((1,), sympy.cosh),
    "tanh": ((1,), sympy.tanh),
    "asinh": ((1,), sympy.asinh),
    "acosh": ((1,), sympy.acosh),
    "atanh": ((1,), sympy.atanh),
    "erf": ((1,), sympy.erf),
    "erfc": ((1,), sympy.erfc),
    "gamma": ((1,), sympy.gamma),
    "lgamma": ((1,), sympy.loggamma),
    "loggamma": ((1,), sympy.loggamma),
    "abs": ((1,), sympy.Abs),
    "Abs": ((1,), sympy.Abs),
    "sign": ((1,), sympy.sign),
}
_CONSTANTS = {"pi": sympy.pi, "E": sympy.E}

_OPERATORS = {
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.BitXor: "^",
    ast.Invert: "~",
    ast.Not: "not",
}
_KINDS = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscript",
    ast.Lambda: "lambda",
    ast.IfExp: "conditional",
    ast.Compare: "comparison",
    ast.BoolOp: "boolean operator",
    ast.NamedExpr: "assignment ':='",
    ast.JoinedStr: "f-string",
    ast.FormattedValue: "f-string",
    ast.ListComp: "comprehension",
    ast.SetComp: "comprehension",
    ast.DictComp: "comprehension",
    ast.GeneratorExp: "generator",
    ast.List: "list",
    ast.Tuple: "tuple",
    ast.Set: "set",
    ast.Dict: "dict",
    ast.Starred: "starred argument",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slice",
}


def show(text: str, limit: int = 60) -> str:
    """``text`` quoted on one line (newlines escaped), shortened when long."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def function_names() -> list[str]:
    return sorted(FUNCTIONS)


class _Builder:
    """Builds sympy from a checked syntax tree; raises ExpressionError(reason) on the first bad node."""

    def __init__(self, source: str, allow_x: bool) -> None:
        self.source = source
        self.allow_x = allow_x
        self.deadline = time.monotonic() + BUILD_SECONDS

    def segment(self, node: ast.AST) -> str:
        text = ast.get_source_segment(self.source, node) or type(node).__name__
        return show(text, 40)

    def build(self, node: ast.AST) -> sympy.Expr:
        if time.monotonic() > self.deadline:
            raise ExpressionError(f"takes longer than {BUILD_SECONDS:g} s to build")
        result = self.build_node(node)
        if not result.is_Rational and result.is_number and result not in (sympy.pi, sympy.E):
            self.check_constant(result, node)
        return result

    def check_constant(self, value: sympy.Expr, node: ast.AST) -> None:
        """A constant sub-expression must be a number of moderate size: sympy evaluates constants
        numerically when it orders or prints terms, and sin(exp(exp(15))) would never finish."""
        import mpmath

        if value.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
            raise ExpressionError(f"{self.segment(node)} is not finite")
        try:
            with mpmath.workprec(64):
                magnitude = abs(mp_function(value)(mpmath.mpf(0)))
                large = (
                    mpmath.isfinite(magnitude) and magnitude != 0 and mpmath.mag(magnitude) > MAX_NUMBER_BITS
                )
                finite = bool(mpmath.isfinite(magnitude))
        except (ArithmeticError, ValueError, TypeError):
            raise ExpressionError(f"{self.segment(node)} is not a finite number") from None
        if not finite:
            raise ExpressionError(f"{self.segment(node)} is not a finite number")
        if large:
            raise ExpressionError(f"{self.segment(node)} is too large (beyond 2^{MAX_NUMBER_BITS})")

    def build_node(self, node: ast.AST) -> sympy.Expr:
        if isinstance(node, ast.Constant):
            return self.number(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return -self.build(node.operand)
            if isinstance(node.op, ast.UAdd):
                return self.build(node.operand)
            raise ExpressionError(
                f"unsupported operator {_OPERATORS.get(type(node.op), type(node.op).__name__)!r}"
            )
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        kind = _KINDS.get(type(node), type(node).__name__)
        raise ExpressionError(f"unsupported {kind} {self.segment(node)}")

    def number(self, node: ast.Constant) -> sympy.Rational:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            what = (
                "text"
                if isinstance(value, str | bytes)
                else ("complex number" if isinstance(value, complex) else "constant")
            )
            raise ExpressionError(f"unsupported {what} {self.segment(node)}")
        text = ast.get_source_segment(self.source, node) or ""
        match = _DECIMAL.match(text)
        if not match or not (match["int"] or match["frac"]):
            raise ExpressionError(
                f"unsupported number {show(text, 40)} (decimal numbers only, e.g. 0.5 or 1e-3)"
            )
        digits = (match["int"] or "") + (match["frac"] or "")
        exponent = int(match["exp"] or 0) - len(match["frac"] or "")
        if abs(int(match["exp"] or 0)) > MAX_DECIMAL_EXPONENT or len(digits) > 400:
            raise ExpressionError(f"number {show(text, 40)} is too large")
        mantissa = int(digits)
        value = (
            sympy.Integer(mantissa) * sympy.Integer(10) ** exponent
            if exponent >= 0
            else sympy.Rational(mantissa, 10**-exponent)
        )
        self.check_size(value, text)
        return value

    def name(self, node: ast.Name) -> sympy.Expr:
        if node.id == "x" and self.allow_x:
            return X
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        if node.id in _NON_FINITE_NAMES:
            raise ExpressionError(f"{node.id!r} is not a finite real number")
        if node.id in FUNCTIONS:
            raise ExpressionError(f"function {node.id!r} used without arguments")
        allowed = "x, pi, E" if self.allow_x else "pi, E (a number, not x)"
        raise ExpressionError(f"unknown symbol {node.id!r} (known: {allowed})")

    def binary(self, node: ast.BinOp) -> sympy.Expr:
        op = type(node.op)
        if op not in (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow):
            raise ExpressionError(f"unsupported operator {_OPERATORS.get(op, op.__name__)!r}")
        left, right = self.build(node.left), self.build(node.right)
        if op is ast.Add:
            return left + right
        if op is ast.Sub:
            return left - right
        if op is ast.Mult:
            return left * right
        if op is ast.Div:
            return left / right
        return self.power(left, right, node)

    def power(self, base: sympy.Expr, exponent: sympy.Expr, node: ast.AST) -> sympy.Expr:
        if exponent.is_Rational:
            if abs(exponent) > MAX_EXPONENT:
                raise ExpressionError(
                    f"exponent of {self.segment(node)} is too large (at most {MAX_EXPONENT})"
                )
            if base.is_number:
                # sympy multiplies out powers of exact constants: bound the bits that would take
                bits = sum(
                    math.log2(max(abs(r.p), r.q))
                    for r in base.atoms(sympy.Rational)
                    if abs(r) != 1 and r != 0
                )
                if bits * abs(exponent) > MAX_NUMBER_BITS:
                    raise ExpressionError(f"{self.segment(node)} is too large (over {MAX_NUMBER_BITS} bits)")
        return base**exponent

    def call(self, node: ast.Call) -> sympy.Expr:
        if not isinstance(node.func, ast.Name):
            raise ExpressionError(f"unsupported call of {self.segment(node.func)}")
        name = node.func.id
        if name not in FUNCTIONS:
            raise ExpressionError(f"unknown function {name!r} (known: {', '.join(function_names())})")
        if node.keywords:
            raise ExpressionError(f"unsupported keyword argument in {self.segment(node)}")
        arities, builder = FUNCTIONS[name]
        if len(node.args) not in arities:
            wanted = " or ".join(str(a) for a in arities)
            raise ExpressionError(f"{name} takes {wanted} argument(s), got {len(node.args)}")
        args = [self.build(a) for a in node.args]
        if (
            name in ("gamma", "lgamma", "loggamma")
            and args[0].is_number
            and args[0].is_real
            and abs(args[0]) > MAX_FUNCTION_ARGUMENT
        ):
            raise ExpressionError(
                f"argument of {self.segment(node)} is too large (at most {MAX_FUNCTION_ARGUMENT})"
            )
        return builder(*args)

    def check_size(self, value: sympy.Expr, text: str) -> None:
        for number in value.atoms(sympy.Rational):
            if max(abs(number.p).bit_length(), number.q.bit_length()) > MAX_NUMBER_BITS:
                raise ExpressionError(f"{show(text, 40)} is too large (over {MAX_NUMBER_BITS} bits)")


def _checked_tree(text: str) -> ast.AST:
    """The syntax tree of ``text`` after the cheap checks (type, characters, length, depth, size)."""
    if not isinstance(text, str):
        raise ExpressionError(f"expected text, got {type(text).__name__}")
    if not text.strip():
        raise ExpressionError("empty")
    if len(text) > MAX_TEXT:
        raise ExpressionError(f"too long ({len(text)} characters, at most {MAX_TEXT})")
    for ch in text:
        if not (ch.isascii() and (ch.isprintable() or ch == "\t")):
            raise ExpressionError(f"unsupported character {ch!r}")
    try:
        with warnings.catch_warnings():  # "invalid decimal literal" and friends: the error says it
            warnings.simplefilter("ignore")
            tree = ast.parse(text.replace("^", "**").strip(), mode="eval")
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        raise ExpressionError(f"invalid syntax{where} ({exc.msg})") from None
    except (ValueError, RecursionError, MemoryError):
        raise ExpressionError("invalid syntax") from None
    stack, count = [(tree.body, 1)], 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            raise ExpressionError(f"nested too deeply (more than {MAX_DEPTH} levels)")
        if count > MAX_NODES:
            raise ExpressionError(f"too large (more than {MAX_NODES} terms)")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return tree


def _build(text: str, allow_x: bool) -> sympy.Expr:
    tree = _checked_tree(text)
    builder = _Builder(text.replace("^", "**").strip(), allow_x)
    try:
        expr = builder.build(tree.body)
    except ExpressionError:
        raise
    except (ArithmeticError, ValueError, TypeError, RecursionError, MemoryError) as exc:
        raise ExpressionError(f"cannot be built ({type(exc).__name__})") from None
    if not isinstance(expr, sympy.Expr):
        raise ExpressionError("is not a real-valued formula")
    builder.check_size(expr, text)
    if expr.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
        raise ExpressionError("is not finite (it divides by zero or takes log(0))")
    if expr.has(sympy.I):
        raise ExpressionError("is not real")
    return expr


def parse_expression(text: str) -> sympy.Expr:
    """The real function of ``x`` that ``text`` denotes (ExpressionError with the reason otherwise)."""
    if isinstance(text, str) and not text.strip():
        raise ExpressionError("empty expression")
    try:
        return _build(text, allow_x=True)
    except ExpressionError as exc:
        shown = show(text) if isinstance(text, str) else type(text).__name__
        raise ExpressionError(f"cannot parse expression {shown}: {exc}") from None


def parse_constant_expression(text: str) -> sympy.Expr:
    """A constant (``-pi/4``, ``log(2)/2``, ``sqrt(2)/2``) as an exact sympy number."""
    try:
        value = _build(str(text), allow_x=False)
    except ExpressionError as exc:
        message = str(exc)
        if "not a finite real number" in message:
            raise ExpressionError(f"domain endpoint {show(str(text))} is not a finite real number") from None
        raise ExpressionError(f"cannot parse domain endpoint {show(str(text))}: {message}") from None
    return value


# ----------------------------------------------------------------------------- evaluation with mpmath
class EvaluationError(ValueError):
    """A point where the mpmath evaluation is refused (argument too large to reduce)."""


def _mp_functions():
    import mpmath

    def guarded(function, name):
        def call(a):
            if mpmath.isfinite(a) and a != 0 and mpmath.mag(a) > MAX_TRIG_ARGUMENT_BITS:
                raise EvaluationError(f"the argument of {name} exceeds 2^{MAX_TRIG_ARGUMENT_BITS}")
            return function(a)

        return call

    return {
        sympy.exp: mpmath.exp,
        sympy.log: mpmath.log,
        sympy.sin: guarded(mpmath.sin, "sin"),
        sympy.cos: guarded(mpmath.cos, "cos"),
        sympy.tan: guarded(mpmath.tan, "tan"),
        sympy.asin: mpmath.asin,
        sympy.acos: mpmath.acos,
        sympy.atan: mpmath.atan,
        sympy.sinh: mpmath.sinh,
        sympy.cosh: mpmath.cosh,
        sympy.tanh: mpmath.tanh,
        sympy.asinh: mpmath.asinh,
        sympy.acosh: mpmath.acosh,
        sympy.atanh: mpmath.atanh,
        sympy.erf: mpmath.erf,
        sympy.erfc: mpmath.erfc,
        sympy.gamma: mpmath.gamma,
        sympy.loggamma: mpmath.loggamma,
        sympy.Abs: mpmath.fabs,
        sympy.sign: mpmath.sign,
    }


def mp_function(expr: sympy.Expr) -> Callable:
    """``expr`` as a function of one mpf, evaluated by mpmath at the caller's working precision.

    Only the node types the parser builds are accepted (TypeError otherwise). Errors at a point are
    mpmath's own (ValueError, ZeroDivisionError, OverflowError) or EvaluationError (a ValueError).
    """
    import mpmath

    functions = _mp_functions()

    def compile_node(node) -> Callable:
        if node == X:
            return lambda x: x
        if node.is_Rational:
            p, q = int(node.p), int(node.q)
            return (lambda x: mpmath.mpf(p)) if q == 1 else (lambda x: mpmath.mpf(p) / q)
        if node is sympy.pi:
            return lambda x: +mpmath.pi
        if node is sympy.E:
            return lambda x: +mpmath.e
        parts = [compile_node(a) for a in node.args]
        if isinstance(node, sympy.Add):
            return lambda x: mpmath.fsum(f(x) for f in parts)
        if isinstance(node, sympy.Mul):
            return lambda x: mpmath.fprod(f(x) for f in parts)
        if isinstance(node, sympy.Pow):
            base, exponent = parts
            power = node.args[1]
            if power.is_Integer:
                n = int(power)
                return lambda x: base(x) ** n
            if power == sympy.Rational(1, 2):
                return lambda x: mpmath.sqrt(base(x))
            if power == sympy.Rational(-1, 2):
                return lambda x: 1 / mpmath.sqrt(base(x))
            return lambda x: mpmath.power(base(x), exponent(x))
        function = functions.get(node.func)
        if function is None or len(parts) != 1:
            raise TypeError(f"no mpmath evaluation for {node.func}")
        (argument,) = parts
        return lambda x: function(argument(x))

    return compile_node(expr)


def constant_value(expr: sympy.Expr, bits: int = 128, max_bits: int = 4096):
    """A constant expression as an mpf, with the precision raised until float64 and float32
    roundings of two evaluations 64 bits apart agree (so endpoints are correctly rounded)."""
    import mpmath

    from primitives.floatbits import FLOAT32, FLOAT64
    from primitives.rounding import round_mpf

    function = mp_function(expr)
    while True:
        values = []
        for extra in (0, 64):
            with mpmath.workprec(bits + extra):
                try:
                    value = function(mpmath.mpf(0))
                except (ValueError, ZeroDivisionError, OverflowError):
                    raise ExpressionError(f"{expr} is not defined") from None
                if isinstance(value, mpmath.mpc):
                    if value.imag != 0:
                        raise ExpressionError(f"{expr} is not a finite real number")
                    value = value.real
                if not mpmath.isfinite(value):
                    raise ExpressionError(f"{expr} is not a finite real number")
                values.append((value, round_mpf(value, FLOAT64), round_mpf(value, FLOAT32)))
        (v1, d1, s1), (v2, d2, s2) = values
        if d1 == d2 and s1 == s2 and math.copysign(1, d1) == math.copysign(1, d2):
            return v2
        bits *= 2
        if bits > max_bits:
            return v2
