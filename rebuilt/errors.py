"""The error family: one exit code each, caught only at the entry points (tasks, sessions)."""

from __future__ import annotations


class RebuiltError(Exception):
    """A failure the user can act on. ``str(err)`` is the whole message, no traceback."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None):
        self.hint = hint
        super().__init__(message)

    def render(self) -> str:
        text = str(self)
        return f"{text}\n  -> {self.hint}" if self.hint else text


class ConfigError(RebuiltError):
    """A setting, stack or recipe file is malformed, unknown or missing."""


class InputError(RebuiltError):
    """A file given on the command line is unusable (corrupt wheel, not a trace, ...)."""


class ToolMissing(RebuiltError):
    """A program a step or check needs is not installed."""


class SourceError(RebuiltError):
    """A checkout, ref or patch problem."""


class CheckFailed(RebuiltError):
    """A pre-build check (doctor) failed."""

    exit_code = 3


class StepFailed(RebuiltError):
    """A build step exited non-zero."""

    exit_code = 1


class GuardViolation(RebuiltError):
    """A step changed a protected distribution (torch & co)."""

    exit_code = 4


class Interrupted(RebuiltError):
    """Ctrl-C: the child process group was stopped."""

    exit_code = 130
