"""The one place where task code turns rebuilt's errors into an exit status and a message."""

from __future__ import annotations

import functools
import sys

from invoke import Exit

from rebuilt.errors import RebuiltError


HELP_FLAGS = ("--help", "-h")


def _show_help() -> None:
    """Replace this process with `<program> --help <task>`, the task being the name before --help."""
    import os

    from rebuilt.tasks import namespace

    argv = sys.argv
    names = set(namespace().task_names)
    at = next(i for i, a in enumerate(argv) if a in HELP_FLAGS)
    task = next((a for a in reversed(argv[:at]) if a in names), None)
    if argv[0].endswith("__main__.py"):
        program = [sys.executable, "-m", "invoke"]  # python -m invoke
    elif argv[0].endswith(".py"):
        program = [sys.executable, argv[0]]  # python -m rebuilt.cli
    else:
        program = [argv[0]]  # inv, rebuilt
    sys.stdout.flush()
    os.execvp(program[0], [*program, "--help", *([task] if task else [])])


def entry(fn):
    """Decorate a task body: a RebuiltError becomes ``invoke.Exit(message, code)``, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if any(isinstance(v, str) and v in HELP_FLAGS for v in (*args[1:], *kwargs.values())):
            _show_help()  # `inv profile.summary --help`: the parser gave --help to a positional argument
        try:
            return fn(*args, **kwargs)
        except RebuiltError as err:
            raise Exit(f"rebuilt: {err.render()}", err.exit_code) from None
        except KeyboardInterrupt:
            print("rebuilt: interrupted", file=sys.stderr)
            raise Exit(code=130) from None

    return wrapper
