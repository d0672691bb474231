"""The one place that resolves settings; every value keeps the layer it came from.

Cascade, lowest first: packaged defaults (rebuilt/core/defaults.toml) < recipe
defaults (recipes/<r>.toml [source] and [options]) < stack file < ~/.invoke.yaml
< ./invoke.yaml (key ``rebuilt``) < INVOKE_REBUILT_* env vars < task flags.
Global keys come from defaults.toml; per-recipe keys are ``<recipe>.<option>``
(plus ``<recipe>.url`` and ``<recipe>.ref``). Unknown keys are errors.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from rebuilt.core import flags, interpreter, project
from rebuilt.core import recipes as recipes_mod
from rebuilt.core import secret as secret_mod
from rebuilt.core.invokefile import config_files, read_invoke_file
from rebuilt.core.secret import redact
from rebuilt.core.text import did_you_mean
from rebuilt.errors import ConfigError

DEFAULTS_FILE = Path(__file__).with_name("defaults.toml")
ENV_PREFIX = "INVOKE_REBUILT_"
FILE_SUFFIX = "_FILE"  # INVOKE_REBUILT_PROXY_URL_FILE=/path: a secret setting read from a file
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
# Numbers whose form the packaged default cannot show ("auto" is text): parsed once, here, into an int.
NUMBERS: dict[str, dict] = {"jobs": {"kind": int, "minimum": 1, "words": ("auto",)}}
FOLDER_KEYS = ("workdir", "backup_dir", "ccache.dir", "cuda_home", "nvshmem_dir")  # must be folders when they exist


@dataclass(frozen=True)
class Value:
    value: Any
    source: str


def _flatten(data: Mapping, prefix: str = "", keep: frozenset = frozenset()) -> dict[str, Any]:
    """Nested tables -> dotted keys; a key in ``keep`` (an open table) stays one mapping value."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping) and full not in keep:
            out.update(_flatten(value, f"{full}.", keep))
        else:
            out[full] = value
    return out


def _open_tables(data: Mapping, prefix: str = "") -> frozenset:
    """Empty tables of defaults.toml (``[fleet.hosts]``) are open: users name their entries."""
    found: set[str] = set()
    for key, value in data.items():
        if isinstance(value, Mapping):
            found |= {f"{prefix}{key}"} if not value else _open_tables(value, f"{prefix}{key}.")
    return frozenset(found)


def _defaults() -> dict[str, Any]:
    with open(DEFAULTS_FILE, "rb") as f:
        data = tomllib.load(f)
    return _flatten(data, keep=_open_tables(data))


def _open_keys() -> frozenset:
    return frozenset(k for k, v in _defaults().items() if isinstance(v, Mapping))


def _schema(recipes: Mapping[str, recipes_mod.Recipe]) -> dict[str, tuple[Any, tuple | None]]:
    """key -> (default value, allowed choices or None)."""
    schema: dict[str, tuple[Any, tuple | None]] = {k: (v, None) for k, v in _defaults().items()}
    for name, r in recipes.items():
        schema[f"{name}.url"] = (r.source.url if r.source else "", None)
        schema[f"{name}.ref"] = (r.source.ref if r.source else "", None)
        schema[f"{name}.version"] = ("", None)
        if r.source and not r.source.from_:  # patches/<name>/*.patch: all on, or some turned off
            schema[f"{name}.patches"] = (True, None)
            schema[f"{name}.patches_skip"] = ([], None)
        for opt, default in r.options.items():
            schema[f"{name}.{opt}"] = (default, r.choices.get(opt))
    return schema


def env_name(key: str) -> str:
    """The environment variable of a setting: ``sgl-kernel.nvcc_threads`` -> ``INVOKE_REBUILT_SGL_KERNEL_NVCC_THREADS``."""
    return ENV_PREFIX + re.sub(r"[.\-]", "_", key).upper()


def _coerce(key: str, value: Any, default: Any, choices: tuple | None, source: str) -> Any:
    where = f"setting {key} (from {source})"
    if key in NUMBERS:
        return flags.number(value, where, **NUMBERS[key])
    if isinstance(default, bool):
        if isinstance(value, str):
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                value = True
            elif low in ("0", "false", "no", "off", ""):
                value = False
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
    elif isinstance(default, (int, float)):
        value = flags.number(value, where, kind=type(default))
    elif isinstance(default, Mapping):
        if isinstance(value, str):  # from an env var or --set: JSON
            import json

            try:
                value = json.loads(value or "{}")
            except ValueError:
                raise ConfigError(f"{where}: expected a mapping (JSON), got {value!r}") from None
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        value = dict(value)
    elif isinstance(default, list):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        value = list(value)
    elif value is not None and not isinstance(value, str):
        value = str(value)
    if choices and value not in choices:
        raise ConfigError(f"{where}: {value!r} is not one of {list(choices)}")
    if key in FOLDER_KEYS and value:
        folder = Path(os.path.expanduser(str(value)))
        while not folder.exists() and folder.parent != folder:
            folder = folder.parent  # the nearest part of the path that exists must be a folder
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"{where}: {folder} is a file, not a folder",
                              hint="give a folder (it is created when missing)")
    if key.endswith(".ref") and value:
        _check_ref(str(value), where)
    kind = secret_mod.kind_of(key)
    if kind and isinstance(value, str) and value:
        _check_secret(key, value, kind, where)
        if kind == "value" or secret_mod.carries_credentials(value):  # a URL without credentials stays text
            value = secret_mod.Secret(value, kind)
    return value


_BAD_REF = re.compile(r"(\.\.|@\{|//|[\x00-\x20\x7f~^:?*\[\\])")


def _check_ref(ref: str, where: str) -> None:
    """git's rules for ref names (git check-ref-format), so a typo fails before any fetch or plan."""
    parts = ref.split("/")
    if (_BAD_REF.search(ref) or ref.startswith(("-", "/")) or ref.endswith(("/", ".", ".lock")) or ref == "@"
            or any(p.startswith(".") or p.endswith(".lock") for p in parts)):
        raise ConfigError(f"{where}: {ref!r} is not a valid git ref name",
                          hint="a tag, a branch, a commit id, pr/NNNN or HEAD (see git check-ref-format)")


def _check_secret(key: str, value: str, kind: str, where: str) -> None:
    """Reject credential-bearing values that would be stored or shown in clear, before anything is stored."""
    if kind != "url":
        return
    if secret_mod.schemeless_credentials(value):
        raise ConfigError(f"{where}: {redact(value)!r} has a user and password but no scheme",
                          hint="write it as a URL, e.g. http://user:password@host:port")
    if key == "proxy.url":
        import urllib.parse

        try:
            parts = urllib.parse.urlsplit(value)
            host = parts.hostname
            parts.port  # noqa: B018 - raises ValueError for a non-numeric port
        except ValueError:
            host = None
        if parts.scheme not in PROXY_SCHEMES or not host:
            raise ConfigError(f"{where}: {redact(value)!r} is not a proxy URL",
                              hint="give scheme, host and port, e.g. http://proxy.example:3128")


def _refuse_on_command_line(key: str, value: Any) -> None:
    """Credentials never come from flags: they would sit in shell history and the process list."""
    kind = secret_mod.kind_of(key)
    if not kind or not isinstance(value, str) or not value:
        return
    if kind == "value" or secret_mod.carries_credentials(value):
        raise ConfigError(
            f"--set {key}: a credential does not go on the command line (shell history, process list)",
            hint=f"put it in invoke.yaml (rebuilt: {{{key.split('.')[0]}: {{{key.split('.', 1)[1]}: ...}}}}), "
                 f"export {env_name(key)}, or write it to a file and export {env_name(key)}{FILE_SUFFIX}=<path>")


def _secret_from_file(name: str, path: str) -> str:
    try:
        return Path(os.path.expanduser(path)).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"environment variable {name}: cannot read {path}: {reason}",
                          hint="point it at a readable file holding only the value") from None


class Settings:
    """Resolved settings: ``s["jobs"]``, ``s.source("jobs")``, ``s.recipe("sgl-kernel")``."""

    def __init__(self, values: dict[str, Value], stack: recipes_mod.Stack,
                 environ: Mapping[str, str] | None = None, target: interpreter.Target | None = None):
        self._values = dict(values)
        self.stack = stack
        self.environ = dict(os.environ if environ is None else environ)  # for the target's rules
        self._target = target  # named: the python setting, or a nox session's own
        self._default: interpreter.Target | None = None  # the user's active environment or python3 on PATH

    def __getitem__(self, key: str) -> Any:
        try:
            return self._values[key].value
        except KeyError:
            raise ConfigError(f"unknown setting {key!r}{did_you_mean(key, self._values)}") from None

    def get(self, key: str, default: Any = None) -> Any:
        return self._values[key].value if key in self._values else default

    def source(self, key: str) -> str:
        return self._values[key].source

    def items(self) -> Iterator[tuple[str, Value]]:
        return iter(sorted(self._values.items()))

    def recipe(self, name: str) -> dict[str, Any]:
        """The options of one recipe, without the ``<name>.`` prefix."""
        prefix = f"{name}."
        return {k[len(prefix):]: v.value for k, v in self._values.items() if k.startswith(prefix)}

    def python(self) -> str:
        """The target interpreter, absolute (``target()`` says which rule chose it)."""
        return self.target().python

    def target(self, python: str | None = None, *, handoff: bool = False) -> interpreter.Target:
        """The target interpreter and the rule that chose it (rebuilt/core/interpreter.py): ``python``
        (a task's own --python), else the python setting, else (``handoff``) what ``nox -s build`` made
        for the stack, else the user's active environment or python3 on PATH."""
        if python:
            return interpreter.named(python, "--python", self.environ)
        if self._target is None and self["python"]:
            source = self.source("python")
            why = "--python" if source == "flag --python" else f"the python setting ({source})"
            self._target = interpreter.named(self["python"], why, self.environ)
        if self._target is not None:
            return self._target
        found = interpreter.recorded(self.workdir(), self.stack.name) if handoff else None
        if found is not None:
            return found
        if self._default is None:
            self._default = interpreter.choose(environ=self.environ)
        return self._default

    base: Path | None = None  # the project folder (rebuilt/core/project.py) the settings were resolved in

    def workdir(self, cwd: Path | None = None) -> Path:
        wd = Path(os.path.expanduser(self["workdir"]))
        return wd if wd.is_absolute() else (cwd or self.base or Path.cwd()) / wd

    def redacted(self) -> dict[str, Any]:
        """All values with credentials in URLs replaced by ``***`` (for logs and manifests)."""
        return {k: secret_mod.shown(v.value) for k, v in self.items()}


def _yaml_layer(path: Path) -> dict[str, Any]:
    data = read_invoke_file(path)
    return _flatten(data.get("rebuilt") or {}, keep=_open_keys())


def resolve(
    flags: Mapping[str, Any] | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
    recipes_dir: Path | None = None,
    stacks_dir: Path | None = None,
    assignments: Mapping[str, Any] | None = None,
    target: interpreter.Target | None = None,
) -> Settings:
    """Resolve all layers into Settings. ``flags`` maps keys to values (None: not given); ``assignments``
    are the ``--set KEY=VALUE`` pairs (``parse_assignments``), above the flags; ``target`` names the
    target interpreter with its own reason (a nox session's virtualenv) instead of the python setting."""
    environ = os.environ if environ is None else environ
    cwd = Path(cwd or project.root(environ=environ))  # invoke.yaml and relative paths: the project's
    home = Path(home or Path.home())
    recipes = recipes_mod.all_recipes(recipes_dir)
    schema = _schema(recipes)
    broken = recipes_mod.invalid(recipes_dir)
    limits = {f"{n}.{opt}": b for n, r in recipes.items() for opt, b in r.limits.items()}
    limits_from = {f"{n}.{opt}": f"{r.path.name} ([limits] or nvcc_threads_option)"
                   for n, r in recipes.items() for opt in r.limits}

    user_layers = [(str(p), _yaml_layer(p)) for p in config_files(cwd, home)]
    env_names = {env_name(k): k for k in schema}
    env_layer: dict[str, Any] = {}
    for name, raw in environ.items():
        if name.startswith(ENV_PREFIX):
            stem = name[: -len(FILE_SUFFIX)] if name.endswith(FILE_SUFFIX) else ""
            if name not in env_names and stem in env_names and secret_mod.kind_of(env_names[stem]):
                env_layer[env_names[stem]] = _secret_from_file(name, raw)
                continue
            if name not in env_names:
                option = name[len(ENV_PREFIX):].lower()
                if any(k.count(".") == 1 and k.split(".")[1] == option for k in schema):
                    raise _unknown(option, raw, f"env {name}", schema)  # a recipe option without its recipe
                raise ConfigError(f"unknown setting in environment variable {name}{did_you_mean(name, env_names)}")
            env_layer[env_names[name]] = raw
    flag_layer = {k: v for k, v in (flags or {}).items() if v is not None}
    set_layer = dict(assignments or {})

    def stack_name() -> str:
        name = _defaults()["stack"]
        for _, layer in user_layers + [("env", env_layer), ("flags", flag_layer), ("--set", set_layer)]:
            name = layer.get("stack", name)
        return str(name)

    stack = recipes_mod.load_stack(stack_name(), stacks_dir, recipes_dir)
    layers: list[tuple[str, dict]] = [("defaults (rebuilt/core/defaults.toml)", _defaults())]
    for name, r in recipes.items():
        layer = {f"{name}.{k}": v for k, v in r.options.items()}
        if r.source:
            layer.update({f"{name}.url": r.source.url, f"{name}.ref": r.source.ref})
        layers.append((f"recipe {r.path.parent.name}/{r.path.name}", layer))
    layers.append((f"stack {stack.path.name}", stack.settings))
    layers += user_layers
    layers += [(f"env {env_name(k)}", {k: v}) for k, v in env_layer.items()]
    layers += [(f"flag --{k.replace('_', '-')}" if "." not in k else f"flag --set {k}", {k: v})
               for k, v in flag_layer.items()]
    layers += [(f"flag --set {k}", {k: v}) for k, v in set_layer.items()]

    values: dict[str, Value] = {}
    for source, layer in layers:
        for key, raw in layer.items():
            if key not in schema:
                owner = key.split(".", 1)[0]
                if owner in broken:  # a recipe whose file is invalid: its settings wait until it is fixed
                    if source.startswith("flag"):
                        raise broken[owner]
                    continue
                raise _unknown(key, raw, source, schema)
            default, choices = schema[key]
            value = _coerce(key, raw, default, choices, source)
            if key in limits:
                problem = recipes_mod.limit_problem(value, *limits[key])
                if problem:
                    raise ConfigError(f"setting {key} (from {source}): {value!r} {problem}",
                                      hint=f"the range is declared in {limits_from[key]}")
            values[key] = Value(value, source)
    settings = Settings(values, stack, environ, target)
    settings.base = cwd  # a relative workdir is relative to the project, not the current folder
    return settings


def _unknown(key: str, value: Any, source: str, schema: Mapping[str, Any]) -> ConfigError:
    """An unknown key; a recipe option given without its recipe (``nvcc_threads``) lists the recipes that have it."""
    owners = sorted(k for k in schema if k.count(".") == 1 and k.split(".")[1] == key)
    if "." in key or not owners:
        return ConfigError(f"unknown setting {key!r} in {source}{did_you_mean(key, schema)}")
    if source.startswith("env "):
        example = f"{ENV_PREFIX}<RECIPE>_{env_name(key)[len(ENV_PREFIX):]}={value}"
    elif source.startswith("flag"):
        example = f"--set <recipe>.{key}={value}"
    else:
        example = f"rebuilt: {{<recipe>: {{{key}: {value}}}}}"
    return ConfigError(f"unknown setting {key!r} in {source}: {key} is an option of a recipe, named with it: "
                       f"{', '.join(owners)}", hint=f"name the recipe it is for: {example}")


def parse_assignments(items: list[str] | None) -> dict[str, str]:
    """``["a.b=1", "c=x"]`` (from ``--set``) -> ``{"a.b": "1", "c": "x"}``."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set sgl-kernel.nvcc_threads=8")
        key, _, value = item.partition("=")
        _refuse_on_command_line(key.strip(), value.strip())
        out[key.strip()] = value.strip()
    return out
