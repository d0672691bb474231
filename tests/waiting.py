"""Waiting in tests for something another process does: poll, and fail with what was awaited."""

from __future__ import annotations

import time


def wait_until(predicate, timeout: float = 30, what: str = "a condition", step: float = 0.05) -> None:
    """Return once ``predicate()`` is true; AssertionError naming ``what`` after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")
