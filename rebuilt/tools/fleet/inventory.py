"""The inventory (``fleet.hosts``, ``fleet.groups``) and the ``--hosts`` patterns that pick hosts from it.

A pattern is a comma-separated list of: an inventory name, ``@group``, ``slurm`` (the nodes of the
current Slurm allocation: ``SLURM_JOB_NODELIST`` expanded by ``scontrol show hostnames``, as Slurm's own
docs do it), or any SSH destination the way ``fab -H`` takes it (``user@host:port``, a ``~/.ssh/config``
alias). What is not named in the inventory is handed to SSH as it is: ``~/.ssh/config`` decides.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from rebuilt.core.text import did_you_mean
from rebuilt.errors import ConfigError

FIELDS = ("host", "user", "port", "identity", "workdir", "python")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_DEST = re.compile(r"^(?:(?P<user>[^@\s:]+)@)?(?P<host>\[[0-9a-fA-F:.]+\]|[^@\s:\[\]]+)(?::(?P<port>\d+))?$")


@dataclass(frozen=True)
class FleetHost:
    """One host: ``name`` is what tables and folders show; the rest is how SSH reaches it."""

    name: str
    host: str
    user: str | None = None
    port: int | None = None
    identity: str | None = None
    workdir: str | None = None
    python: str | None = None

    @property
    def destination(self) -> str:
        port = f":{self.port}" if self.port else ""
        return f"{self.user + '@' if self.user else ''}{self.host}{port}"


def parse_destination(text: str, name: str | None = None, where: str = "--hosts") -> FleetHost:
    """``user@host:port`` / ``host`` / ``[::1]:22`` -> FleetHost (named ``name`` or the host part)."""
    m = _DEST.match(text.strip())
    if not m:
        raise ConfigError(f"{where}: {text!r} is not an SSH destination",
                          hint="give [user@]host[:port], a ~/.ssh/config alias, an inventory name or @group")
    host = m.group("host").strip("[]")
    port = int(m.group("port")) if m.group("port") else None
    if port is not None and not 0 < port < 65536:
        raise ConfigError(f"{where}: port {port} in {text!r} is out of range (1-65535)")
    return FleetHost(name or text.strip(), host, m.group("user"), port)


def _entry(name: str, value) -> FleetHost:
    where = f"setting fleet.hosts.{name}"
    if not _NAME.match(name):
        raise ConfigError(f"{where}: {name!r} is not a usable host name (letters, digits, . _ -)")
    if isinstance(value, str) or value is None:
        return parse_destination(value or name, name, where)
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a destination or a table of {', '.join(FIELDS)}, got {value!r}")
    unknown = [k for k in value if k not in FIELDS]
    if unknown:
        hint = ("SSH passwords are never stored: use a key (identity) or ssh-agent"
                if any("pass" in k for k in unknown) else f"the fields are {', '.join(FIELDS)}")
        raise ConfigError(f"{where}: unknown field {unknown[0]!r}{did_you_mean(unknown[0], FIELDS)}", hint=hint)
    base = parse_destination(str(value.get("host") or name), name, where)
    port = value.get("port", base.port)
    try:
        port = int(port) if port not in (None, "") else None
    except (TypeError, ValueError):
        raise ConfigError(f"{where}.port: expected a whole number, got {port!r}") from None
    for key in ("workdir", "python", "identity"):
        if value.get(key) is not None and not isinstance(value.get(key), str):
            raise ConfigError(f"{where}.{key}: expected a path, got {value.get(key)!r}")
    if value.get("python") and not value["python"].startswith(("/", "~")):
        raise ConfigError(f"{where}.python: {value['python']!r} is not an absolute path",
                          hint="give the target interpreter on that host, e.g. /opt/envs/sgl/bin/python")
    return FleetHost(name, base.host, value.get("user") or base.user, port,
                     value.get("identity") or None, value.get("workdir") or None, value.get("python") or None)


def hosts_of(settings) -> dict[str, FleetHost]:
    """The inventory: name -> FleetHost."""
    return {name: _entry(name, value) for name, value in (settings["fleet.hosts"] or {}).items()}


def groups_of(settings) -> dict[str, list[str]]:
    out = {}
    for name, members in (settings["fleet.groups"] or {}).items():
        if isinstance(members, str):
            members = [m for m in members.split(",") if m.strip()]
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise ConfigError(f"setting fleet.groups.{name}: expected a list of hosts, got {members!r}")
        out[name] = [m.strip() for m in members]
    return out


def slurm_nodes(environ: Mapping[str, str], expand: Callable[[str], list[str]] | None = None) -> list[str]:
    """The nodes of the current Slurm allocation, in Slurm's order."""
    nodelist = environ.get("SLURM_JOB_NODELIST") or environ.get("SLURM_NODELIST")
    if not nodelist:
        raise ConfigError("--hosts slurm: SLURM_JOB_NODELIST is not set (not inside a Slurm allocation)",
                          hint="run inside salloc/sbatch, or name the hosts")
    return (expand or _scontrol)(nodelist)


def _scontrol(nodelist: str) -> list[str]:
    from rebuilt.core import runner

    if not runner.which("scontrol"):
        raise ConfigError("--hosts slurm: scontrol is not on PATH", hint="run on a Slurm login or compute node")
    proc = runner.capture(["scontrol", "show", "hostnames", nodelist], timeout=30)
    if proc.returncode != 0:
        raise ConfigError(f"--hosts slurm: scontrol show hostnames {nodelist} failed: {proc.stderr.strip()}")
    return [n for n in proc.stdout.split() if n]


def select(settings, pattern: str | None, environ: Mapping[str, str] | None = None,
           expand: Callable[[str], list[str]] | None = None) -> list[FleetHost]:
    """The hosts a ``--hosts`` pattern names, in order, each once."""
    environ = os.environ if environ is None else environ
    if not pattern or not pattern.strip():
        raise ConfigError("--hosts is required: inventory names, @group, slurm or user@host:port (comma separated)",
                          hint="inv config --key fleet shows the inventory")
    inventory, groups = hosts_of(settings), groups_of(settings)
    picked: dict[str, FleetHost] = {}

    def add(word: str, seen: tuple[str, ...] = ()) -> None:
        if word.startswith("@"):
            group = word[1:]
            if group not in groups:
                known = ", ".join("@" + g for g in groups) or "none defined (fleet.groups)"
                raise ConfigError(f"--hosts: unknown group {word!r}{did_you_mean(group, groups)}",
                                  hint=f"groups: {known}")
            if group in seen:
                raise ConfigError(f"setting fleet.groups.{group}: the group contains itself")
            for member in groups[group]:
                add(member, (*seen, group))
        elif word == "slurm":
            for node in slurm_nodes(environ, expand):
                add(node, seen)
        else:
            host = inventory.get(word) or parse_destination(word)
            picked.setdefault(host.name, host)

    for word in (w.strip() for w in pattern.split(",")):
        if word:
            add(word)
    return list(picked.values())



def describe(settings, key: str) -> list[str] | None:
    """``inv config``'s lines for ``fleet.hosts`` / ``fleet.groups``: a summary, then one line per host (its SSH
    destination and fields) or group (its members, and the hosts they come to), secrets redacted; None for
    other keys or an empty table. An entry that is not valid is shown as it is, with what is wrong."""
    from rebuilt.core.secret import redact

    value = settings[key] if key in ("fleet.hosts", "fleet.groups") else None
    if not value:
        return None
    lines: list[str] = []
    for name, raw in value.items():
        try:
            if key == "fleet.hosts":
                h = _entry(name, raw)
                extra = "  ".join(f"{f} {getattr(h, f)}" for f in ("identity", "workdir", "python") if getattr(h, f))
                lines.append(f"  {name:<12} {h.destination}" + (f"  {extra}" if extra else ""))
                continue
            members = groups_of(settings)[name]
            hosts = [] if "slurm" in members else [h.name for h in select(settings, f"@{name}", environ={})]
            lines.append(f"  @{name:<11} {', '.join(members)}" + (f"  = {', '.join(hosts)}" if hosts and
                                                                   hosts != members else ""))
        except ConfigError as err:
            label = name if key == "fleet.hosts" else f"@{name}"
            lines.append(f"  {label:<12} {_hidden(raw)!r}  ! {err}")
    return [f"{len(value)} {'host' if key == 'fleet.hosts' else 'group'}(s)"] + [redact(line) for line in lines]


def _hidden(raw):
    """An entry as written, any field that looks like a credential (password, token, secret) as ``***``."""
    if isinstance(raw, Mapping):
        return {k: "***" if any(s in str(k).lower() for s in ("pass", "token", "secret")) else v
                for k, v in raw.items()}
    return raw
