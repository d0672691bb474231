"""Start and stop a profile's roles (``serve.up``, ``serve.down``); state in ``rebuilt.tools.serve.state``.

Each role runs in its own session and process group, its output written to
``<workdir>/serve/<profile>/logs/<role>.log`` by ``rebuilt.tools.serve.logpipe`` with secrets masked.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from rebuilt.core import interpreter, runner
from rebuilt.core.command import command
from rebuilt.core.fs import mark_cachedir
from rebuilt.core.secret import Redactor, from_settings, secret_env
from rebuilt.core.text import fmt_seconds
from rebuilt.errors import ConfigError, StepFailed
from rebuilt.tools.serve import health, procs, resolve
from rebuilt.tools.serve import profile as profile_mod
from rebuilt.tools.serve.logpipe import ENV as REDACT_ENV
from rebuilt.tools.serve.state import _state_or_fail, load_state, locked, now, running, save_state, serve_dir

TAIL = 30
POLL_S = 0.5


def choose_python(settings, flag: str | None) -> str:
    """--python, else setting python, else the environment `nox -s build` made for the stack, else the user's
    active environment (rebuilt/core/interpreter.py); it must exist."""
    return interpreter.require_exists(settings.target(flag, handoff=True)).python


def dry_run_text(res: resolve.Resolved) -> str:
    import shlex

    red = res.redactor
    lines = [f"# profile {res.profile.name} ({res.profile.path}): {res.profile.summary}",
             f"# python {res.python}; host_ip {res.host_ip}; entry {res.profile.entry}"]
    for r in res.roles:
        lines += ["", f"# role {r.name}: port {r.port}, health {r.health or '-'} then "
                      f"{' or '.join(r.ready) or '-'}" + (f", after {', '.join(r.after)}" if r.after else "")]
        lines.append(f"cd {shlex.quote(r.cwd)}")
        for k, v in red.env(r.env).items():
            lines.append(f"unset {k}" if v is None else f"export {k}={shlex.quote(v)}")
        lines.append(red(shlex.join(r.argv)))
    return "\n".join(lines)


def _tail(path: str, n: int = TAIL) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(deque(f, maxlen=n))
    except OSError:
        return "(no log)"


def _check_ports(roles: list[resolve.Role], red: Redactor) -> None:
    """Every port a role listens on is free, and no two roles share one (on this host)."""
    seen: dict[int, str] = {}
    for r in roles:
        for port in (r.port, *r.ports):
            if port in seen:
                raise ConfigError(f"roles {seen[port]} and {r.name} both use port {port} on this host",
                                  hint="start one role per host with --role, or give them different ports "
                                       "(serve.prefill_port, serve.decode_port, ...)")
            seen[port] = r.name
            holder = procs.port_holder(port)
            if holder:
                raise ConfigError(f"port {port} (role {r.name}) is already in use by {red(holder)}",
                                  hint="stop that process (inv serve.down if it is a profile), or choose another "
                                       "port with --set serve.<setting>=N")


def _start(res: resolve.Resolved, r: resolve.Role, logs: Path, red: Redactor):
    log = logs / f"{r.name}.log"
    if log.exists():
        os.replace(log, logs / f"{r.name}.log.1")
    env = runner.step_environment(os.environ, r.env)
    env.setdefault("PYTHONUNBUFFERED", "1")  # print() lines reach the log as they happen, not at exit
    for k in r.env:
        if env.get(k) and secret_env(k):
            red.add(env[k])  # a secret taken from the caller's environment (${NAME})
    env[REDACT_ENV] = json.dumps(red.values())
    with os.fdopen(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as f:
        f.write(f"# rebuilt serve.up {res.profile.name}/{r.name} at {now()}\n# cwd {r.cwd}\n"
                f"# $ {red(' '.join(r.argv))}\n")
    proc = runner.spawn_detached([sys.executable, "-m", "rebuilt.tools.serve.logpipe", "--", *r.argv],
                                 cwd=r.cwd, env=env, log=log)
    return proc, str(log), red.env({k: env.get(k) for k in r.env})  # as the role got it, ${VAR} expanded


def up(settings, name: str, *, role: str | None = None, python: str | None = None, timeout: float | None = None,
       dry_run: bool = False, echo: Callable[[str], None] = print) -> dict:
    """Start the roles (all, or one) in order; return once every one is ready, or stop them and fail."""
    prof = profile_mod.load(name)
    py = choose_python(settings, python)
    workdir = settings.workdir()
    res = resolve.resolve(prof, settings, python=py, workdir=str(workdir), only=role)
    if dry_run:
        echo(dry_run_text(res))
        echo("(dry run: nothing was started)")
        return {}
    for r in res.roles:
        empty = [a for a, b in zip(r.argv, r.argv[1:]) if a.startswith("--") and b == ""]
        if empty:
            raise ConfigError(f"role {r.name}: {empty[0]} is empty in {prof.path}",
                              hint="set the setting it takes its value from, e.g. serve.model_path in invoke.yaml")
    timeout = float(timeout if timeout is not None else settings["serve.timeout"])
    with locked(workdir, prof.name):
        return _up(settings, prof, res, workdir, timeout, echo)


def _up(settings, prof, res: resolve.Resolved, workdir: Path, timeout: float, echo) -> dict:
    red = res.redactor
    state = load_state(workdir, prof.name)
    for r in res.roles:
        entry = state.get("roles", {}).get(r.name)
        if entry and running(entry):
            raise ConfigError(f"role {r.name} of profile {prof.name} is already running (pid {entry['pid']})",
                              hint=f"{command(f'serve.down --profile {prof.name} --role {r.name}')} first")
    _check_ports(res.roles, red)
    logs = mark_cachedir(serve_dir(workdir, prof.name) / "logs")
    described = res.describe()
    state.update({k: described[k] for k in ("profile", "path", "entry", "python", "host_ip")}, model=res.model)
    state.setdefault("roles", {})
    state["order"] = [n for n in state.get("order", []) if n not in {r.name for r in res.roles}] + \
        [r.name for r in res.roles]
    procs_by_role: dict[str, object] = {}
    deadline = time.monotonic() + timeout
    try:
        waited: set[str] = set()
        for r in res.roles:
            earlier = [d for d in r.after if d not in procs_by_role and running(state["roles"].get(d) or {})]
            for d in r.after:
                if d not in procs_by_role and d not in earlier:
                    echo(f"{r.name} is meant to start after {d}, which does not run here (another host?)")
            waits = [d for d in r.after if d in procs_by_role or d in earlier]
            if set(waits) - waited:
                _wait(red, sorted(set(waits) - waited), procs_by_role, state, deadline, echo)
                waited |= set(waits)
            proc, log, env = _start(res, r, logs, red)
            procs_by_role[r.name] = proc
            state["roles"][r.name] = {**described["roles"][r.name], "env": env, "pid": proc.pid, "pgid": proc.pid,
                                      "start_ticks": procs.start_ticks(proc.pid), "log": log, "started": now(),
                                      "started_epoch": time.time(), "health": r.health, "ready": list(r.ready),
                                      "status": "starting"}
            save_state(workdir, prof.name, state, red)
            echo(f"started {r.name}: pid {proc.pid}, port {r.port}, log {log}")
        _wait(red, [r.name for r in res.roles if r.name not in waited], procs_by_role, state, deadline, echo)
    except (StepFailed, KeyboardInterrupt):
        echo("stopping the roles started ...")
        for r in reversed(res.roles):
            if r.name in procs_by_role:
                procs.stop(procs_by_role[r.name].pid, ticks=state["roles"][r.name]["start_ticks"],
                           grace=float(settings["serve.stop_grace"]))
                state["roles"][r.name]["status"] = "stopped"
        save_state(workdir, prof.name, state, red)
        raise
    for r in res.roles:
        state["roles"][r.name]["status"] = "ready"
    path = save_state(workdir, prof.name, state, red)
    echo(f"{prof.name} is ready: {res.role(prof.entry).url if prof.entry in procs_by_role else res.roles[-1].url} "
         f"(state {path})")
    return state


def _exit_code(name: str, procs_by_role: dict, entry: dict) -> int | None:
    """The exit status of a role this call started (None while it runs); -1 for an earlier one now gone."""
    if name in procs_by_role:
        return procs_by_role[name].poll()
    return None if running(entry) else -1


def _wait(red: Redactor, names: list[str], procs_by_role: dict, state: dict, deadline: float, echo) -> None:
    """Poll until each named role answers its health endpoints; fail on exit or deadline with its log tail.

    Roles this call started are watched through their process; roles an earlier ``serve.up
    --role`` started are found in the state file.
    """
    pending = list(names)
    last: dict[str, str] = {}
    t0 = time.monotonic()
    while pending:
        for name in list(pending):
            entry = state["roles"][name]
            code = _exit_code(name, procs_by_role, entry)
            if code is not None:
                entry["status"] = f"exited {code}" if code >= 0 else "stopped"
                raise StepFailed(f"role {name} exited with status {code} before it was ready; "
                                 f"last lines of {entry['log']}:\n{red(_tail(entry['log']))}")
            p = health.check(entry["url"], entry.get("health", "/health"), tuple(entry.get("ready", ())),
                             timeout=max(0.1, min(5.0, deadline - time.monotonic())))
            last[name] = p.detail
            if p.ok:
                pending.remove(name)
                entry["status"] = "ready"
                echo(f"ready {name} after {fmt_seconds(time.monotonic() - t0)} ({p.detail})")
        if not pending:
            return
        if time.monotonic() > deadline:
            log = state["roles"][pending[0]]["log"]
            raise StepFailed(f"role {pending[0]} was not ready before the deadline ({last.get(pending[0])}); "
                             f"last lines of {log}:\n{red(_tail(log))}")
        time.sleep(POLL_S)


def down(settings, name: str, *, role: str | None = None, echo: Callable[[str], None] = print) -> None:
    """Stop each role's whole session (SIGINT, SIGTERM, SIGKILL) in reverse start order."""
    workdir = settings.workdir()
    _state_or_fail(workdir, name)
    with locked(workdir, name):
        _down(settings, workdir, name, role, echo)


def _down(settings, workdir: Path, name: str, role: str | None, echo) -> None:
    state = _state_or_fail(workdir, name)
    order = [n for n in state.get("order", list(state["roles"])) if n in state["roles"]]
    if role and role not in state["roles"]:
        raise ConfigError(f"profile {name} has no started role {role!r}", hint=f"started: {', '.join(order)}")
    for n in reversed([role] if role else order):
        entry = state["roles"][n]
        ticks = entry.get("start_ticks") if isinstance(entry.get("start_ticks"), int) else None
        if not procs.ours(entry["pgid"], ticks):
            reused = procs.alive(entry["pgid"]) and not running(entry)
            echo(f"{n}: not running" + (f" (pid {entry['pgid']} is now another program's: left alone)"
                                        if reused else ""))
        else:
            how = procs.stop(entry["pgid"], ticks=ticks, grace=float(settings["serve.stop_grace"]), say=echo)
            echo(f"stopped {n} (pid {entry['pid']}): {how}")
        entry["status"] = "stopped"
    save_state(workdir, name, state, from_settings((k, v.value) for k, v in settings.items()))
