"""invoke's own options typed where a task's flag was meant, under ``inv``: one message, exit 2.

``inv`` parses its core options before it loads any tasks. Two of them take a value that collides
with a task flag of the same letter: ``-D`` (``--list-depth``, cast with ``int()`` outside invoke's
ParseError handling, so ``inv -D sgl-kernel.nvcc_threads=4 build.sgl-kernel`` was a traceback) and
``-r`` (``--search-root``: ``inv -r v1 build.torch`` said "Can't find any collection named
'tasks'!"). ``-p``, ``-w`` and ``-f`` are caught later, once the tasks are loaded
(rebuilt/cli/tasks/_argv.py). This module runs earlier, from ``rebuilt-inv.pth`` (installed by
setup.py into site-packages; it does nothing unless the program is ``inv``/``invoke`` and the
``tasks.py`` invoke will load from the current folder is rebuilt's), and wraps invoke's core-option
parse with the same checks.

It also ends ``inv --list | head`` (and ``inv --help TASK | head``) quietly: invoke 2.2's
``Program.run`` prints the list and help itself, outside any task, where a reader's closed pipe
ended in a BrokenPipeError traceback. ``rebuilt``'s own entry point (rebuilt/cli/program.py) does the same.
"""

from __future__ import annotations

import os
from pathlib import Path

PROGRAMS = ("inv", "invoke")
MARK = "rebuilt.cli.tasks"  # what rebuilt's tasks.py imports


def rebuilt_tasks_here(start: Path | None = None) -> Path | None:
    """The folder of the ``tasks.py`` invoke finds from ``start`` upward, when it is rebuilt's; else None."""
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        tasks = candidate / "tasks.py"
        if tasks.is_file():
            try:
                return candidate if MARK in tasks.read_text(errors="replace") else None
            except OSError:
                return None
    return None


def _suspect(argv: list[str]) -> bool:
    """Is there a ``-D`` whose value is not a number, or an ``-r`` whose value is no folder?"""
    for flag, value in zip(argv, argv[1:]):
        if flag == "-D" and not value.lstrip("-").isdigit():
            return True
        if flag == "-r" and not os.path.isdir(value):
            return True
    return False


def early_misplaced(argv: list[str]) -> str | None:
    """The message for a task flag that invoke would take as ``-D``/``-r`` (only read when suspect)."""
    if not _suspect(argv):
        return None
    from invoke.parser import Parser

    from rebuilt.cli.tasks import _argv, namespace

    return _argv.misplaced(argv, Parser(contexts=namespace().to_contexts()).contexts)  # invoke's names and aliases


def is_invoke(orig_argv: list[str]) -> bool:
    """Is this interpreter running invoke's program (``inv``, ``invoke``, ``python -m invoke``)?"""
    return any(os.path.basename(a) in PROGRAMS for a in orig_argv[1:3])


def install() -> None:
    """Wrap invoke's core-option parse, when ``inv`` is about to load rebuilt's tasks."""
    import sys

    if not is_invoke(getattr(sys, "orig_argv", [])) or rebuilt_tasks_here() is None:
        return
    from invoke.program import Program

    from rebuilt.cli.tasks import _argv

    _argv.install()  # a value invoke cannot convert is a ParseError, told in rebuilt's words, exit 2
    plain = Program.parse_core_args
    if getattr(plain, "_rebuilt", False):
        return

    def parse_core_args(self) -> None:
        wrong = early_misplaced(list(self.argv[1:]))
        if wrong:
            raise _argv.BadCommandLine(wrong)
        return plain(self)

    parse_core_args._rebuilt = True
    Program.parse_core_args = parse_core_args
    plain_run = Program.run

    def run(self, *args, **kwargs):
        try:
            return plain_run(self, *args, **kwargs)
        except BrokenPipeError:  # the reader of stdout is gone (`inv --list | head`): nothing to say
            reader_gone()

    Program.run = run


def reader_gone() -> None:
    """Exit 0 without a word, and without Python's own note when it flushes the closed stdout at exit."""
    import sys

    sys.stderr.close()
    raise SystemExit(0) from None
