"""A serving profile's roles placed on hosts: each role started by rebuilt's own ``serve.up --role R`` on
its host, then status, logs, smoke and down on every host of the running profile.

Every role runs on its host as it would when started there by hand: detached in its own session and
process group, its readiness checked through its health endpoints by ``serve.up`` there, ``{host_ip}``
that host's own address, its log and state in that host's work dir. Which role runs where is kept here,
in ``<workdir>/fleet/serve/<profile>.json``, so the later commands need no ``--hosts``. Every role
must be placed (the aiak layout: prefill on one node, decode on another); a role started here that
talks to roles on other hosts (upstream PD's router) is not supported yet.
If one role does not come up, or on Ctrl-C, the roles already started are stopped on every host.
"""

from __future__ import annotations

import json
from pathlib import Path

from rebuilt.core import fs
from rebuilt.errors import ConfigError, StepFailed
from rebuilt.tools.fleet import command, inventory, remote, ship
from rebuilt.tools.fleet.run import Session


def placement(settings, text: str, roles: list[str]) -> dict[str, inventory.FleetHost]:
    """``prefill=node1,decode=node2`` -> role -> host; every role of the profile placed, each once."""
    out: dict[str, inventory.FleetHost] = {}
    for item in (p.strip() for p in (text or "").split(",") if p.strip()):
        role, eq, pattern = item.partition("=")
        if not eq or role not in roles:
            raise ConfigError(f"--hosts {item!r}: expected ROLE=HOST with ROLE one of {', '.join(roles)}",
                              hint="e.g. --hosts prefill=node1,decode=node2")
        hosts = inventory.select(settings, pattern)
        if len(hosts) != 1:
            raise ConfigError(f"--hosts {item!r}: a role runs on one host, {pattern!r} names {len(hosts)}")
        out[role] = hosts[0]
    missing = [r for r in roles if r not in out]
    if missing:
        raise ConfigError(f"--hosts: no host for role(s) {', '.join(missing)}",
                          hint="place every role (a role on this host beside remote ones is not supported yet)")
    return out


def _path(settings, profile: str) -> Path:
    return settings.workdir() / "fleet" / "serve" / f"{Path(profile).stem}.json"


def saved(settings, profile: str) -> dict[str, inventory.FleetHost]:
    path = _path(settings, profile)
    if not path.is_file():
        raise ConfigError(f"profile {profile} was not started on hosts from this work dir ({path} is missing)",
                          hint="start it with inv fleet.serve-up PROFILE --hosts ROLE=HOST,...")
    data = json.loads(path.read_text())
    return {role: inventory.FleetHost(**h) for role, h in data["roles"].items()}


def _on_hosts(settings, profile: str, roles: dict, task: str, argv_of, echo, timeout: float | None = None):
    """``rebuilt <argv_of(role)>`` on each role's host in parallel; the outcome."""
    args, secrets = remote.passed_settings(settings)
    archive = ship.archive(settings.workdir() / "fleet" / "ship")
    by_host: dict[str, list[str]] = {}
    for role, host in roles.items():
        by_host.setdefault(host.name, []).append(role)
    hosts = {h.name: h for h in roles.values()}

    def step(session: Session) -> list[dict]:
        place = remote.hello(session, settings)
        place.tree = ship.ensure(session, place.workdir, *archive)
        out = []
        for role in by_host[session.host.name]:
            r = remote.rebuilt(session, place, [*argv_of(role), "-w", place.workdir, *args], secrets, timeout)
            out.append({"role": role, "exit": r.exited, "output": (r.stdout + r.stderr).rstrip()})
        return out

    return command.run(task, settings, list(hosts.values()), step, [task, profile], force=True, echo=echo)


def up(settings, profile: str, placed: dict, *, echo=print) -> None:
    """Start every role on its host; on a failure or Ctrl-C stop every role that came up."""
    path = _path(settings, profile)
    fs.private_dir(path.parent)
    fs.write_text(path, json.dumps({"profile": profile, "roles": {r: h.__dict__ for r, h in placed.items()}}))
    try:
        outcome = _on_hosts(settings, profile, placed, "serve-up",
                            lambda role: ["serve.up", profile, "--role", role, "--python", _py(placed[role], settings)],
                            echo)
    except BaseException:
        echo("stopping the roles that came up, on every host")
        down(settings, profile, echo=echo, quiet=True)
        raise
    show(outcome, echo)
    bad = [r for res in outcome.results for r in (res.value or []) if r["exit"] != 0] + outcome.unfinished
    if bad:
        echo("stopping the roles that came up, on every host")
        down(settings, profile, echo=echo, quiet=True)
        raise StepFailed(f"profile {profile} did not come up on every host (see above); nothing is left running",
                         hint="fix what the failing role's lines say, then start it again")
    echo(f"{Path(profile).stem} is up: " + ", ".join(f"{r} on {h.name}" for r, h in placed.items()))


def _py(host, settings) -> str:
    return host.python or settings["fleet.python"] or "python3"


def act(settings, profile: str, what: str, extra: list[str], echo=print) -> bool:
    """status / logs / smoke on every host of the running profile; False when a host's command failed."""
    roles = saved(settings, profile)
    if what == "serve.smoke":  # one request, through the profile's entry role (its host)
        from rebuilt.tools.serve import profile as profile_mod

        entry = profile_mod.load(profile).entry
        roles = {entry: roles[entry]} if entry in roles else roles
    outcome = _on_hosts(settings, profile, roles, what.replace(".", "-"),
                        lambda role: [what, "--profile", profile, *(["--role", role] if what == "serve.logs" else []),
                                      *extra], echo)
    show(outcome, echo)
    return not outcome.unfinished and all(r["exit"] == 0 for res in outcome.results for r in (res.value or []))


def down(settings, profile: str, echo=print, quiet: bool = False) -> None:
    """Stop every role on every host of the profile; the placement is forgotten when all are stopped."""
    roles = saved(settings, profile)
    outcome = _on_hosts(settings, profile, roles, "serve-down",
                        lambda role: ["serve.down", "--profile", profile, "--role", role], echo)
    if not quiet:
        show(outcome, echo)
    if outcome.unfinished:
        raise StepFailed(f"could not reach every host of {profile}: its roles there may still run",
                         hint="run fleet.serve-down again once the host answers")
    _path(settings, profile).unlink(missing_ok=True)


def show(outcome, echo) -> None:
    for res in outcome.results:
        for r in res.value or []:
            echo(f"--- {r['role']} on {res.host.name} (exit {r['exit']})")
            if r["output"]:
                echo(r["output"])
