"""Filling the templates of recipes and serve profiles: an env table and an argv, from a context.

One reading of ``{placeholder}``s, ``{value, when, otherwise}`` env entries and ``{args, when}`` argv
items, used by the plan (recipe steps) and by serve (profile roles).
"""

from __future__ import annotations

from rebuilt.core import conditions
from rebuilt.core.text import render as fill
from rebuilt.errors import ConfigError

__all__ = ["fill_argv", "fill_env"]


def fill_env(table: dict, ctx: dict, where: str) -> dict[str, str | None]:
    """``NAME = "..."`` or ``{value, when}`` (set when true; with ``otherwise = "unset"``, unset when false,
    so a value exported by the caller cannot reach the step either)."""
    out: dict[str, str | None] = {}
    for name, value in table.items():
        if isinstance(value, dict):
            otherwise = value.get("otherwise", "keep")
            if otherwise not in ("keep", "unset"):
                raise ConfigError(f"{where} env {name}: otherwise = {otherwise!r}; use \"unset\" or leave it out")
            if "when" in value and not conditions.evaluate(value["when"], ctx, f"{where} env {name}"):
                if otherwise == "unset":
                    out[name] = None
                continue
            value = value.get("value", "")
        out[name] = fill(str(value), ctx, where=f"{where} env {name}: ").strip()
    return out


def fill_argv(items, ctx: dict, where: str) -> tuple[str, ...]:
    """Fill an argv: a lone ``{list}`` placeholder splices, ``{args, when}`` items are conditional."""
    out: list[str] = []
    for item in items:
        if isinstance(item, dict):
            if conditions.evaluate(item.get("when", "true"), ctx, where):
                out += [fill(a, ctx, where=where) for a in item["args"]]
        elif item.startswith("{") and item.endswith("}") and isinstance(ctx.get(item[1:-1]), (list, tuple)):
            out += [str(v) for v in ctx[item[1:-1]]]
        else:
            out.append(fill(item, ctx, where=where))
    return tuple(out)
