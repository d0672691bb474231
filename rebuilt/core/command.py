"""The name of the running program, for messages that tell the user what to type next.

The same tasks run as ``inv <task>`` in a checkout and as ``rebuilt <task>`` from any folder (a pipx
install has no ``inv``). A hint that says ``inv doctor`` to a `rebuilt` user names a command that may
not exist, so hints are written through ``command()`` (or rewritten once by ``as_typed()`` where a
message is finished), and the `rebuilt` program sets ``PROGRAM`` when it starts.
"""

from __future__ import annotations

import re

PROGRAM = "inv"  # rebuilt/cli/program.py sets "rebuilt"


def command(args: str) -> str:
    """``command("doctor --recipe torch")`` -> ``"rebuilt doctor --recipe torch"`` under `rebuilt`, else ``inv ...``."""
    return f"{PROGRAM} {args}"


def as_typed(message: str) -> str:
    """A message written with ``inv <task>`` commands, rewritten for the program that is running."""
    if PROGRAM == "inv":
        return message
    return re.sub(r"(?<![\w/.-])inv (?=-|[a-z])", f"{PROGRAM} ", message)
