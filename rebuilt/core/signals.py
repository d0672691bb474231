"""Signals while rebuilt holds a work directory: SIGTERM and SIGHUP handled like Ctrl-C
(``terminate_as_interrupt``), and blocks that must not stop halfway (``deferred_signals``)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP while rebuilt holds a work directory: handled like Ctrl-C (group stopped, manifest)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_deferring = False


def _raise_terminated(signum, _frame):
    raise Terminated(signum)


@contextlib.contextmanager
def terminate_as_interrupt():
    """While a work directory is held, SIGTERM/SIGHUP raise Terminated instead of ending Python silently."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise_terminated) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def deferred_signals(note: str = ""):
    """Hold Ctrl-C, SIGTERM and SIGHUP until the block ends, then raise the first one received.

    For what must not stop halfway (a restore, the end-of-step bookkeeping). ``note`` is
    printed when a signal arrives, saying why it waits.
    """
    global _deferring
    if threading.current_thread() is not threading.main_thread() or _deferring:
        yield  # the outermost block holds and re-raises
        return
    pending: list[int] = []

    def hold(signum, _frame):
        if not pending and note:
            os.write(2, f"rebuilt: {signal.Signals(signum).name} received; {note}\n".encode())
        pending.append(signum)

    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, hold) for s in sigs}
    _deferring = True
    try:
        yield
    finally:
        _deferring = False
        for s, handler in previous.items():
            signal.signal(s, handler)
    if pending:
        raise KeyboardInterrupt() if pending[0] == signal.SIGINT else Terminated(pending[0])
