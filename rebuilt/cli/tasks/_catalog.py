"""Names the task list and shell completion need, read without parsing any recipe.

`inv --list`, `rebuilt --list` and every <TAB> start a fresh interpreter, so they must not pay for
what only a task's body uses: the recipe parser (tomllib, ``packaging``), requests, orjson. The
task list needs only each recipe's name and its one-line ``summary``; completion needs the names
of recipes, stacks and serve profiles. Both come from file names and one regular expression here;
a summary that is not a plain one-line string falls back to reading that one file with tomllib.
The folders are the ones rebuilt.core.recipes searches (``REBUILT_RECIPES_DIR``, else the shipped
``recipes/``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_SUMMARY = re.compile(r'^\s*summary\s*=\s*(?:"([^"\\\n]*)"|\'([^\'\n]*)\')\s*(?:#.*)?$', re.MULTILINE)


def recipe_dirs() -> list[Path]:
    """The recipe folders, first wins (the same rule as rebuilt.core.recipes.RECIPES_DIRS)."""
    from rebuilt.core.project import data_root

    spec = os.environ.get("REBUILT_RECIPES_DIR") or str(data_root() / "recipes")
    return [Path(p) for p in spec.split(os.pathsep) if p]


def _stems(folders: list[Path]) -> list[str]:
    return sorted({p.stem for d in folders for p in d.glob("*.toml")})


def recipe_names() -> list[str]:
    return _stems(recipe_dirs())


def stack_names() -> list[str]:
    return _stems([d / "stacks" for d in recipe_dirs()])


def profile_names() -> list[str]:
    return _stems([d / "serve" for d in recipe_dirs()])


def _recipe_file(name: str) -> Path | None:
    return next((d / f"{name}.toml" for d in recipe_dirs() if (d / f"{name}.toml").is_file()), None)


def summary(name: str) -> str:
    """The recipe's one-line summary; a file that cannot be read still gets a line saying how to learn why."""
    path = _recipe_file(name)
    unusable = f"(recipe file invalid: inv build.{name} says why)"
    try:
        text = path.read_text() if path else ""
    except (OSError, UnicodeDecodeError):
        return unusable
    found = _SUMMARY.search(text)
    if found:
        return found.group(1) if found.group(1) is not None else found.group(2)
    import tomllib  # an escaped or multi-line summary: read this one file properly

    try:
        meta = tomllib.loads(text).get("recipe", {})
    except (tomllib.TOMLDecodeError, AttributeError):
        return unusable
    value = meta.get("summary") if isinstance(meta, dict) else None
    return value if isinstance(value, str) and value else unusable
