"""invoke's configuration files (``~/.invoke.yaml``, ``./invoke.yaml``): which exist, and each one read and
checked the way invoke will use it, so that a malformed file is one message naming the file and line.

The settings take their ``rebuilt:`` section from these files; the entry points check the files before
invoke reads them (invoke itself turns a malformed one into a traceback for every command).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rebuilt.errors import ConfigError

__all__ = ["config_files", "read_invoke_file"]


def config_files(cwd: Path, home: Path) -> list[Path]:
    """User then project invoke config files that exist, lowest priority first."""
    found = []
    for folder, names in ((home, (".invoke.yaml", ".invoke.yml")), (cwd, ("invoke.yaml", "invoke.yml"))):
        for name in names:
            if (folder / name).is_file():
                found.append(folder / name)
                break
    return found



def read_invoke_file(path: Path) -> dict[str, Any]:
    """One invoke configuration file, checked the way invoke will use it; ConfigError naming file and line.

    invoke itself turns a malformed file, a top-level list or ``tasks: 5`` into a traceback for
    every command (``inv --list`` included), so the entry point checks the files first.
    """
    path = Path(path)
    try:
        from invoke.vendor import yaml  # invoke ships PyYAML
    except ImportError:  # pragma: no cover
        import yaml
    hint = "fix the file (or move it away), then run the command again"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}", hint=hint) from None
    try:
        if path.suffix == ".json":
            import json

            data = json.loads(text) if text.strip() else {}
        else:
            data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{line} malformed YAML: {getattr(exc, 'problem', None) or exc}", hint=hint) from None
    except ValueError as exc:
        raise ConfigError(f"{path}: malformed JSON: {exc}", hint=hint) from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply", hint=hint) from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level (key: value lines), "
                          f"got a {type(data).__name__}", hint=hint)
    if "rebuilt" in data and data["rebuilt"] is not None and not isinstance(data["rebuilt"], dict):
        raise ConfigError(f"{path}: the `rebuilt:` key must hold a mapping of settings, got {data['rebuilt']!r}",
                          hint="e.g. rebuilt: {stack: sglang-0.5.4}; `inv config` lists every setting")
    _check_invoke_keys(data, _invoke_defaults(), path, hint)
    return data


def _invoke_defaults() -> dict:
    from invoke import Config

    return Config.global_defaults()


def _check_invoke_keys(data: Mapping, defaults: Mapping, path: Path, hint: str, prefix: str = "") -> None:
    """invoke merges a file into its defaults: a scalar where it has a section (``tasks: 5``) is an error."""
    for key, default in defaults.items():
        if key in data and isinstance(default, dict):
            if data[key] is not None and not isinstance(data[key], dict):
                raise ConfigError(f"{path}: `{prefix}{key}:` is one of invoke's own sections and must hold a "
                                  f"mapping, got {data[key]!r}", hint=hint)
            if isinstance(data[key], dict):
                _check_invoke_keys(data[key], default, path, hint, f"{prefix}{key}.")
