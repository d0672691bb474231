"""The one place where task code turns rebuilt's errors into an exit status and a message."""

from __future__ import annotations

import functools
import sys

from invoke import Exit

from rebuilt.errors import RebuiltError


def entry(fn):
    """Decorate a task body: a RebuiltError becomes ``invoke.Exit(message, code)``, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RebuiltError as err:
            raise Exit(f"rebuilt: {err.render()}", err.exit_code) from None
        except KeyboardInterrupt:
            print("rebuilt: interrupted", file=sys.stderr)
            raise Exit(code=130) from None

    return wrapper
