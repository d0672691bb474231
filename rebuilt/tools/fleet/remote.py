"""rebuilt's own commands on a host: its work dir and interpreter, these settings, secrets kept off the line.

The settings a user gave here (invoke.yaml, env, --set) go to each host as ``--set KEY=VALUE``, except
the fleet's own keys, the work dir and the interpreter (each host has its own) and every secret setting:
a secret travels in a 0600 file inside a 0700 folder uploaded over SFTP; the remote shell reads it into
the command's environment (``export`` is a shell builtin: no process shows it) and removes the folder
before rebuilt starts, so the value is never on a command line (``ps``), in a log or left on disk.
"""

from __future__ import annotations

import shlex
import uuid
from dataclasses import dataclass

from rebuilt.core import secret as secret_mod
from rebuilt.tools.fleet import ship
from rebuilt.tools.fleet.run import Session, StepError

LOCAL_ONLY = ("fleet.", "workdir", "python")
BUILTIN_SOURCES = ("defaults", "recipe ", "stack ")


@dataclass
class Place:
    """Where rebuilt runs on one host."""

    workdir: str  # absolute
    python: str  # absolute
    tree: str = ""  # the unpacked rebuilt


def hello(session: Session, settings) -> Place:
    """The host's absolute work dir (created, must be writable) and interpreter (Python >= 3.10)."""
    host = session.host
    wd = host.workdir or settings["fleet.workdir"] or "rebuilt"
    wd = wd[2:] if wd.startswith("~/") else wd
    py = host.python or settings["fleet.python"] or "python3"
    q = shlex.quote
    r = session.sh(f"cd && mkdir -p -- {q(wd)} && cd -- {q(wd)} && pwd && test -w . && command -v {q(py)} && "
                   f"{q(py)} -c 'import sys; print(sys.version_info >= (3, 10))'", timeout=60)
    lines = r.stdout.split()
    if r.exited != 0 and len(lines) == 1:
        raise StepError("failed", f"{host.name}: the work dir {lines[0]} is not writable",
                        f"give {host.name} a writable work dir: fleet.hosts.{host.name}.workdir (or fleet.workdir)")
    if r.exited != 0 and not lines:
        raise StepError("failed", f"{host.name}: cannot create the work dir {wd!r}: {r.stderr.strip()[-200:]}",
                        f"give {host.name} a writable work dir: fleet.hosts.{host.name}.workdir (or fleet.workdir)")
    if r.exited != 0 or len(lines) < 3:
        raise StepError("failed", f"{host.name}: no interpreter {py!r} there", f"install Python >= 3.10 on "
                        f"{host.name} or name it: fleet.hosts.{host.name}.python (absolute path)")
    if lines[2] != "True":
        raise StepError("failed", f"{host.name}: {lines[1]} is older than Python 3.10",
                        f"name a newer one: fleet.hosts.{host.name}.python")
    session.rundir = f"{lines[0]}/fleet/run"
    return Place(lines[0], lines[1])


def passed_settings(settings) -> tuple[list[str], dict[str, str]]:
    """(``--set K=V`` arguments, {env var name: secret value}) of what the user set here."""
    from rebuilt.core.settings import env_name

    args: list[str] = []
    secrets: dict[str, str] = {}
    for key, v in settings.items():
        if key.startswith(LOCAL_ONLY) or v.source.startswith(BUILTIN_SOURCES):
            continue
        value = v.value
        if isinstance(value, secret_mod.Secret):
            secrets[env_name(key)] = value.reveal()
            continue
        if isinstance(value, (dict, list)):
            import json

            value = json.dumps(value) if isinstance(value, dict) else ",".join(map(str, value))
        elif isinstance(value, bool):
            value = "true" if value else "false"
        args += ["--set", f"{key}={value}"]
    return args, secrets


def rebuilt(session: Session, place: Place, argv: list[str], secrets: dict[str, str], timeout: float | None = None):
    """``python -m rebuilt.cli ARGV`` on the host (the invoke Result); secrets as described above."""
    q = shlex.quote
    env = (f"REBUILT_PROJECT={q(place.workdir)} PYTHONPATH={q(place.tree)}:{q(place.tree + '/_deps')} "
           f"PYTHONDONTWRITEBYTECODE=1 {ship.recipes_env(place.tree)}").rstrip()
    prefix = ""
    folder = ""
    if secrets:
        folder = f"{place.workdir}/fleet/run/s-{uuid.uuid4().hex}"
        upload_secrets(session, folder, secrets)
        reads = " && ".join(f"export {name}=\"$(cat {q(folder + '/' + name)})\"" for name in sorted(secrets))
        prefix = f"{reads} && rm -rf {q(folder)} && "
    line = f"{prefix}cd {q(place.workdir)} && {env} {q(place.python)} -m rebuilt.cli {shlex.join(argv)}"
    try:
        return session.sh(line, timeout=timeout)
    finally:
        if folder:  # normally gone already; not when the command never started
            try:
                session.conn.client.exec_command(f"rm -rf {q(folder)}", timeout=10)
            except Exception:  # noqa: BLE001 - a host gone takes the folder's removal with it to the next run
                pass


def upload_secrets(session: Session, folder: str, secrets: dict[str, str]) -> None:
    """One 0600 file per secret in a fresh 0700 folder, written over SFTP (never through a command line)."""
    sftp = session.conn.sftp()
    sftp.mkdir(folder, mode=0o700)
    sftp.chmod(folder, 0o700)
    for name, value in secrets.items():
        with sftp.open(f"{folder}/{name}", "w") as f:
            f.chmod(0o600)
            f.write(value.encode())
