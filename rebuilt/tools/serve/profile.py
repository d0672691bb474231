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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rebuilt.core import recipes as recipes_mod
from rebuilt.core import secret as secrets
from rebuilt.core import shape, tomlfile
from rebuilt.core.text import did_you_mean
from rebuilt.errors import ConfigError

PROFILE_KEYS = ("summary", "entry", "model")
DEFAULT_HEALTH = "/health"
DEFAULT_READY = ("/v1/models", "/get_model_info")
BUILTINS = ("python", "host_ip", "workdir", "profile", "profile_dir", "role", "port", "gpus", "model")


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


_ARGV_TABLE = shape.Obj({"args": shape.ListOf(shape.STR), "when": shape.opt(shape.STR)}, closed=True,
                        what='an {args = [...], when = "..."} table')
_PORT = shape.either(shape.INT, shape.STR)
_ENV_VALUE = shape.either(shape.STR, shape.Obj({"value": shape.opt(shape.STR), "when": shape.opt(shape.STR),
                                                "otherwise": shape.opt(shape.STR)}, closed=True))
ROLE = shape.Obj({
    "module": shape.opt(shape.STR), "command": shape.opt(shape.STRS),
    "flags": shape.opt(shape.either(shape.STR, shape.ListOf(shape.either(shape.STR, _ARGV_TABLE)))),
    "env": shape.opt(shape.MapOf(_ENV_VALUE)), "port": _PORT, "ports": shape.opt(shape.ListOf(_PORT)),
    "gpus": shape.opt(shape.either(shape.STR, shape.INT)), "after": shape.opt(shape.STRS),
    "health": shape.opt(shape.STR), "ready": shape.opt(shape.STRS), "address": shape.opt(shape.STR),
    "cwd": shape.opt(shape.STR),
}, closed=True, docs="docs/SERVE.md")
PROFILE = shape.Obj({
    "profile": shape.opt(shape.Obj({"summary": shape.opt(shape.STR), "entry": shape.opt(shape.STR),
                                    "model": shape.opt(shape.STR)}, closed=True, docs="docs/SERVE.md")),
    "roles": shape.MapOf(ROLE),
}, closed=True, docs="docs/SERVE.md")
HINT = 'compare with the shipped profiles in recipes/serve/ (gpus = "0,1", port = 30000 or "{serve.port}")'


def _at(p: Profile | tomlfile.Toml, *at) -> str:
    """``<file>:<line>: <key path>``: the prefix of a message about that key."""
    return (p if isinstance(p, tomlfile.Toml) else tomlfile.Toml(p.path, p.text, {})).at(*at)


def _where(p: Profile | tomlfile.Toml, role: str | None, key: str) -> str:
    """``<file>:<line>: roles.<role>.<key>`` (or ``profile.<key>``)."""
    return _at(p, *(("roles", role, key) if role else ("profile", key) if key in PROFILE_KEYS else (key,)))


where = _where


def _tuple(value) -> tuple:
    return (value,) if isinstance(value, str) else tuple(value)


def _role(name: str, raw: dict, doc: tomlfile.Toml) -> RoleSpec:
    kinds = [k for k in ("module", "command") if k in raw]
    if len(kinds) != 1:
        raise ConfigError(f"{_at(doc, 'roles', name)}: needs exactly one of module (python -m ...) "
                          f"or command (found {kinds or 'none'})", hint=HINT)
    for var, value in raw.get("env", {}).items():
        text = value.get("value", "") if isinstance(value, dict) else value
        if secrets.secret_env(var) and text and "{" not in text:
            raise ConfigError(f"{_at(doc, 'roles', name, 'env', var)}: a secret is never written in a profile",
                              hint=f"take it from a setting ({var} = \"{{serve.mooncake.password}}\") "
                                   f"or from the environment ({var} = \"${{{var}}}\")")
    return RoleSpec(
        name=name, module=raw.get("module"), command=_tuple(raw["command"]) if "command" in raw else None,
        flags=_tuple(raw.get("flags", [])), env=dict(raw.get("env", {})), port=raw["port"],
        gpus=str(raw.get("gpus", "")), after=_tuple(raw.get("after", [])), health=raw.get("health", DEFAULT_HEALTH),
        ready=_tuple(raw.get("ready", DEFAULT_READY)), address=raw.get("address", "{serve.host}"), cwd=raw.get("cwd"),
        ports=tuple(str(p) for p in raw.get("ports", [])),
    )


def parse(text: str, path: Path) -> Profile:
    """Validate a profile's text: its shape (types, keys, lines), then what the roles say about each other."""
    doc = tomlfile.parse(text, path)
    data = doc.check(PROFILE, hint=HINT)
    meta = data.get("profile", {})
    roles_raw = data["roles"]
    if not roles_raw:
        raise ConfigError(f"{path}: a profile needs at least one role ([roles.server], or prefill/decode/router)")
    roles = {name: _role(name, raw, doc) for name, raw in roles_raw.items()}
    for r in roles.values():
        for dep in r.after:
            if dep not in roles or dep == r.name:
                raise ConfigError(f"{_where(doc, r.name, 'after')}: no other role named {dep!r}"
                                  f"{did_you_mean(dep, roles)}")
    entry = meta.get("entry") or next((n for n in ("router", "server") if n in roles), list(roles)[-1])
    if entry not in roles:
        raise ConfigError(f"{_where(doc, None, 'entry')}: no role named {entry!r}{did_you_mean(entry, roles)}")
    profile = Profile(name=path.stem, path=path, summary=meta.get("summary", "").strip(), entry=entry,
                      model=meta.get("model", ""), roles=roles, text=text)
    profile.order()  # cycles are errors now, not at start time
    return profile


def load(name: str) -> Profile:
    path = find(name)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read serving profile {path}: {exc.strerror}") from None
    return parse(text, path)
