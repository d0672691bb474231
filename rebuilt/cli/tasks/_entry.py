"""The one place where task code turns rebuilt's errors into an exit status and a message."""

from __future__ import annotations

import functools
import sys

from invoke import Exit

from rebuilt.cli.tasks import _argv
from rebuilt.core.command import as_typed
from rebuilt.errors import RebuiltError

HELP_FLAGS = ("--help", "-h")
INVOKE_FILES = ("invoke.yaml", "invoke.yml", "invoke.json")


def checked_namespace(project):
    """The root namespace, once the invoke configuration files are known to be usable.

    invoke loads ``<project>/invoke.yaml`` after importing tasks.py and shows its own traceback
    for a malformed one (every command, ``inv --list`` included); this checks it, and the user's
    ``~/.invoke.yaml``, first: one message naming the file and line, exit 2.
    """
    from pathlib import Path

    from rebuilt.cli.tasks import namespace

    try:
        for folder, names in ((Path(project), INVOKE_FILES), (Path.home(), tuple("." + n for n in INVOKE_FILES))):
            for name in names:
                if (folder / name).is_file():
                    from rebuilt.core.invokefile import read_invoke_file  # only when there is a file to check

                    read_invoke_file(folder / name)
        root = namespace()
        _argv.named_only(sys.argv[1:], root.task_names)  # what `inv` was asked, as typed
        return root
    except RebuiltError as err:
        print(f"rebuilt: {err.render()}", file=sys.stderr)
        raise SystemExit(err.exit_code) from None


_OS_HINTS = {
    "EACCES": "choose a path you can write to (or read), e.g. under your home folder",
    "EPERM": "choose a path you can write to (or read), e.g. under your home folder",
    "EROFS": "the file system is read-only: choose a folder on a writable one",
    "ENOSPC": "the disk is full: free some space or choose a folder on another disk",
    "EDQUOT": "your disk quota is used up: free some space or choose another folder",
    "EFBIG": "the file grew past what this system allows (disk full or a file size limit)",
    "ENOTDIR": "a part of the path is a file, not a folder: check the path",
    "EISDIR": "the path is a folder: give a file name",
    "ENOENT": "check the path",
    "EEXIST": "something else already has that name: choose another path",
}


def _os_message(err: OSError) -> str:
    import errno

    name = errno.errorcode.get(err.errno or 0, "")
    what = err.filename if err.filename is not None else ""
    text = f"{what}: {err.strerror or err}" if what else f"{err.strerror or err}"
    hint = _OS_HINTS.get(name)
    return f"rebuilt: {text}" + (f"\n  -> {hint}" if hint else "")


def _show_help() -> None:
    """Replace this process with `<program> --help <task>`, the task being the name before --help."""
    import os

    from rebuilt.cli.tasks import namespace

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
            raise Exit(as_typed(f"rebuilt: {err.render()}"), err.exit_code) from None
        except BrokenPipeError:  # `inv ... | head`: the reader is gone, nothing to say
            raise Exit(code=0) from None
        except OSError as err:  # an unusable path (read-only, full, not a folder): bad input, not a crash
            raise Exit(_os_message(err), 2) from None
        except RecursionError:
            raise Exit("rebuilt: an input file is nested too deeply to read\n  -> it is corrupt or not the kind "
                       "of file this task reads", 2) from None
        except KeyboardInterrupt:
            print("rebuilt: interrupted", file=sys.stderr)
            raise Exit(code=130) from None

    return wrapper


_argv.install()  # every program that loads rebuilt's tasks (inv, rebuilt) gets it
