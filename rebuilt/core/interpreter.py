"""The target interpreter: the Python that builds install into, benchmarks and servers run with.

One resolver for every task and session, and it says which rule chose the interpreter (every
plan and ``inv config`` show it). The rules, first match wins:

1. named: ``--python`` or the ``python`` setting (a path, or a name looked up on PATH); nox's
   own session virtualenv and ``REBUILT_PYTHON`` are named the same way;
2. for ``serve.up`` and nox's ``h200_bench``: the environment ``nox -s build`` recorded for the
   stack (``<workdir>/state/nox-<stack>.json``, the hand-off file written here);
3. the active virtual environment: ``$VIRTUAL_ENV/bin/python`` (venv, virtualenv, uv, nox);
4. the active conda environment: ``$CONDA_PREFIX/bin/python``;
5. ``python3`` on PATH.

Rules 3-5 never pick rebuilt's own tool environment: ``pipx install`` puts rebuilt in a virtual
environment nobody activates (``~/.local/pipx/venvs/rebuilt``), and a build there would install
torch & co where no user looks. Such a target is refused (exit 2) unless it is named (rule 1).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rebuilt.core import shape
from rebuilt.core.fs import read_json
from rebuilt.errors import ConfigError

__all__ = ["Target", "choose", "named", "tool_prefix", "handoff_file", "recorded", "record", "require_exists",
           "require_runs"]

ACTIVE_VENV = "the active virtual environment ($VIRTUAL_ENV)"
ACTIVE_CONDA = "the active conda environment ($CONDA_PREFIX)"
ON_PATH = "python3 on PATH (no active virtual or conda environment)"
NAME_IT = "--python /path/to/env/bin/python"


@dataclass(frozen=True)
class Target:
    """An interpreter (absolute path) and the rule that chose it, in words."""

    python: str
    why: str

    def __str__(self) -> str:
        return f"{self.python} (chosen by {self.why})"


def named(value: str, why: str, environ: Mapping[str, str] | None = None) -> Target:
    """An interpreter the user named: a path (relative to the current folder) or a program on PATH."""
    environ = os.environ if environ is None else environ
    value = os.path.expanduser(str(value).strip())
    if os.sep in value:
        return Target(os.path.abspath(value), why)
    found = shutil.which(value, path=environ.get("PATH"))
    if not found:
        raise ConfigError(f"{why}: {value!r} is not on PATH", hint=f"give the interpreter's path, e.g. {NAME_IT}")
    return Target(found, why)


def _in(prefix: str) -> str:
    return str(Path(prefix) / "bin" / "python")


def _same(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def tool_prefix(environ: Mapping[str, str], prefix: str = sys.prefix, base: str = sys.base_prefix) -> str | None:
    """The virtual environment rebuilt runs from when it is not the active one (pipx), else None."""
    if _same(prefix, base):
        return None  # a system or conda interpreter: the user's own, not a tool environment
    if any(environ.get(k) and _same(environ[k], prefix) for k in ("VIRTUAL_ENV", "CONDA_PREFIX")):
        return None
    return prefix


def choose(explicit: str | None = None, why: str = "--python", *, recorded: Target | None = None,
           environ: Mapping[str, str] | None = None,
           running: tuple[str, str] = (sys.prefix, sys.base_prefix)) -> Target:
    """The target by the rules above; ConfigError (exit 2) when none applies or it is rebuilt's own.

    ``running``: the prefix and base prefix of the interpreter running rebuilt (tests pass others)."""
    environ = os.environ if environ is None else environ
    if explicit:
        return named(explicit, why, environ)
    if recorded is not None:
        return recorded
    if environ.get("VIRTUAL_ENV"):
        return Target(_in(environ["VIRTUAL_ENV"]), ACTIVE_VENV)
    if environ.get("CONDA_PREFIX"):
        return Target(_in(environ["CONDA_PREFIX"]), ACTIVE_CONDA)
    found = shutil.which("python3", path=environ.get("PATH"))
    if not found:
        raise ConfigError("no target interpreter: no active virtual or conda environment and no python3 on PATH",
                          hint=f"activate the environment to build into, or name it: {NAME_IT}")
    tool = tool_prefix(environ, *running)
    if tool and _same(str(Path(found).parent.parent), tool):
        raise ConfigError(
            f"python3 on PATH is {found}, in rebuilt's own tool environment ({tool}): a build would install "
            f"torch & co there, where nothing else uses them",
            hint=f"activate the environment to build into (source /path/to/env/bin/activate, conda activate NAME) "
                 f"or name it: {NAME_IT}; --python {found} uses rebuilt's own environment on purpose")
    return Target(found, ON_PATH)


# --------------------------------------------------------------------------- the nox hand-off


def handoff_file(workdir: Path | str, stack: str) -> Path:
    """Where ``nox -s build`` records the environment it built ``stack`` into."""
    return Path(workdir) / "state" / f"nox-{stack}.json"


HANDOFF = shape.Obj({"python": shape.STR, "built": shape.BOOL, "stack": shape.opt(shape.STR),
                     "when": shape.opt(shape.STR)})


def _read(path: Path) -> dict:
    """The hand-off file checked against ``HANDOFF``; {} before the first ``nox -s build``."""
    return read_json(path, HANDOFF, missing={}, what="nox hand-off file",
                     hint="nox -s build wrote it: remove it and run the build session again, or name the "
                          "interpreter with --python")


def recorded(workdir: Path | str, stack: str, *, dry_run: bool = False) -> Target | None:
    """The environment ``nox -s build`` built ``stack`` into (or only planned, for a dry run), if any."""
    path = handoff_file(workdir, stack)
    data = _read(path)
    if data.get("python") and (data.get("built") or dry_run):
        return Target(str(data["python"]), f"the environment nox -s build made for stack {stack} ({path})")
    return None


def record(workdir: Path | str, stack: str, python: str, *, dry_run: bool) -> None:
    """Write the hand-off after a build session; a dry run keeps an earlier real build of the same interpreter."""
    import time

    from rebuilt.core.fs import write_json

    path = handoff_file(workdir, stack)
    old = _read(path)
    built = not dry_run or (bool(old.get("built")) and old.get("python") == python)
    write_json(path, {"python": python, "stack": stack, "built": built, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


# --------------------------------------------------------------------------- checks


def require_exists(target: Target) -> Target:
    """A target that is about to be run must exist: bad input (exit 2) naming the rule that chose it."""
    if not os.path.exists(target.python):
        raise ConfigError(f"target interpreter {target.python} does not exist (chosen by {target.why})",
                          hint=f"give one that exists: {NAME_IT}")
    return target


def require_runs(target: Target, version: str | None, error: object = None) -> None:
    """The probe of the target (``rebuilt.core.machine``) found no version: bad input (exit 2), also in a dry run."""
    if not version:
        raise ConfigError(f"python {target.python} does not run: {error} (chosen by {target.why})",
                          hint="give --python (or the python setting) an interpreter that exists, by absolute path")
