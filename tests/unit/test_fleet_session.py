"""How a remote command's end is read: invoke's timer, a channel that closed without an exit status."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from rebuilt.tools.fleet.inventory import FleetHost
from rebuilt.tools.fleet.run import Session, StepError


class Conn:
    """A fabric Connection stand-in: ``run`` takes ``seconds`` and ends with ``exited``, or raises ``raises``."""

    def __init__(self, seconds: float, exited: int = 0, raises: BaseException | None = None):
        self.seconds, self.exited, self.raises = seconds, exited, raises
        self.lines: list[str] = []

    def run(self, line, **kw):
        self.lines.append(line)
        time.sleep(self.seconds)
        if self.raises:
            raise self.raises
        return SimpleNamespace(exited=self.exited, stdout="", stderr="")


def session(conn, timeout: float = 0.2) -> tuple[Session, list[str]]:
    killed: list[str] = []
    s = Session(FleetHost(name="h1", host="127.0.0.1"), conn, timeout=timeout, run_id="r")
    s.kill_all = lambda: killed.append("all")  # the real one opens a channel to the host
    return s, killed


def test_a_channel_closed_at_the_limit_is_the_timeout_even_when_invoke_does_not_say_so():
    """invoke's Runner.timed_out is False while its timer thread is still closing the channel."""
    s, killed = session(Conn(0.25, exited=-1))
    with pytest.raises(StepError, match=r"^h1: no end within 0\.2s; its processes were stopped$") as err:
        s.sh("sleep 60")
    assert err.value.status == "timeout" and "fleet.timeout" in err.value.todo and killed == ["all"]


def test_invokes_own_timeout_is_the_timeout():
    from invoke.exceptions import CommandTimedOut

    s, killed = session(Conn(0.0, raises=CommandTimedOut(SimpleNamespace(), timeout=0.2)))
    with pytest.raises(StepError) as err:
        s.sh("sleep 60")
    assert err.value.status == "timeout" and killed == ["all"]


def test_a_channel_closed_before_the_limit_is_a_lost_connection():
    s, killed = session(Conn(0.0, exited=-1), timeout=60)  # far from the limit even on a loaded machine
    with pytest.raises(EOFError, match="without an exit status"):
        s.sh("true")
    assert killed == []


def test_an_exit_status_is_the_result():
    s, killed = session(Conn(0.0, exited=3), timeout=60)
    assert s.sh("exit 3").exited == 3 and killed == [] and s._pidfiles == set()
