"""A serving profile's roles placed on hosts: each placed role started by rebuilt's own ``serve.up --role R``
on its host, a role placed nowhere started here (upstream PD's router in front of prefill and decode nodes),
then status, logs, smoke and down on every host of the running profile, this one included.

Every role runs on its host as it would when started there by hand: detached in its own session and
process group, its readiness checked through its health endpoints by ``serve.up`` there, ``{host_ip}``
that host's own address, its log and state in that host's work dir. The roles here start after those on
the hosts, with ``serve.addresses`` naming where each remote role answers (its host's ``{host_ip}``), so
the router's ``{role.prefill.url}`` reaches prefill on its node. Which role runs where is kept here, in
``<workdir>/fleet/serve/<profile>.json``, so the later commands need no ``--hosts``.
If one role does not come up, or on Ctrl-C, the roles already started are stopped on every host.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from rebuilt.core import fs
from rebuilt.core.settings import Value
from rebuilt.errors import ConfigError, StepFailed
from rebuilt.tools.fleet import command, inventory, remote, ship
from rebuilt.tools.fleet.run import Session

LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def placement(settings, text: str, roles: list[str]) -> dict[str, inventory.FleetHost | None]:
    """``prefill=node1,decode=node2`` -> role -> host; a role not named runs here (None)."""
    out: dict[str, inventory.FleetHost | None] = {}
    for item in (p.strip() for p in (text or "").split(",") if p.strip()):
        role, eq, pattern = item.partition("=")
        if not eq or role not in roles:
            raise ConfigError(f"--hosts {item!r}: expected ROLE=HOST with ROLE one of {', '.join(roles)}",
                              hint="e.g. --hosts prefill=node1,decode=node2 (a role not named runs here)")
        if role in out:
            raise ConfigError(f"--hosts: role {role} placed twice", hint="a role runs on one host")
        hosts = inventory.select(settings, pattern)
        if len(hosts) != 1:
            raise ConfigError(f"--hosts {item!r}: a role runs on one host, {pattern!r} names {len(hosts)}")
        out[role] = hosts[0]
    if not out:
        raise ConfigError("--hosts: no role placed on a host", hint="e.g. --hosts prefill=node1,decode=node2")
    return {r: out.get(r) for r in roles}


def _path(settings, profile: str) -> Path:
    return settings.workdir() / "fleet" / "serve" / f"{Path(profile).stem}.json"


def is_placed(settings, profile: str) -> bool:
    """Whether this work dir started the profile on hosts (the serve.* tasks then act on every host)."""
    return _path(settings, profile).is_file()


def saved(settings, profile: str) -> dict[str, inventory.FleetHost | None]:
    path = _path(settings, profile)
    if not path.is_file():
        raise ConfigError(f"profile {profile} was not started on hosts from this work dir ({path} is missing)",
                          hint="start it with inv serve.up PROFILE --hosts ROLE=HOST,...")
    data = json.loads(path.read_text())
    return {role: inventory.FleetHost(**h) if h else None for role, h in data["roles"].items()}


def _on_hosts(settings, profile: str, roles: dict, task: str, argv_of, echo, timeout: float | None = None):
    """``rebuilt <argv_of(role)>`` on each remote role's host in parallel; each role's exit, output, address."""
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
            if task == "serve-up" and r.exited == 0:
                out[-1]["address"] = _address(session, place, profile, role)
        return out

    return command.run(task, settings, list(hosts.values()), step, [task, profile], force=True, echo=echo)


def _address(session: Session, place, profile: str, role: str) -> str:
    """Where another host reaches the role: its bind address, or the host's ``{host_ip}`` when bound to all."""
    with session.conn.sftp().open(f"{place.workdir}/serve/{Path(profile).stem}/state.json") as f:
        state = json.loads(f.read().decode())
    url = state["roles"][role]["url"]
    addr = url.split("//", 1)[1].rsplit(":", 1)[0]
    return state["host_ip"] if addr in LOOPBACK else addr


def _here_needs_them(settings, placed: dict) -> None:
    """Roles here and on hosts: the remote roles must listen on more than their loopback."""
    if any(h is None for h in placed.values()) and any(placed.values()) and settings["serve.host"] in LOOPBACK:
        here = ", ".join(r for r, h in placed.items() if h is None)
        raise ConfigError(f"--hosts: role(s) {here} run here, but the roles on the other hosts would listen on "
                          f"{settings['serve.host']} only (setting serve.host), out of this host's reach",
                          hint="--set serve.host=0.0.0.0 (or the hosts' own interface address)")


def up(settings, profile: str, placed: dict, *, echo=print) -> None:
    """Start every role on its host, then those here; on a failure or Ctrl-C stop every role that came up."""
    from rebuilt.tools.serve import lifecycle
    from rebuilt.tools.serve import profile as profile_mod

    _here_needs_them(settings, placed)
    path = _path(settings, profile)
    fs.private_dir(path.parent)
    fs.write_text(path, json.dumps({"profile": profile,
                                    "roles": {r: h.__dict__ if h else None for r, h in placed.items()}}))
    remote_roles = {r: h for r, h in placed.items() if h}
    here = [r for r in profile_mod.load(profile).order() if placed.get(r, 1) is None]
    try:
        outcome = _on_hosts(settings, profile, remote_roles, "serve-up",
                            lambda role: ["serve.up", profile, "--role", role, "--python",
                                          _py(placed[role], settings)], echo)
        show(outcome, echo)
        done = [r for res in outcome.results for r in (res.value or [])]
        if outcome.unfinished or any(r["exit"] != 0 for r in done):
            raise StepFailed(f"profile {profile} did not come up on every host (see above); nothing is left "
                             "running", hint="fix what the failing role's lines say, then start it again")
        if here:
            addresses = {r["role"]: r["address"] for r in done}
            local = with_addresses(settings, addresses)
            for role in here:
                echo(f"--- {role} here (serve.addresses: " + ", ".join(f"{r} {a}" for r, a in addresses.items()) + ")")
                lifecycle.up(local, profile, role=role, echo=echo)
    except BaseException:
        echo("stopping the roles that came up, on every host")
        down(settings, profile, echo=echo, quiet=True)
        raise
    echo(f"{Path(profile).stem} is up: " + ", ".join(f"{r} on {h.name if h else 'this host'}"
                                                    for r, h in placed.items()))


def with_addresses(settings, addresses: dict[str, str]):
    """The settings with ``serve.addresses`` naming the remote roles' addresses (over what the user set)."""
    out = copy.copy(settings)
    out._values = {**settings._values, "serve.addresses": Value(
        {**(settings.get("serve.addresses") or {}), **addresses}, "serve.up --hosts (the roles' hosts)")}
    return out


def _py(host, settings) -> str:
    return host.python or settings["fleet.python"] or "python3"


def act(settings, profile: str, what: str, extra: list[str], echo=print, role: str | None = None,
        **smoke_kwargs) -> bool:
    """status / logs / smoke on every host of the running profile, this one included; False when one failed."""
    from rebuilt.tools.serve import watch

    roles = _only(saved(settings, profile), profile, role)
    if what == "serve.smoke":  # one request, through the profile's entry role (its host)
        roles = {r: h for r, h in roles.items() if r == (role or entry_role(profile))} or roles
    remote_roles = {r: h for r, h in roles.items() if h}
    ok = True
    if remote_roles:
        outcome = _on_hosts(settings, profile, remote_roles, what.replace(".", "-"),
                            lambda r: [what, "--profile", profile,
                                       *(["--role", r] if what in ("serve.logs", "serve.smoke") else []), *extra],
                            echo)
        show(outcome, echo)
        ok = not outcome.unfinished and all(r["exit"] == 0 for res in outcome.results for r in (res.value or []))
    here = [r for r, h in roles.items() if h is None]
    if here and what == "serve.status":  # every role started here, in one table
        echo(f"--- {', '.join(here)} here")
        return watch.status(settings, profile, echo=echo) and ok
    for name in here:
        echo(f"--- {name} here")
        if what == "serve.logs":
            watch.logs(settings, profile, role=name, lines=int(extra[-1]) if extra else 50, echo=echo)
        else:
            from rebuilt.tools.serve import smoke

            smoke.run(settings, profile, role=name, echo=echo, **smoke_kwargs)
    return ok


def entry_role(profile: str) -> str:
    from rebuilt.tools.serve import profile as profile_mod

    return profile_mod.load(profile).entry


def _only(roles: dict, profile: str, role: str | None) -> dict:
    if role and role not in roles:
        raise ConfigError(f"profile {profile} has no placed role {role!r}", hint=f"its roles: {', '.join(roles)}")
    return {role: roles[role]} if role else roles


def down(settings, profile: str, echo=print, quiet: bool = False, role: str | None = None) -> None:
    """Stop the roles here, then every role on every host; the placement is forgotten when all are stopped."""
    from rebuilt.tools.serve import lifecycle, state

    roles = _only(saved(settings, profile), profile, role)
    for name in (r for r, h in roles.items() if h is None):
        if state.load_state(settings.workdir(), profile).get("roles", {}).get(name):
            lifecycle.down(settings, profile, role=name, echo=(lambda _t: None) if quiet else echo)
    remote_roles = {r: h for r, h in roles.items() if h}
    if remote_roles:
        outcome = _on_hosts(settings, profile, remote_roles, "serve-down",
                            lambda r: ["serve.down", "--profile", profile, "--role", r], echo)
        if not quiet:
            show(outcome, echo)
        if outcome.unfinished:
            raise StepFailed(f"could not reach every host of {profile}: its roles there may still run",
                             hint="run serve.down again once the host answers")
    if not role:
        _path(settings, profile).unlink(missing_ok=True)


def show(outcome, echo) -> None:
    for res in outcome.results:
        for r in res.value or []:
            echo(f"--- {r['role']} on {res.host.name} (exit {r['exit']})")
            if r["output"]:
                echo(r["output"])
