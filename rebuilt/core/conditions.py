"""`when = "..."` conditions in recipes: a tiny, safe expression language.

Allowed: names, strings, numbers, true/false, lists, ``not``, ``and``, ``or``,
``==``, ``!=``, ``in``, ``not in``. Names are recipe options and machine facts.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping

from rebuilt.core.text import did_you_mean
from rebuilt.errors import ConfigError

_ALLOWED = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.Compare,
    ast.Eq, ast.NotEq, ast.In, ast.NotIn, ast.Name, ast.Load, ast.Constant, ast.List, ast.Tuple,
)


def parse(expr: str, where: str) -> ast.Expression:
    """Parse and whitelist a condition; errors name ``where``."""
    try:
        tree = ast.parse(expr.replace("true", "True").replace("false", "False"), mode="eval")
    except SyntaxError as exc:
        raise ConfigError(f"{where}: cannot parse condition {expr!r}: {exc.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise ConfigError(f"{where}: condition {expr!r} uses {type(node).__name__}, which is not allowed")
    return tree


def names(expr: str, where: str) -> set[str]:
    """The names a condition refers to (for validation against options and facts)."""
    return {n.id for n in ast.walk(parse(expr, where)) if isinstance(n, ast.Name) and n.id not in ("True", "False")}


def evaluate(expr: str, context: Mapping[str, object], where: str) -> bool:
    """Evaluate a condition against ``context``."""
    tree = parse(expr, where)

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.BoolOp):
            vals = (ev(v) for v in node.values)
            return all(vals) if isinstance(node.op, ast.And) else any(vals)
        if isinstance(node, ast.UnaryOp):
            return not ev(node.operand)
        if isinstance(node, ast.Compare):
            left = ev(node.left)
            for op, right_node in zip(node.ops, node.comparators):
                right = ev(right_node)
                ok = {ast.Eq: left == right, ast.NotEq: left != right}.get(type(op))
                if ok is None:
                    ok = (left in right) if isinstance(op, ast.In) else (left not in right)
                if not ok:
                    return False
                left = right
            return True
        if isinstance(node, ast.Name):
            if node.id in ("True", "False"):
                return node.id == "True"
            if node.id not in context:
                raise ConfigError(f"{where}: condition {expr!r} names unknown {node.id!r}{did_you_mean(node.id, context)}")
            return context[node.id]
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [ev(e) for e in node.elts]
        raise ConfigError(f"{where}: unsupported condition {expr!r}")

    return bool(ev(tree))
