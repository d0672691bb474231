"""Recipes and stacks: TOML data describing how each component is fetched and built.

A recipe (``recipes/<name>.toml``) holds its source, options with defaults,
environment, ordered steps and artifacts. A stack (``recipes/stacks/<name>.toml``)
pins settings and per-component options. Nothing here runs anything.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from rebuilt.core import conditions, shape, tomlfile
from rebuilt.core.project import data_root
from rebuilt.core.text import did_you_mean
from rebuilt.errors import ConfigError

ROOT = data_root()  # the checkout, or <prefix>/share/rebuilt when installed (pipx)
# REBUILT_RECIPES_DIR points rebuilt at other recipe folders (each with its stacks/ inside), searched
# in order, e.g. "~/private-recipes:/path/to/rebuilt/recipes" for private recipes beside the shipped
# ones, or the fixture recipes the integration tests build.
RECIPES_DIRS = [Path(p) for p in (os.environ.get("REBUILT_RECIPES_DIR") or str(ROOT / "recipes")).split(os.pathsep) if p]
RECIPES_DIR = RECIPES_DIRS[0]
STACKS_DIR = RECIPES_DIR / "stacks"

ACTIONS = ("collect", "pip-protected", "drop-requirements", "check-import", "keep-installed")
# Machine facts a `when` condition may use besides the recipe's options.
FACTS = ("nvshmem", "gpu", "ccache", "offline")

# What a step can need from the machine (or from an earlier step that `provides` it); the pre-build
# checks are chosen from these. An entry is a name with an optional version ("cmake>=3.26"), or a table
# {need = "nvcc", when = "<condition>"}. Recipe-level `needs` apply to each of the recipe's own steps.
NEEDS = {
    "nvcc": "the stack's CUDA nvcc and a host compiler it accepts",
    "cxx": "a C/C++ host compiler",
    "torch": "torch installed in the target environment",
    "cmake": "cmake (the target environment's bin first, then PATH)",
    "ninja": "ninja (the target environment's bin first, then PATH)",
    "make": "GNU make",
    "git": "git",
    "uv": "uv (the target environment's bin first, then PATH)",
    "libnuma": "libnuma's header and library (libnuma-dev)",
}


@dataclass(frozen=True)
class SourceSpec:
    url: str = ""
    ref: str = ""
    dir: str = ""
    submodules: bool = False
    from_: str = ""  # reuse another recipe's checkout
    subdir: str = ""
    when: str | None = None  # no checkout when false (e.g. a package from the index)


@dataclass(frozen=True)
class StepSpec:
    name: str
    run: tuple | None = None  # strings, or {args = [...], when = "..."} tables
    shell: str | None = None
    action: str | None = None
    with_: dict = field(default_factory=dict)
    cwd: str | None = None
    env: dict = field(default_factory=dict)
    unset: tuple[str, ...] = ()
    network: bool = False
    installs: bool = False
    gpu: bool = False
    when: str | None = None
    replaces: tuple[str, ...] | None = None
    note: str | None = None
    path_prepend: tuple[str, ...] = ()
    needs: tuple = ()  # "name[>=version]" strings or {need, when} tables (validated against NEEDS)
    provides: tuple[str, ...] = ()  # NEEDS names this step makes available to the steps after it


@dataclass(frozen=True)
class Recipe:
    name: str
    path: Path
    summary: str
    source: SourceSpec | None
    options: dict[str, Any]
    choices: dict[str, tuple]
    env: dict[str, Any]
    unset: tuple[str, ...]
    steps: tuple[StepSpec, ...]
    artifacts: tuple[str, ...]
    artifacts_when: str | None
    warnings: tuple[tuple[str, str], ...]
    requires: tuple[str, ...] = ()
    replaces: tuple[str, ...] = ()
    mem_per_job_gb: float = 2.0
    nvcc_threads_option: str = ""
    needs: tuple = ()  # added to each of the recipe's own steps
    provides: tuple[str, ...] = ()  # available after the recipe's last step
    bisect_clear: tuple[str, ...] = ()  # `inv bisect` removes these (~ and ${VAR} expanded) between commits
    limits: dict = field(default_factory=dict)  # option -> (min, max), None for no bound ([limits] table)


@dataclass(frozen=True)
class Stack:
    name: str
    path: Path
    description: str
    components: tuple[str, ...]
    settings: dict[str, Any]  # flat dotted keys, already including component options


def _read_toml(path: Path) -> tomlfile.Toml:
    return tomlfile.load(path, "recipe")


def _line_of(path: Path, *at) -> str:
    """':<line>' of the key path ``at`` in the file, if found."""
    try:
        n = tomlfile.line_of(Path(path).read_text(encoding="utf-8"), at)
    except (OSError, UnicodeDecodeError):
        return ""
    return f":{n}" if n else ""


def _check_keys(table: dict, allowed: set[str], where: str) -> None:
    """Keys of a table the declared shape leaves open (``needs`` tables, ``[limits]`` entries)."""
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}: {key}: unknown key{did_you_mean(key, allowed)}",
                              hint=f"known keys there: {', '.join(sorted(allowed))} ({DOCS})")


def _as_tuple(value, where: str) -> tuple:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list, got {value!r}")
    return tuple(value)


def check_requirement(text: str, where: str) -> Requirement:
    """Parse a requirement string or fail naming where it came from."""
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise ConfigError(f"{where}: invalid requirement {text!r}: {exc}") from None


def check_version(text: str, where: str) -> Version:
    """Parse a version string or fail naming where it came from."""
    try:
        return Version(text)
    except InvalidVersion:
        raise ConfigError(f"{where}: invalid version {text!r}") from None


def check_needs(value, where: str, option_names: set[str], *, provides: bool = False) -> tuple:
    """Validate a `needs` (or `provides`) list: known names, a version specifier at most, conditions."""
    items = _as_tuple(value, where)
    for item in items:
        cond = None
        if isinstance(item, dict) and not provides:
            _check_keys(item, {"need", "when"}, f"{where} needs")
            text, cond = item.get("need"), item.get("when")
        else:
            text = item
        if not isinstance(text, str) or not text:
            raise ConfigError(f"{where}: {'provides' if provides else 'needs'} items are names like \"cmake>=3.26\""
                              + ("" if provides else " or {need = \"nvcc\", when = \"...\"} tables")
                              + f", not {item!r}")
        req = check_requirement(text, f"{where} needs")
        if req.name not in NEEDS:
            raise ConfigError(f"{where}: unknown need {req.name!r}{did_you_mean(req.name, NEEDS)}",
                              hint=f"known: {', '.join(sorted(NEEDS))}")
        if req.extras or req.marker or req.url or (provides and str(req.specifier)):
            raise ConfigError(f"{where}: {text!r}: a need is a name with an optional version specifier"
                              + (" (provides: the name only)" if provides else ""))
        if cond is not None:
            unknown = conditions.names(cond, where) - option_names - set(FACTS)
            if unknown:
                u = sorted(unknown)[0]
                raise ConfigError(f"{where}: condition names unknown {u!r}{did_you_mean(u, option_names | set(FACTS))}")
    return items


def _argv_item(item) -> bool:
    if isinstance(item, str):
        return True
    return isinstance(item, dict) and set(item) <= {"args", "when"} and isinstance(item.get("args"), list)


def _step(raw: dict, where: str, option_names: set[str]) -> StepSpec:
    name = raw["name"]
    if not name:
        raise ConfigError(f"{where}: every step needs a name")
    where = f"{where} ({name})"
    kinds = [k for k in ("run", "shell", "action") if k in raw]
    if len(kinds) != 1:
        raise ConfigError(f"{where}: a step needs exactly one of run, shell or action (found {kinds or 'none'})")
    if "action" in raw and raw["action"] not in ACTIONS:
        raise ConfigError(f"{where}: unknown action {raw['action']!r}{did_you_mean(raw['action'], ACTIONS)}")
    if "when" in raw:
        unknown = conditions.names(raw["when"], where) - option_names - set(FACTS)
        if unknown:
            u = sorted(unknown)[0]
            raise ConfigError(f"{where}: condition names unknown {u!r}{did_you_mean(u, option_names | set(FACTS))}")
    run = raw.get("run")
    if run is not None and (not isinstance(run, list) or not run or not all(_argv_item(a) for a in run)):
        raise ConfigError(f"{where}: run must be a non-empty list of strings (argv), or "
                          f"{{args = [...], when = \"...\"}} tables for conditional arguments")
    return StepSpec(
        name=name, run=tuple(run) if run else None, shell=raw.get("shell"), action=raw.get("action"),
        with_=dict(raw.get("with", {})), cwd=raw.get("cwd"), env=dict(raw.get("env", {})),
        unset=_as_tuple(raw.get("unset"), where), network=bool(raw.get("network", False)),
        installs=bool(raw.get("installs", False)), gpu=bool(raw.get("gpu", False)), when=raw.get("when"),
        replaces=_as_tuple(raw["replaces"], where) if "replaces" in raw else None, note=raw.get("note"),
        path_prepend=_as_tuple(raw.get("path_prepend"), where),
        needs=check_needs(raw.get("needs"), where, option_names),
        provides=check_needs(raw.get("provides"), where, option_names, provides=True),
    )


DOCS = "docs/RECIPES.md"
_NEED = shape.either(shape.STR, shape.Obj({"need": shape.STR, "when": shape.opt(shape.STR)}, closed=True, docs=DOCS))
_NEEDS = shape.either(shape.STR, shape.ListOf(_NEED))
_ARGV_ITEM = shape.either(shape.STR, shape.Obj({"args": shape.ListOf(shape.STR), "when": shape.opt(shape.STR)},
                                               closed=True, what='an {args = [...], when = "..."} table'))
STEP = shape.Obj({
    "name": shape.STR, "run": shape.opt(shape.ListOf(_ARGV_ITEM)), "shell": shape.opt(shape.STR),
    "action": shape.opt(shape.STR), "with": shape.opt(shape.MapOf(shape.ANY)), "cwd": shape.opt(shape.STR),
    "env": shape.opt(shape.MapOf(shape.ANY)), "unset": shape.opt(shape.STRS), "network": shape.opt(shape.BOOL),
    "installs": shape.opt(shape.BOOL), "gpu": shape.opt(shape.BOOL), "when": shape.opt(shape.STR),
    "replaces": shape.opt(shape.STRS), "note": shape.opt(shape.STR), "path_prepend": shape.opt(shape.STRS),
    "needs": shape.opt(_NEEDS), "provides": shape.opt(shape.STRS),
}, closed=True, docs=DOCS)
RECIPE = shape.Obj({
    "recipe": shape.opt(shape.Obj({
        "name": shape.opt(shape.STR), "summary": shape.opt(shape.STR), "requires": shape.opt(shape.STRS),
        "replaces": shape.opt(shape.STRS), "mem_per_job_gb": shape.opt(shape.NUM),
        "nvcc_threads_option": shape.opt(shape.STR), "needs": shape.opt(_NEEDS), "provides": shape.opt(shape.STRS),
    }, closed=True, docs=DOCS)),
    "source": shape.opt(shape.Obj({
        "url": shape.opt(shape.STR), "ref": shape.opt(shape.STR), "dir": shape.opt(shape.STR),
        "submodules": shape.opt(shape.BOOL), "from": shape.opt(shape.STR), "subdir": shape.opt(shape.STR),
        "when": shape.opt(shape.STR),
    }, closed=True, docs=DOCS)),
    "options": shape.opt(shape.MapOf(shape.ANY)), "choices": shape.opt(shape.MapOf(shape.ListOf(shape.ANY))),
    "limits": shape.opt(shape.MapOf(shape.ANY)), "env": shape.opt(shape.MapOf(shape.ANY)),
    "unset": shape.opt(shape.STRS), "steps": shape.opt(shape.ListOf(STEP)),
    "artifacts": shape.opt(shape.Obj({"wheels": shape.opt(shape.STRS), "when": shape.opt(shape.STR)}, closed=True,
                                     docs=DOCS)),
    "warnings": shape.opt(shape.ListOf(shape.Obj({"when": shape.opt(shape.STR), "text": shape.STR}, closed=True))),
    "bisect": shape.opt(shape.Obj({"clear": shape.opt(shape.ANY)}, closed=True, docs=DOCS)),
}, closed=True, docs=DOCS)
STACK = shape.Obj({
    "stack": shape.opt(shape.Obj({"name": shape.opt(shape.STR), "description": shape.opt(shape.STR)}, closed=True)),
    "settings": shape.opt(shape.MapOf(shape.ANY)), "components": shape.opt(shape.MapOf(shape.MapOf(shape.ANY))),
}, closed=True, docs=DOCS)
HINT = "compare with the shipped recipes and docs/RECIPES.md"


def parse_recipe(path: Path) -> Recipe:
    """Load and validate one recipe file."""
    doc = _read_toml(path)
    data = doc.check(RECIPE, hint=HINT)
    where = str(path)
    meta = data.get("recipe", {})
    name = meta.get("name") or path.stem
    if name != path.stem:
        raise ConfigError(f"{where}: [recipe] name {name!r} must match the file name {path.stem!r}")
    if not meta.get("summary"):
        raise ConfigError(f"{where}: [recipe] needs a one-line summary")
    src = data.get("source")
    source = None
    if src is not None:
        source = SourceSpec(url=src.get("url", ""), ref=src.get("ref", ""), dir=src.get("dir", name),
                            submodules=bool(src.get("submodules", False)), from_=src.get("from", ""),
                            subdir=src.get("subdir", ""), when=src.get("when"))
    options = dict(data.get("options", {}))
    for opt, value in options.items():
        if opt.endswith(("requirement", "requirements", "packages")):
            for req in ([value] if isinstance(value, str) else value):
                if req:
                    check_requirement(req, f"{where} [options] {opt}")
    choices = {k: tuple(v) for k, v in data.get("choices", {}).items()}
    for opt, allowed in choices.items():
        if opt not in options:
            raise ConfigError(f"{where} [choices]: {opt!r} is not an option{did_you_mean(opt, options)}")
        if options[opt] not in allowed:
            raise ConfigError(f"{where}: default {opt} = {options[opt]!r} is not one of {list(allowed)}")
    steps = tuple(_step(s, doc.at("steps", i), set(options)) for i, s in enumerate(data.get("steps", [])))
    seen: set[str] = set()
    for s in steps:
        if s.name in seen:
            raise ConfigError(f"{where}: two steps are named {s.name!r}")
        seen.add(s.name)
    warnings = tuple((w.get("when", "true"), w["text"]) for w in data.get("warnings", []))
    bisect = data.get("bisect", {})
    clear = _as_tuple(bisect.get("clear"), f"{where} [bisect] clear")
    if not all(isinstance(c, str) and c.strip() for c in clear):
        raise ConfigError(f"{where} [bisect] clear: expected a list of folder paths (strings)")
    return Recipe(
        name=name, path=path, summary=meta["summary"].strip().splitlines()[0], source=source,
        options=options, choices=choices, env=dict(data.get("env", {})),
        unset=_as_tuple(data.get("unset"), where), steps=steps,
        artifacts=_as_tuple(data.get("artifacts", {}).get("wheels"), where),
        artifacts_when=data.get("artifacts", {}).get("when"), warnings=warnings,
        requires=_as_tuple(meta.get("requires"), where), replaces=_as_tuple(meta.get("replaces"), where),
        mem_per_job_gb=float(meta.get("mem_per_job_gb", 2.0)),
        nvcc_threads_option=meta.get("nvcc_threads_option", ""),
        needs=check_needs(meta.get("needs"), f"{where} [recipe]", set(options)),
        provides=check_needs(meta.get("provides"), f"{where} [recipe]", set(options), provides=True),
        bisect_clear=clear,
        limits=_limits(data, options, meta, where),
    )


def _limits(data: dict, options: dict, meta: dict, where: str) -> dict[str, tuple]:
    """``[limits] jobs_per_gpu = {min = 1, max = 8}``: bounds of numeric options, checked on every value set.

    The option named by ``nvcc_threads_option`` is a thread count: at least 1 without saying so.
    """
    out: dict[str, tuple] = {}
    threads = meta.get("nvcc_threads_option")
    if threads and threads in options:
        out[threads] = (1, None)
    table = data.get("limits", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{where} [limits]: expected a table of option = {{min = N, max = N}}")
    for opt, spec in table.items():
        at = f"{where} [limits] {opt}"
        if opt not in options:
            raise ConfigError(f"{at}: not an option{did_you_mean(opt, options)}")
        if not isinstance(spec, dict):
            raise ConfigError(f"{at}: expected {{min = N, max = N}}, got {spec!r}")
        _check_keys(spec, {"min", "max"}, at)
        bounds = (spec.get("min"), spec.get("max"))
        if any(b is not None and (isinstance(b, bool) or not isinstance(b, (int, float))) for b in bounds):
            raise ConfigError(f"{at}: min and max must be numbers, got {spec!r}")
        out[opt] = bounds
    for opt, (lo, hi) in out.items():
        problem = limit_problem(options[opt], lo, hi)
        if problem:
            raise ConfigError(f"{where}: default {opt} = {options[opt]!r} {problem}")
    return out


def limit_problem(value, lo, hi) -> str | None:
    """Why ``value`` breaks the bounds (``"must be at least 1"``), or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "must be a number"
    if lo is not None and value < lo:
        return f"must be at least {lo}"
    if hi is not None and value > hi:
        return f"must be at most {hi}"
    return None


def _dirs(recipes_dir: Path | None) -> list[Path]:
    return [Path(recipes_dir)] if recipes_dir else RECIPES_DIRS


def recipe_names(recipes_dir: Path | None = None) -> list[str]:
    """Names of all recipes (file stems), sorted."""
    return sorted({p.stem for d in _dirs(recipes_dir) for p in d.glob("*.toml")})


def _parse_safely(path: Path) -> Recipe:
    """parse_recipe, with a wrong type anywhere (``steps = 5``) reported against the file, not as a traceback."""
    try:
        return parse_recipe(path)
    except ConfigError:
        raise
    except (TypeError, AttributeError, ValueError, KeyError) as exc:
        raise ConfigError(f"{path}: invalid recipe: a value has the wrong type or shape ({type(exc).__name__}: "
                          f"{exc})", hint="compare with the shipped recipes and docs/RECIPES.md") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid recipe: nested too deeply") from None


@functools.cache
def _load_all(dirs: tuple[Path, ...]) -> tuple[dict[str, Recipe], dict[str, ConfigError]]:
    """(valid recipes, errors of the invalid ones): a bad file breaks only the tasks that use it."""
    out: dict[str, Recipe] = {}
    bad: dict[str, ConfigError] = {}
    for d in dirs:
        for p in sorted(d.glob("*.toml")):
            if p.stem in out or p.stem in bad:
                continue  # the first folder wins
            try:
                out[p.stem] = _parse_safely(p)
            except ConfigError as exc:
                bad[p.stem] = exc
    for name, r in list(out.items()):
        unknown = [dep for dep in r.requires if dep not in out and dep not in bad]
        if unknown:
            bad[name] = ConfigError(f"{r.path}{_line_of(r.path, 'recipe', 'requires')}: recipe.requires: unknown "
                                    f"recipe {unknown[0]!r}{did_you_mean(unknown[0], (set(out) | set(bad)) - {name})}",
                                    hint="requires names other recipes (file names in the recipes folder)")
            del out[name]
    return out, bad


def all_recipes(recipes_dir: Path | None = None) -> dict[str, Recipe]:
    """Every valid recipe (cached per process); see ``invalid`` for the others."""
    return _load_all(tuple(_dirs(recipes_dir)))[0]


def invalid(recipes_dir: Path | None = None) -> dict[str, ConfigError]:
    """Recipe name -> why its file is unusable. Using that recipe raises the error."""
    return _load_all(tuple(_dirs(recipes_dir)))[1]


def get(name: str, recipes_dir: Path | None = None) -> Recipe:
    """One recipe by name, with a did-you-mean for typos; an invalid recipe file raises its error here."""
    recipes = all_recipes(recipes_dir)
    if name not in recipes:
        bad = invalid(recipes_dir)
        if name in bad:
            raise bad[name]
        raise ConfigError(f"unknown recipe {name!r}{did_you_mean(name, recipes)}",
                          hint=f"recipes are the files in {', '.join(map(str, _dirs(recipes_dir)))}")
    return recipes[name]


def _stack_dirs(stacks_dir: Path | None) -> list[Path]:
    return [Path(stacks_dir)] if stacks_dir else [d / "stacks" for d in RECIPES_DIRS]


def stack_names(stacks_dir: Path | None = None) -> list[str]:
    return sorted({p.stem for d in _stack_dirs(stacks_dir) for p in d.glob("*.toml")})


def load_stack(name: str, stacks_dir: Path | None = None, recipes_dir: Path | None = None) -> Stack:
    """Load a stack by name (or path to a .toml file) and validate its components."""
    candidates = [Path(name)] if name.endswith(".toml") else [d / f"{name}.toml" for d in _stack_dirs(stacks_dir)]
    path = next((p for p in candidates if p.exists()), candidates[0])
    if not path.exists():
        raise ConfigError(f"unknown stack {name!r}{did_you_mean(name, stack_names(stacks_dir))}",
                          hint=f"stacks are the files in {', '.join(map(str, _stack_dirs(stacks_dir)))}")
    data = _read_toml(path).check(STACK, hint="compare with the shipped stacks in recipes/stacks/")
    where = str(path)
    meta = data.get("stack", {})
    recipes = all_recipes(recipes_dir)
    flat: dict[str, Any] = {}
    for key, value in data.get("settings", {}).items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    components = []
    for comp, table in data.get("components", {}).items():
        if comp in invalid(recipes_dir):  # its own error comes when it is built; other tasks still work
            components.append(comp)
            continue
        if comp not in recipes:
            raise ConfigError(f"{where}: component {comp!r} has no recipe{did_you_mean(comp, recipes)}")
        components.append(comp)
        for key, value in table.items():
            if key == "version":
                check_version(str(value), f"{where} [components.{comp}] version")
            flat[f"{comp}.{key}"] = value
    return Stack(name=meta.get("name", path.stem), path=path, description=meta.get("description", ""),
                 components=tuple(components), settings=flat)


def build_order(names: list[str], recipes: dict[str, Recipe]) -> list[str]:
    """Topological order of ``names`` by ``requires`` (requirements outside ``names`` are ignored)."""
    wanted = set(names)
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(n: str, path: list[str]) -> None:
        if state.get(n) == "done":
            return
        if state.get(n) == "active":
            cycle = path[path.index(n):] + [n]
            raise ConfigError(f"dependency cycle: {' -> '.join(cycle)}",
                              hint="fix `requires` in the recipes named")
        state[n] = "active"
        for dep in recipes[n].requires:
            if dep in wanted:
                visit(dep, path + [n])
        state[n] = "done"
        order.append(n)

    for n in names:
        visit(n, [])
    return order
