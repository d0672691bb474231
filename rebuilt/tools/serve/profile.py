"""Serving profiles: ``recipes/serve/<name>.toml`` -> a validated ``Profile`` -> resolved roles.

A profile names its roles (``[roles.prefill]``, ``[roles.decode]``, ``[roles.router]``, or
one ``[roles.server]``); per role the module (``python -m``) or command, flags, env, port,
GPUs (``CUDA_VISIBLE_DEVICES``), which roles it waits for (``after``) and its health
endpoints. Values take ``{placeholders}`` from the settings cascade and the same template
code as recipes (``rebuilt.build.plan``), plus ``{python}``, ``{host_ip}``, ``{port}``, ``{gpus}``,
``{role}``, ``{role.<name>.port}``, ``{role.<name>.url}``, ``{workdir}``, ``{profile_dir}``
(filled in by ``rebuilt.tools.serve.resolve``). Errors name the file, the line and the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import tomllib

from rebuilt.core import recipes as recipes_mod
from rebuilt.core.text import did_you_mean
from rebuilt.errors import ConfigError
from rebuilt.tools.serve import secrets

TOP_KEYS = ("profile", "roles")
PROFILE_KEYS = ("summary", "entry", "model")
ROLE_KEYS = ("module", "command", "flags", "env", "port", "ports", "gpus", "after", "health", "ready", "address",
             "cwd")
DEFAULT_HEALTH = "/health"
DEFAULT_READY = ("/v1/models", "/get_model_info")
BUILTINS = ("python", "host_ip", "workdir", "profile", "profile_dir", "role", "port", "gpus")


@dataclass(frozen=True)
class RoleSpec:
    name: str
    module: str | None
    command: tuple | None
    flags: tuple
    env: dict
    port: Any
    gpus: str
    after: tuple[str, ...]
    health: str
    ready: tuple[str, ...]
    address: str
    cwd: str | None
    ports: tuple = ()  # other ports the role listens on (bootstrap, rendezvous, metrics): checked free too


@dataclass(frozen=True)
class Profile:
    name: str
    path: Path
    summary: str
    entry: str
    model: str
    roles: dict[str, RoleSpec]  # file order
    text: str = field(repr=False, default="")

    def order(self, only: str | None = None) -> list[str]:
        """Start order: each role after the roles it waits for, file order otherwise."""
        if only:
            return [self.role(only).name]
        out: list[str] = []

        def visit(name: str, path: list[str]) -> None:
            if name in out:
                return
            if name in path:
                raise ConfigError(f"{self.path}: roles wait for each other: {' -> '.join(path + [name])}",
                                  hint="fix `after` in the roles named")
            for dep in self.roles[name].after:
                visit(dep, path + [name])
            out.append(name)

        for name in self.roles:
            visit(name, [])
        return out

    def role(self, name: str) -> RoleSpec:
        if name not in self.roles:
            raise ConfigError(f"profile {self.name} has no role {name!r}{did_you_mean(name, self.roles)}",
                              hint=f"its roles: {', '.join(self.roles)}")
        return self.roles[name]


# --------------------------------------------------------------------------- loading


def profile_dirs() -> list[Path]:
    """``serve/`` beside the stacks in every recipes folder (REBUILT_RECIPES_DIR), first wins."""
    return [d / "serve" for d in recipes_mod.RECIPES_DIRS]


def names() -> list[str]:
    return sorted({p.stem for d in profile_dirs() for p in d.glob("*.toml")})


def find(name: str) -> Path:
    """A profile file from a name (``single``) or a path to a ``.toml``."""
    if name.endswith(".toml") or "/" in name:
        if Path(name).is_file():
            return Path(name)
        raise ConfigError(f"serving profile {name} does not exist")
    for d in profile_dirs():
        if (d / f"{name}.toml").is_file():
            return d / f"{name}.toml"
    raise ConfigError(f"no serving profile named {name!r}{did_you_mean(name, names())}",
                      hint=f"profiles are the files in {', '.join(map(str, profile_dirs()))}: {', '.join(names())}")


def _line(text: str, role: str | None, key: str) -> int | None:
    """Line of ``key =`` inside ``[roles.<role>]`` (or the whole file), 1-based."""
    start = 0
    if role is not None:
        m = re.search(rf'^\s*\[roles\.("?){re.escape(role)}\1\]', text, re.M)
        if not m:
            return None
        start = m.end()
    m = re.compile(rf'^\s*"?{re.escape(key)}"?\s*=', re.M).search(text, start)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _where(p: Profile | SimpleNamespace, role: str | None, key: str) -> str:
    line = _line(p.text, role, key)
    table = f"[roles.{role}] " if role else ""
    return f"{p.path}:{line}: {table}{key}" if line else f"{p.path}: {table}{key}"


def _unknown(table: dict, allowed: tuple, what: str, ctx, role: str | None) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{_where(ctx, role, key)}: unknown key in {what}{did_you_mean(key, allowed)}",
                              hint=f"known keys: {', '.join(allowed)}")


def _strings(value, where: str, *, tables: bool = False) -> tuple:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) or (tables and recipes_mod._argv_item(v))
                                              for v in value):
        extra = ' or {args = [...], when = "..."} tables' if tables else ""
        raise ConfigError(f"{where}: expected a list of strings{extra}, got {value!r}")
    return tuple(value)


def _role(name: str, raw: Any, ctx) -> RoleSpec:
    if not isinstance(raw, dict):
        raise ConfigError(f"{_where(ctx, None, name)}: [roles.{name}] must be a table")
    _unknown(raw, ROLE_KEYS, f"[roles.{name}]", ctx, name)
    kinds = [k for k in ("module", "command") if k in raw]
    if len(kinds) != 1:
        raise ConfigError(f"{ctx.path}: [roles.{name}] needs exactly one of module (python -m ...) or command "
                          f"(found {kinds or 'none'})")
    if "module" in raw and not isinstance(raw["module"], str):
        raise ConfigError(f"{_where(ctx, name, 'module')}: expected a module name such as sglang.launch_server")
    env = raw.get("env", {})
    if not isinstance(env, dict):
        raise ConfigError(f"{_where(ctx, name, 'env')}: expected a table of NAME = \"value\"")
    for var, value in env.items():
        text = value.get("value", "") if isinstance(value, dict) else value
        if not isinstance(text, str):
            raise ConfigError(f"{_where(ctx, name, var)}: env value must be a string, got {text!r}")
        if secrets.secret_env(var) and text and "{" not in text:
            raise ConfigError(f"{_where(ctx, name, var)}: a secret is never written in a profile",
                              hint=f"take it from a setting ({var} = \"{{serve.mooncake.password}}\") "
                                   f"or from the environment ({var} = \"${{{var}}}\")")
    port = raw.get("port")
    if port is None or isinstance(port, bool) or not isinstance(port, (int, str)):
        raise ConfigError(f"{_where(ctx, name, 'port')}: every role needs a port (a number or a placeholder "
                          f"such as \"{{serve.port}}\")")
    return RoleSpec(
        name=name, module=raw.get("module"),
        command=_strings(raw["command"], _where(ctx, name, "command")) if "command" in raw else None,
        flags=_strings(raw.get("flags", []), _where(ctx, name, "flags"), tables=True), env=dict(env), port=port,
        gpus=str(raw.get("gpus", "")), after=_strings(raw.get("after", []), _where(ctx, name, "after")),
        health=str(raw.get("health", DEFAULT_HEALTH)),
        ready=_strings(raw.get("ready", list(DEFAULT_READY)), _where(ctx, name, "ready")),
        address=str(raw.get("address", "{serve.host}")), cwd=raw.get("cwd"),
        ports=tuple(str(p) for p in _ports(raw.get("ports", []), _where(ctx, name, "ports"))),
    )


def _ports(value, where: str) -> list:
    if not isinstance(value, list) or not all(isinstance(p, (int, str)) and not isinstance(p, bool) for p in value):
        raise ConfigError(f"{where}: expected a list of port numbers or placeholders, got {value!r}")
    return value


def parse(text: str, path: Path) -> Profile:
    """Validate a profile's text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}", hint="fix the file at the line shown") from None
    ctx = SimpleNamespace(path=path, text=text)
    _unknown(data, TOP_KEYS, "the profile", ctx, None)
    meta = data.get("profile", {})
    _unknown(meta, PROFILE_KEYS, "[profile]", ctx, None)
    roles_raw = data.get("roles", {})
    if not isinstance(roles_raw, dict) or not roles_raw:
        raise ConfigError(f"{path}: a profile needs at least one role ([roles.server], or prefill/decode/router)")
    roles = {name: _role(name, raw, ctx) for name, raw in roles_raw.items()}
    for r in roles.values():
        for dep in r.after:
            if dep not in roles or dep == r.name:
                raise ConfigError(f"{_where(ctx, r.name, 'after')}: no other role named {dep!r}"
                                  f"{did_you_mean(dep, roles)}")
    entry = meta.get("entry") or next((n for n in ("router", "server") if n in roles), list(roles)[-1])
    if entry not in roles:
        raise ConfigError(f"{_where(ctx, None, 'entry')}: no role named {entry!r}{did_you_mean(entry, roles)}")
    profile = Profile(name=path.stem, path=path, summary=str(meta.get("summary", "")).strip(), entry=entry,
                      model=str(meta.get("model", "")), roles=roles, text=text)
    profile.order()  # cycles are errors now, not at start time
    return profile


def load(name: str) -> Profile:
    path = find(name)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read serving profile {path}: {exc.strerror}") from None
    return parse(text, path)
