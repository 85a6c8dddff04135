"""Sizes and the small expression language used in scenario files.

Sizes are written as in the kernel's documentation ("256MiB", "500GB", "4KiB", "1024" pages is
not accepted: a bare number is bytes). Expressions such as ``"node0.free + 64MiB"`` are evaluated
when the scenario step runs, against a namespace of node and workload facts.
"""

from __future__ import annotations

import ast
import functools
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

PAGE_SIZE = 4096
PAGE_SHIFT = 12

UNITS: dict[str, int] = {
    "B": 1,
    "K": 1024,
    "KB": 1000,
    "KIB": 1024,
    "M": 1024**2,
    "MB": 1000**2,
    "MIB": 1024**2,
    "G": 1024**3,
    "GB": 1000**3,
    "GIB": 1024**3,
    "T": 1024**4,
    "TB": 1000**4,
    "TIB": 1024**4,
}
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")


class ExprError(ValueError):
    """A size or expression that cannot be read; the message says why."""


def parse_size(value: int | float | str) -> int:
    """Return a size in bytes from ``"256MiB"``, ``"1.5GiB"``, ``4096`` (bytes)."""
    if isinstance(value, bool):
        raise ExprError(f"{value!r} is not a size")
    if isinstance(value, int | float):
        if value < 0:
            raise ExprError(f"size {value} is negative; sizes must be >= 0")
        return int(value)
    m = _SIZE_RE.match(value)
    if not m:
        raise ExprError(f"{value!r} is not a size; write e.g. '256MiB', '500GB' or '0'")
    num, unit = m.groups()
    mult = UNITS.get(unit.upper() or "B")
    if mult is None:
        raise ExprError(
            f"unknown unit {unit!r} in {value!r}; use B, KiB, MiB, GiB, TiB, KB, MB, GB"
        )
    return int(float(num) * mult)


_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
}
_CMPOPS = {
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_UNIT_TOKEN = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(KiB|MiB|GiB|TiB|KB|MB|GB|TB)\b")


def _rewrite_units(src: str) -> str:
    """``64MiB`` -> ``(64*1048576)`` so that the Python parser can read it."""
    return _UNIT_TOKEN.sub(lambda m: f"({m.group(1)}*{UNITS[m.group(2).upper()]})", src)


EXPR_NAME_RE = re.compile(r"^(t|i|node\d+(\.(free|free_mb|managed|unreclaimable))?)$")
EXPR_NAMES_HELP = "t, i, nodeN.free, nodeN.free_mb, nodeN.managed, nodeN.unreclaimable"


def check_expr(src: str) -> None:
    """Parse an expression and check that every name is one the engine provides."""
    tree = _parse(src)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name | ast.Attribute):
            dotted = _dotted(node)
            if dotted is not None and not EXPR_NAME_RE.match(dotted):
                raise ExprError(
                    f"unknown name {dotted!r} in {src!r}; known names: {EXPR_NAMES_HELP}"
                )


@functools.lru_cache(maxsize=512)
def _parse(src: str) -> ast.Expression:
    """Parse once per expression text (a script's until is evaluated every step); callers
    only read the tree."""
    try:
        return ast.parse(_rewrite_units(src), mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"cannot read expression {src!r}: {exc.msg}") from None


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def eval_expr(src: str | int | float, env: Mapping[str, Any], functions: bool = False) -> Any:
    """Evaluate a scenario expression; names are dotted keys of ``env`` (``node0.free``).

    With ``functions``, calls of callables in ``env`` with constant or computed arguments are
    allowed (verdicts: ``kswapd_runs(0, event("PHASE2_KILLED"), inf)``)."""
    if isinstance(src, int | float):
        return src
    return _compile(src, functions)(env)


_Compiled = Callable[[Mapping[str, Any]], Any]


@functools.lru_cache(maxsize=512)
def _compile(src: str, functions: bool) -> _Compiled:
    """The expression as nested closures, so the tree is walked once and not at every
    evaluation (a script's ``until`` is evaluated every engine step). Operands are evaluated
    in the same order as a walk of the tree, and an error (an unknown name or function,
    unsupported syntax) is raised when the evaluation reaches it, as a walk would."""

    def unsupported(env: Mapping[str, Any]) -> Any:
        raise ExprError(f"unsupported syntax in {src!r}")

    def c(node: ast.AST) -> _Compiled:
        if isinstance(node, ast.Expression):
            return c(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float | bool):
            value = node.value
            return lambda env: value
        if functions and isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            return lambda env: text
        if functions and isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            fname, keywords = node.func.id, bool(node.keywords)
            args = [c(a) for a in node.args]

            def call(env: Mapping[str, Any]) -> Any:
                fn = env.get(fname)
                if not callable(fn) or keywords:
                    raise ExprError(f"unknown function {fname!r} in {src!r}")
                return fn(*[a(env) for a in args])

            return call
        if isinstance(node, ast.Name | ast.Attribute):
            key = _dotted(node)

            def name(env: Mapping[str, Any]) -> Any:
                if key is None or key not in env:
                    raise ExprError(f"unknown name {key!r} in {src!r}")
                return env[key]

            return name
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            op, left, right = _BINOPS[type(node.op)], c(node.left), c(node.right)
            return lambda env: op(left(env), right(env))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            operand = c(node.operand)
            return lambda env: -operand(env)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            operand = c(node.operand)
            return lambda env: not operand(env)
        if isinstance(node, ast.BoolOp):
            values = [c(v) for v in node.values]
            agg = all if isinstance(node.op, ast.And) else any
            return lambda env: agg([v(env) for v in values])  # every operand, as before
        if isinstance(node, ast.Compare) and all(type(o) in _CMPOPS for o in node.ops):
            first = c(node.left)
            chain = [
                (_CMPOPS[type(o)], c(r)) for o, r in zip(node.ops, node.comparators, strict=True)
            ]

            def compare(env: Mapping[str, Any]) -> bool:
                left = first(env)
                for cmp, right_of in chain:
                    right = right_of(env)
                    if not cmp(left, right):
                        return False
                    left = right
                return True

            return compare
        return unsupported

    return c(_parse(src))
