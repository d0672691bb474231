"""A profile resolved against the settings: every role's argv, env, port, URL and GPUs.

Placeholders are filled by the recipes' own template code (``rebuilt.core.text.render``, and
``rebuilt.build.template``: ``fill_argv`` for flag lists with ``{args, when}`` items and list splicing,
``fill_env`` for env tables). Secret values met on the way are collected in a
``Redactor`` for everything shown or written later. Nothing here starts a process.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from rebuilt.core import secret as secrets
from rebuilt.core.text import render
from rebuilt.errors import ConfigError
from rebuilt.tools.serve.profile import BUILTINS, Profile, RoleSpec
from rebuilt.tools.serve.profile import where as _where


@dataclass(frozen=True)
class Role:
    name: str
    argv: tuple[str, ...]
    env: dict  # changes to the caller's environment (None = unset); ${VAR} expanded at start
    port: int
    url: str
    gpus: str
    after: tuple[str, ...]
    health: str
    ready: tuple[str, ...]
    cwd: str
    ports: tuple[int, ...] = ()  # the other ports it listens on


@dataclass(frozen=True)
class Resolved:
    profile: Profile
    roles: list[Role]  # start order
    python: str
    host_ip: str
    model: str
    redactor: secrets.Redactor

    def role(self, name: str) -> Role:
        return next(r for r in self.roles if r.name == name)

    def describe(self) -> dict:
        """Roles with redacted env and argv (state files, run provenance, --dry-run)."""
        red = self.redactor
        return {"profile": self.profile.name, "path": str(self.profile.path), "entry": self.profile.entry,
                "python": self.python, "host_ip": self.host_ip,
                "roles": {r.name: {"argv": red.argv(r.argv), "env": red.env(r.env), "port": r.port, "url": r.url,
                                   "gpus": r.gpus, "after": list(r.after), "cwd": r.cwd} for r in self.roles}}


def host_ip() -> str:
    """This host's address as `hostname -i` prints it: the host name resolved, else 127.0.0.1."""
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def context(settings, *, python: str, host: str, workdir: str, profile: Profile) -> dict[str, Any]:
    """Placeholders: every setting by its key, the ``serve.*`` keys also bare (for ``when``), and the built-ins."""
    ctx: dict[str, Any] = {}
    for key, value in settings.items():
        ctx[key] = secrets.reveal(value.value)
    for key in list(ctx):
        if key.startswith("serve.") and key.count(".") == 1 and key[6:] not in BUILTINS:
            ctx[key[6:]] = ctx[key]
    ctx.update(python=python, host_ip=host, workdir=workdir, profile=profile.name,
               profile_dir=str(profile.path.parent.resolve()),
               # the name clients ask for: --served-model-name, else the model path (as sglang itself does)
               model=ctx.get("serve.served_model_name") or ctx.get("serve.model_path") or "")
    return ctx


def _port(profile: Profile, spec: RoleSpec, ctx: dict, value: Any = None, key: str = "port") -> int:
    where = _where(profile, spec.name, key)
    text = render(str(spec.port if value is None else value), ctx, where=f"{where}: ")
    try:
        port = int(text)
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not a port number") from None
    if not 0 < port < 65536:
        raise ConfigError(f"{where}: {port} is not a port number (1-65535)")
    return port


def resolve(profile: Profile, settings, *, python: str, workdir: str, only: str | None = None) -> Resolved:
    """Fill every role's argv, env, port and GPUs from the settings; secrets collected for redaction."""
    from rebuilt.build import template

    host = settings["serve.host_ip"] or host_ip()
    base = context(settings, python=python, host=host, workdir=workdir, profile=profile)
    ports = {name: _port(profile, spec, {**base, "role": name}) for name, spec in profile.roles.items()}
    for name, spec in profile.roles.items():
        # a role on another host (the router here, prefill and decode there): setting serve.addresses.<role>
        addr = (settings.get("serve.addresses") or {}).get(name) or \
            render(spec.address, base, where=f"{_where(profile, name, 'address')}: ")
        addr = "127.0.0.1" if addr in ("", "0.0.0.0", "::", "[::]") else addr  # bound to all: reach it on loopback
        base[f"role.{name}.port"] = ports[name]
        base[f"role.{name}.url"] = f"http://{addr}:{ports[name]}"
    red = secrets.from_settings((k, v.value) for k, v in settings.items())
    roles = []
    for name in profile.order(only):
        spec = profile.roles[name]
        gpus = render(spec.gpus, {**base, "role": name}, where=f"{_where(profile, name, 'gpus')}: ")
        ctx = {**base, "role": name, "port": ports[name], "gpus": gpus}
        where = f"{_where(profile, name, 'flags')}: "
        head = [python, "-m", render(spec.module, ctx, where=where)] if spec.module else \
            list(template.fill_argv(spec.command, ctx, f"{_where(profile, name, 'command')}: "))
        argv = tuple(head) + template.fill_argv(spec.flags, ctx, where)
        env = template.fill_env(spec.env, ctx, f"{profile.path} [roles.{name}]")
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus
        for var, value in env.items():
            if value and secrets.secret_env(var):
                red.add(value)
        cwd = render(spec.cwd, ctx, where=f"{_where(profile, name, 'cwd')}: ") if spec.cwd else workdir
        extra = tuple(_port(profile, spec, ctx, p, "ports") for p in spec.ports)
        roles.append(Role(name=name, argv=argv, env=env, port=ports[name], url=base[f"role.{name}.url"], gpus=gpus,
                          ports=extra,
                          after=spec.after, health=spec.health, ready=spec.ready, cwd=cwd))
    model = render(profile.model, base, where=f"{_where(profile, None, 'model')}: ") if profile.model else ""
    return Resolved(profile=profile, roles=roles, python=python, host_ip=host,
                    model=model or base.get("serve.served_model_name") or base.get("serve.model_path") or "",
                    redactor=red)
