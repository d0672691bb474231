"""One step on every host at once, each host's failure its own, and nothing left behind on any host.

Fabric's ``ThreadingGroup`` runs one command line on every host; a fleet step differs per host (work
dir, interpreter, files to ship), so each host gets a thread with its own ``fabric.Connection``, the same
model ThreadingGroup uses. Every remote command runs under the login shell sshd starts for the channel,
which is the leader of a new session and process group (OpenSSH's session.c calls setsid() for each
command): the shell writes its pid to a file first, so the whole group can be killed through a second
channel on Ctrl-C or when the host's time (``fleet.timeout``) runs out.
"""

from __future__ import annotations

import concurrent.futures as cf
import shlex
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rebuilt.tools.fleet import connect
from rebuilt.tools.fleet.inventory import FleetHost

FINISHED = ("ok", "kept")  # a host that got this far need not run the step again
# pgids from the pid files; each signal sent to the groups still alive, waiting up to N tenths of a second
KILL_GROUPS = """pgs=""; for f in FILES; do [ -f "$f" ] && pgs="$pgs $(cat "$f")"; done
alive() { for g in $pgs; do kill -0 -- -$g 2>/dev/null && return 0; done; return 1; }
for step in INT:30 TERM:20 KILL:0; do
  alive || break
  for g in $pgs; do kill -${step%%:*} -- -$g 2>/dev/null; done
  n=0; while [ $n -lt ${step##*:} ] && alive; do sleep 0.1; n=$((n+1)); done
done
rm -f FILES
# what escaped the groups (a command rebuilt ran in a session of its own while it was being stopped):
# every process still carrying this session's mark in its environment
left() { grep -lzxF -e MARK /proc/[0-9]*/environ 2>/dev/null | sed 's#^/proc/\\([0-9]*\\)/environ$#\\1#'; }
for sig in TERM KILL; do pids=$(left); [ -z "$pids" ] && break; kill -$sig $pids 2>/dev/null; sleep 0.5; done
true"""


@dataclass
class HostResult:
    host: FleetHost
    status: str  # ok | failed | unreachable | refused | lost | timeout | interrupted | kept
    value: Any = None
    message: str = ""
    todo: str = ""
    seconds: float = 0.0

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class StepError(Exception):
    """A remote step ended badly; ``status`` says how (failed, timeout, lost)."""

    def __init__(self, status: str, message: str, todo: str = ""):
        super().__init__(message)
        self.status, self.todo = status, todo


@dataclass
class Session:
    """One host's connection and the remote process groups it started."""

    host: FleetHost
    conn: Any
    timeout: float
    run_id: str
    rundir: str = ""  # <remote workdir>/fleet/run, known after the first command
    _pidfiles: set = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sh(self, command: str, timeout: float | None = None, env_file: str | None = None):
        """Run ``command`` (a shell line) in its own process group; the invoke Result (warn=True)."""
        from invoke.exceptions import CommandTimedOut

        pidfile = f"{self.rundir or '/tmp'}/{self.run_id}-{uuid.uuid4().hex[:8]}.pid"
        source = f". {shlex.quote(env_file)} && " if env_file else ""
        line = (f"export {shlex.quote(self.mark)}; "
                f"mkdir -p {shlex.quote(pidfile.rsplit('/', 1)[0])} && echo $$ > {shlex.quote(pidfile)} && "
                f"{{ {source}{command}; }}; rc=$?; rm -f {shlex.quote(pidfile)}; exit $rc")
        with self._lock:
            self._pidfiles.add(pidfile)
        limit = timeout or self.timeout
        started = time.monotonic()
        try:
            result = self.conn.run(line, hide=True, warn=True, in_stream=False, timeout=limit)
        except CommandTimedOut:
            result = None
        finally:
            with self._lock:
                self._pidfiles.discard(pidfile)
        # invoke's timer closes the channel; a result without an exit status at the limit is that timer too
        # (invoke's Runner.timed_out is False while the timer thread is still finishing: seen under load)
        if result is None or (result.exited == -1 and time.monotonic() - started >= limit):
            self.kill_all()
            raise StepError("timeout", f"{self.host.name}: no end within {limit:g}s; its processes were stopped",
                            "look at the host (load, disk, a hung GPU), or raise --set fleet.timeout=SECONDS")
        if result.exited == -1:  # the channel closed without an exit status: the host or the link went away
            raise EOFError("the channel closed without an exit status")
        return result

    @property
    def mark(self) -> str:
        """The environment entry every process this session starts on the host inherits."""
        return f"REBUILT_FLEET_RUN={self.run_id}-{self.host.name}"

    def kill_all(self) -> None:
        """Stop every process group this session started on the host, over a new channel: SIGINT (rebuilt
        stops its own children's groups then, as on Ctrl-C), SIGTERM after 3s, SIGKILL after 2s more; then
        any process still carrying the session's mark (one that had left the groups)."""
        with self._lock:
            pidfiles = sorted(self._pidfiles)
        files = " ".join(shlex.quote(p) for p in pidfiles) or "/dev/null/none"
        line = KILL_GROUPS.replace("FILES", files).replace("MARK", shlex.quote(self.mark))
        try:
            self.conn.client.exec_command(line, timeout=15)[1].channel.recv_exit_status()
        except Exception:  # noqa: BLE001 - a host already gone has nothing left to stop
            pass

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass


def run_all(hosts: list[FleetHost], step: Callable[[Session], Any], *, connect_timeout: float, timeout: float,
            run_id: str, on_result: Callable[[HostResult], None] | None = None,
            fail_fast: bool = False) -> list[HostResult]:
    """``step(session)`` on every host in parallel; a result per host, in the hosts' order.

    Ctrl-C stops every host's remote processes and raises KeyboardInterrupt after that; with
    ``fail_fast`` the first host that fails stops the others the same way (their status: stopped).
    """
    stopped_by: list[str] = []
    sessions: dict[str, Session] = {}
    results: dict[str, HostResult] = {}

    def one(host: FleetHost) -> HostResult:
        start = time.monotonic()
        conn = connect.connection(host, connect_timeout)
        session = Session(host, conn, timeout, run_id)
        sessions[host.name] = session
        try:
            conn.open()
        except Exception as exc:  # noqa: BLE001 - named, the others go on
            status, message, todo = connect.explain(exc, host, conn, connect_timeout, opened=False)
            session.close()
            return HostResult(host, status, None, message, todo, time.monotonic() - start)
        try:
            value = step(session)
            return HostResult(host, "ok", value, seconds=time.monotonic() - start)
        except StepError as exc:
            return HostResult(host, exc.status, None, str(exc), exc.todo, time.monotonic() - start)
        except Exception as exc:  # noqa: BLE001 - every host's failure is named, the others go on
            status, message, todo = connect.explain(exc, host, conn, connect_timeout)
            return HostResult(host, status, None, message, todo, time.monotonic() - start)
        finally:
            session.close()

    pool = cf.ThreadPoolExecutor(max_workers=max(1, min(64, len(hosts))), thread_name_prefix="fleet")
    futures = {pool.submit(one, h): h for h in hosts}
    try:
        pending = set(futures)
        while pending:
            done, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                res = fut.result()
                if stopped_by and res.status != "ok":
                    res = HostResult(res.host, "stopped", None, f"{res.host.name}: stopped (--fail-fast) after "
                                     f"{stopped_by[0]} failed", "run again without --fail-fast, or fix that host first",
                                     res.seconds)
                results[res.host.name] = res
                if on_result:
                    on_result(res)
                if fail_fast and res.status != "ok" and not stopped_by:
                    stopped_by.append(res.host.name)
                    for name, session in list(sessions.items()):
                        if name not in results:
                            session.kill_all()
                            session.close()
    except KeyboardInterrupt:
        for name, session in list(sessions.items()):
            if name not in results:
                session.kill_all()
                session.close()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return [results[h.name] for h in hosts]
