"""``serve.status`` and ``serve.logs``: what runs, whether it answers, and what it printed."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from rebuilt.core.secret import Redactor
from rebuilt.core.text import fmt_seconds
from rebuilt.errors import ConfigError
from rebuilt.tools.serve import health, procs
from rebuilt.tools.serve.lifecycle import POLL_S, _tail
from rebuilt.tools.serve.state import _state_or_fail, running


def status(settings, name: str, echo: Callable[[str], None] = print) -> bool:
    """Print every role's pid, port, health and uptime; True when all are running and healthy."""
    state = _state_or_fail(settings.workdir(), name)
    rows = [("role", "pid", "port", "state", "health", "uptime", "log")]
    good = True
    for n in state.get("order", list(state["roles"])):
        e = state["roles"].get(n)
        if not e:
            continue
        alive = running(e)
        probe = health.check(e["url"], e.get("health", "/health"), tuple(e.get("ready", ())), timeout=3) \
            if alive else None
        good = good and alive and probe.ok
        uptime = fmt_seconds(time.time() - e.get("started_epoch", time.time())) if alive else "-"
        rows.append((n, str(e["pid"]), str(e["port"]), "running" if alive else _ended(e),
                     probe.detail if probe else "-", uptime, e.get("log", "")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    echo(f"profile {name} (entry {state.get('entry')}, python {state.get('python')})")
    for r in rows:
        echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return good


def _ended(entry: dict) -> str:
    """What a role that no longer runs is: ``stopped`` by serve.down (or a failed serve.up), else ``died``.

    The state file's status is what serve.up last saw; a role killed since then must not show it.
    """
    if entry.get("status") == "stopped" or str(entry.get("status", "")).startswith("exited"):
        return str(entry["status"])
    ticks = entry.get("start_ticks") if isinstance(entry.get("start_ticks"), int) else None
    left = procs.ours(entry.get("pgid") or 0, ticks) if entry.get("pgid") else []
    return "died" + (f" ({len(left)} of its processes still run: inv serve.down)" if left else "")


def logs(settings, name: str, *, role: str | None = None, lines: int = 50, follow: bool = False,
         echo: Callable[[str], None] = print, red: Redactor | None = None) -> None:
    """The last lines of each role's log; with ``follow``, new lines until the roles exit (or Ctrl-C)."""
    state = _state_or_fail(settings.workdir(), name)
    red = red or Redactor()
    names = [role] if role else state.get("order", list(state["roles"]))
    if role and role not in state["roles"]:
        raise ConfigError(f"profile {name} has no started role {role!r}",
                          hint=f"started: {', '.join(state['roles'])}")
    files = {}
    for n in names:
        path = state["roles"][n]["log"]
        if len(names) > 1:
            echo(f"==> {n} ({path}) <==")
        echo(red(_tail(path, lines)).rstrip("\n"))
        files[n] = open(path, encoding="utf-8", errors="replace") if os.path.exists(path) else None
        if files[n]:
            files[n].seek(0, os.SEEK_END)
    try:
        while follow:  # Ctrl-C ends following quietly, like tail -f
            for n, f in files.items():
                chunk = f.read() if f else ""
                if chunk:
                    echo(red(chunk).rstrip("\n") if len(names) == 1 else
                         "\n".join(f"{n}| {line}" for line in red(chunk).rstrip("\n").splitlines()))
            if not any(running(state["roles"][n]) for n in names):
                echo("(every role followed has exited)")
                return
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        return
    finally:
        for f in files.values():
            if f:
                f.close()
