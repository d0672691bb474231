"""Bench specs: a TOML file → a validated ``BenchSpec`` → concrete commands (a pure function).

A spec never names a model path: that comes from settings (``bench.model_path``) or
the command line. One process runs per (case, repeat) by default (``process =
"per-case"``): repeats stay independent, a crash loses one case, and every nsys
report or torch trace belongs to one case. ``process = "per-repeat"`` (one_batch
only) passes the matrix as lists (``--batch-size 1 8 64``) to one process per
repeat, which loads the model once per repeat instead of once per case.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
import os
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rebuilt.core import flags, shape, tomlfile
from rebuilt.core.text import did_you_mean
from rebuilt.errors import ConfigError

SCHEMA_VERSION = 1
MODULES = {"one_batch": "sglang.bench_one_batch", "serving": "sglang.bench_serving"}

# axis → (flag, upstream default). Order is the order of the case id and of itertools.product.
AXES: dict[str, dict[str, tuple[str, Any]]] = {
    "one_batch": {
        "batch_size": ("--batch-size", 1),
        "input_len": ("--input-len", 1024),
        "output_len": ("--output-len", 16),
    },
    "serving": {
        "request_rate": ("--request-rate", math.inf),
        "max_concurrency": ("--max-concurrency", None),
        "num_prompts": ("--num-prompts", 1000),
        "random_input_len": ("--random-input-len", 1024),
        "random_output_len": ("--random-output-len", 1024),
    },
}
ALIASES = {
    "bs": "batch_size", "il": "input_len", "ol": "output_len",
    "rate": "request_rate", "conc": "max_concurrency", "concurrency": "max_concurrency",
    "n": "num_prompts", "prompts": "num_prompts",
    "in": "random_input_len", "out": "random_output_len",
}
SHORT = {
    "batch_size": "bs", "input_len": "il", "output_len": "ol", "request_rate": "rate",
    "max_concurrency": "conc", "num_prompts": "n", "random_input_len": "in", "random_output_len": "out",
}
NSYS_ARGS = ("--trace=cuda", "--sample=process-tree", "--cudabacktrace=kernel:0")
# Flags the runner owns: a spec that sets them would fight the expansion.
RESERVED = {"model-path", "model", "run-name", "result-filename", "output-file", "base-url",
            "host", "port", "profile", "tokenizer"}
DEFAULT_BASE_URL = "http://127.0.0.1:30000"


@dataclass(frozen=True)
class Wrappers:
    nsys: bool = False
    nsys_program: str = "nsys"
    nsys_args: tuple[str, ...] = NSYS_ARGS
    nsys_output: str = "nsys-report"
    torch_profile: bool = False


@dataclass(frozen=True)
class BenchSpec:
    name: str
    kind: str
    matrix: dict[str, tuple]  # only the axes the spec names, in AXES order
    server: dict[str, Any] = field(default_factory=dict)
    client: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    wrappers: Wrappers = Wrappers()
    repeats: int = 1
    process: str = "per-case"
    timeout_s: float = 3600.0
    description: str = ""
    path: str | None = None
    profile: str = ""  # serving: the serve profile (recipes/serve/<name>.toml) the run talks to
    # bench.health --hosts: a GPU or host below the fleet's median by more than this fraction is flagged
    health_slower: float | None = None

    def cases(self) -> list[Case]:
        """Every combination of the matrix, in upstream's itertools.product order."""
        axes = list(self.matrix)
        return [Case(self.kind, dict(zip(axes, combo))) for combo in itertools.product(*self.matrix.values())]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Case:
    kind: str
    given: dict[str, Any]  # the axes set by the spec

    @property
    def params(self) -> dict[str, Any]:
        """All axes, upstream defaults filled in for the ones the spec leaves out."""
        return {axis: self.given.get(axis, default) for axis, (_, default) in AXES[self.kind].items()}

    @property
    def id(self) -> str:
        return case_id(self.kind, self.params)


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    env: dict[str, str]  # changes to the caller's environment
    cwd: str
    cases: tuple[Case, ...]
    repeat: int  # 1-based
    result_file: str
    log_file: str
    run_name: str | None = None

    @property
    def label(self) -> str:
        ids = self.cases[0].id if len(self.cases) == 1 else f"{len(self.cases)} cases"
        return f"{ids} r{self.repeat}"

    def shell(self) -> str:
        """The command as a shell line, env changes first (for --dry-run and logs)."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        return (env + " " if env else "") + shlex.join(self.argv)


def fmt_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    return str(value)


def case_id(kind: str, params: Mapping[str, Any]) -> str:
    """``bs64-il512-ol16`` / ``rateinf-conc8-n200-in512-out128`` (None shown as ``none``)."""
    parts = []
    for axis in AXES[kind]:
        value = params.get(axis)
        parts.append(SHORT[axis] + ("none" if value is None else fmt_value(value)))
    return "-".join(parts)


def flag_args(key: str, value: Any) -> list[str]:
    """``mem_fraction_static=0.6`` → ``--mem-fraction-static 0.6``; true → bare flag; false → nothing."""
    flag = "--" + key.replace("_", "-")
    if value is True:
        return [flag]
    if value is False or value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [flag, *map(fmt_value, value)]
    return [flag, fmt_value(value)]


# --------------------------------------------------------------------------- loading


DOCS = "docs/BENCH.md"
_SCALAR = shape.either(shape.STR, shape.NUM, shape.BOOL)
_FLAGS = shape.MapOf(shape.either(_SCALAR, shape.ListOf(_SCALAR)), what="a table of flag = value")
SPEC = shape.Obj({
    "schema_version": shape.opt(shape.INT), "name": shape.opt(shape.STR), "kind": shape.opt(shape.STR),
    "description": shape.opt(shape.STR), "repeats": shape.opt(shape.INT), "process": shape.opt(shape.STR),
    "timeout_s": shape.opt(shape.NUM), "profile": shape.opt(shape.STR), "health_slower": shape.opt(shape.NUM),
    "matrix": shape.opt(shape.MapOf(shape.either(shape.NUM, shape.ListOf(shape.NUM)))),
    "server": shape.opt(_FLAGS), "client": shape.opt(_FLAGS), "env": shape.opt(shape.MapOf(shape.STR)),
    "wrappers": shape.opt(shape.Obj({
        "nsys": shape.opt(shape.Obj({"enabled": shape.opt(shape.BOOL), "program": shape.opt(shape.STR),
                                     "args": shape.opt(shape.ListOf(shape.STR)), "output": shape.opt(shape.STR)},
                                    closed=True, docs=DOCS)),
        "torch_profile": shape.opt(shape.Obj({"enabled": shape.opt(shape.BOOL)}, closed=True, docs=DOCS)),
    }, closed=True, docs=DOCS)),
}, closed=True, docs=DOCS)


def _at(doc: tomlfile.Toml | None, *at) -> str:
    """``<file>:<line>: <key>`` for a spec file; ``--cases: <key>`` for the command line."""
    return doc.at(*at) if doc else f"--cases: {shape.key_name(at)}"


def _axis(kind: str, key: str, doc: tomlfile.Toml | None = None) -> str:
    axes = list(AXES[kind])
    name = ALIASES.get(key, key)
    if name not in axes:
        err = tomlfile.unknown_key(doc, ("matrix", key), axes + [a for a, v in ALIASES.items() if v in axes], DOCS)
        raise err if doc else ConfigError(f"--cases: {err}", hint=err.hint)
    return name


def _check_flags(table: Mapping, what: str, doc: tomlfile.Toml, axes: Iterable[str]) -> dict[str, Any]:
    out = {}
    axis_flags = {a.replace("_", "-") for a in axes}
    for key, value in table.items():
        flag = key.replace("_", "-")
        if flag in RESERVED:
            hint = ("the model path comes from settings (bench.model_path) or --model-path"
                    if flag in ("model-path", "model", "tokenizer") else "the runner sets it for every case")
            raise ConfigError(f"{_at(doc, what, key)}: may not be set in [{what}]", hint=hint)
        if flag in axis_flags:
            raise ConfigError(f"{_at(doc, what, key)}: belongs in [matrix], not [{what}]")
        out[flag] = value
    return out


def _matrix(kind: str, table: Mapping, doc: tomlfile.Toml | None) -> dict[str, tuple]:
    got: dict[str, tuple] = {}
    for key, value in table.items():
        axis = _axis(kind, key, doc)
        values = value if isinstance(value, list) else [value]
        if not values:
            raise ConfigError(f"{_at(doc, 'matrix', key)}: is empty")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise ConfigError(f"{_at(doc, 'matrix', key)}: needs positive numbers, got {v!r}")
            if axis != "request_rate" and not isinstance(v, int):
                raise ConfigError(f"{_at(doc, 'matrix', key)}: needs whole numbers, got {v!r}")
        got[axis] = tuple(values)
    return {axis: got[axis] for axis in AXES[kind] if axis in got}


def _wrappers(table: Mapping, kind: str, doc: tomlfile.Toml) -> Wrappers:
    nsys = table.get("nsys", {})
    torch = table.get("torch_profile", {})
    w = Wrappers(
        nsys=nsys.get("enabled", bool(nsys)),
        nsys_program=nsys.get("program", "nsys"),
        nsys_args=tuple(nsys.get("args", NSYS_ARGS)),
        nsys_output=nsys.get("output", "nsys-report"),
        torch_profile=torch.get("enabled", bool(torch)),
    )
    if w.nsys and kind == "serving":
        raise ConfigError(f"{_at(doc, 'wrappers', 'nsys')}: nsys cannot wrap bench_serving (a client); "
                          "profile the server instead")
    return w


def _scalars(data: Mapping, doc: tomlfile.Toml, kind: str) -> dict[str, Any]:
    """repeats, process, timeout_s and profile, each checked against the kind."""
    if kind == "one_batch" and data.get("client"):
        raise ConfigError(f"{_at(doc, 'client')}: [client] is for serving specs; one_batch flags go in [server]")
    repeats = data.get("repeats", 1)
    if repeats < 1:
        raise ConfigError(f"{_at(doc, 'repeats')}: must be a whole number >= 1, got {repeats}")
    process = data.get("process", "per-case")
    if process not in ("per-case", "per-repeat"):
        raise ConfigError(f"{_at(doc, 'process')}: is 'per-case' or 'per-repeat', not {process!r}")
    if process == "per-repeat" and kind == "serving":
        raise ConfigError(f"{_at(doc, 'process')}: bench_serving takes one case per process")
    timeout = data.get("timeout_s", 3600)
    if timeout <= 0:
        raise ConfigError(f"{_at(doc, 'timeout_s')}: must be a positive number of seconds")
    slower = data.get("health_slower")
    if slower is not None and not 0 < slower < 1:
        raise ConfigError(f"{_at(doc, 'health_slower')}: a fraction between 0 and 1 (0.1 = 10% below the fleet's "
                          f"median), got {slower}")
    profile = data.get("profile", "")
    if profile and kind != "serving":
        raise ConfigError(f"{_at(doc, 'profile')}: names a serving profile (recipes/serve/<name>.toml) and only "
                          "serving specs take one")
    return {"repeats": repeats, "process": process, "timeout_s": float(timeout), "profile": profile,
            "health_slower": None if slower is None else float(slower)}


def parse(data: Mapping, path: str = "<spec>", text: str = "") -> BenchSpec:
    """Validate a spec already read from TOML (``text``, the file's own, gives messages their lines)."""
    return _parse(tomlfile.Toml(Path(path), text, dict(data)))


def _parse(doc: tomlfile.Toml) -> BenchSpec:
    """Its shape (types, keys, lines), then what the values mean together."""
    data = doc.check(SPEC)
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise ConfigError(f"{_at(doc, 'schema_version')}: schema_version {version} is not supported (this rebuilt "
                          f"reads {SCHEMA_VERSION})")
    kind = data.get("kind", "one_batch")
    if kind not in AXES:
        raise ConfigError(f"{_at(doc, 'kind')}: unknown kind {kind!r}{did_you_mean(kind, AXES)}",
                          hint="kind is one_batch or serving")
    return BenchSpec(
        name=data.get("name") or doc.path.stem, kind=kind, matrix=_matrix(kind, data.get("matrix", {}), doc),
        server=_check_flags(data.get("server", {}), "server", doc, AXES[kind]),
        client=_check_flags(data.get("client", {}), "client", doc, AXES[kind]),
        env=dict(data.get("env", {})), wrappers=_wrappers(data.get("wrappers", {}), kind, doc),
        description=data.get("description", ""), path=str(doc.path), **_scalars(data, doc, kind),
    )


def load(path: Path | str) -> BenchSpec:
    """Read and validate a spec file; malformed TOML, a wrong type or an unknown key names file, line and key."""
    return _parse(tomlfile.load(path, "bench spec"))


def spec_dirs(cwd: Path | None = None) -> list[Path]:
    """Where spec names are looked up: ``./bench/specs`` then the checkout's ``bench/specs``."""
    from rebuilt.core.project import data_root

    here = data_root() / "bench" / "specs"
    dirs = [Path(cwd or Path.cwd()) / "bench" / "specs", here]
    return list(dict.fromkeys(d.resolve() for d in dirs))


def find(name_or_path: str, cwd: Path | None = None) -> Path:
    """A spec file path from a path or a bare name (``one-batch-default``)."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or os.sep in name_or_path:
        if candidate.is_file():
            return candidate
        raise ConfigError(f"bench spec {name_or_path} does not exist")
    known: list[str] = []
    for d in spec_dirs(cwd):
        p = d / f"{name_or_path}.toml"
        if p.is_file():
            return p
        known += [f.stem for f in sorted(d.glob("*.toml"))]
    close = difflib.get_close_matches(name_or_path, known, n=1)
    raise ConfigError(f"no bench spec named '{name_or_path}'",
                      hint=f"did you mean '{close[0]}'?" if close else f"known specs: {', '.join(sorted(set(known)))}")


# --------------------------------------------------------------------------- overrides


def parse_cases(text: str, kind: str) -> dict[str, tuple]:
    """``bs=1,8;il=512`` → ``{"batch_size": (1, 8), "input_len": (512,)}``."""
    out: dict[str, list] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        if "=" not in part:
            raise ConfigError(f"--cases: '{part}' is not AXIS=V1,V2 (e.g. bs=1,8;il=512)")
        key, values = part.split("=", 1)
        out[_axis(kind, key.strip())] = [flags.number(v, "--cases", kind=float, infinite=True)
                                                   for v in values.split(",") if v.strip()]
    return {k: tuple(v) for k, v in out.items()}


def override(spec: BenchSpec, *, cases: str | None = None, repeats: int | None = None) -> BenchSpec:
    """The spec with ``--cases`` axes replaced and ``--repeats`` applied, validated again."""
    matrix = dict(spec.matrix)
    if cases:
        matrix.update(parse_cases(cases, spec.kind))
        matrix = _matrix(spec.kind, {k: list(v) for k, v in matrix.items()}, None)
    if repeats is not None and (repeats < 1):
        raise ConfigError("--repeats must be >= 1")
    return dataclasses.replace(spec, matrix=matrix, repeats=repeats or spec.repeats)


# --------------------------------------------------------------------------- expansion


def _base_env(spec: BenchSpec, cuda_visible_devices: str | None, extra_env: Mapping[str, str] | None) -> dict:
    env = dict(spec.env)
    if cuda_visible_devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(cuda_visible_devices)
    env.update(extra_env or {})
    return env


def _axis_flags(kind: str, given: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for axis, (flag, _) in AXES[kind].items():
        if axis in given:
            value = given[axis]
            out += [flag, *map(fmt_value, value if isinstance(value, (list, tuple)) else [value])]
    return out


def _flags(table: Mapping[str, Any]) -> list[str]:
    return [a for k, v in table.items() for a in flag_args(k, v)]


def _wrap(spec: BenchSpec, argv: list[str], cwd: Path) -> list[str]:
    w = spec.wrappers
    if not w.nsys:
        return argv
    return [w.nsys_program, "profile", *w.nsys_args, "-o", str(cwd / w.nsys_output), *argv]


def expand(
    spec: BenchSpec,
    *,
    python: str,
    model_path: str,
    out_dir: Path | str,
    cuda_visible_devices: str | None = None,
    base_url: str | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> list[Command]:
    """The concrete commands of a spec, repeat-major (all cases of repeat 1, then repeat 2, …)."""
    if not os.path.isabs(python):
        raise ConfigError(f"the target interpreter must be an absolute path, not '{python}'")
    if not model_path:
        raise ConfigError("no model path", hint="pass --model-path or set bench.model_path")
    out_dir = Path(out_dir)
    env = _base_env(spec, cuda_visible_devices, extra_env)
    module = MODULES[spec.kind]
    cases = spec.cases()
    commands = []
    for r in range(1, spec.repeats + 1):
        groups = [(c.id, (c,), c.given) for c in cases]
        if spec.process == "per-repeat":
            groups = [("all", tuple(cases), dict(spec.matrix))]
        for gid, group, given in groups:
            cwd = out_dir / gid / f"r{r}"
            result = cwd / "result.jsonl"
            argv = [python, "-m", module]
            run_name = None
            if spec.kind == "one_batch":
                run_name = f"{spec.name}.{gid}.r{r}"
                argv += ["--model-path", model_path, *_axis_flags(spec.kind, given), *_flags(spec.server),
                         "--run-name", run_name, "--result-filename", str(result)]
            else:
                argv += ["--base-url", base_url or DEFAULT_BASE_URL, "--model", model_path,
                         *_flags({"backend": "sglang", "dataset-name": "random-ids", **spec.client}),
                         *_axis_flags(spec.kind, given), "--output-file", str(result)]
            if spec.wrappers.torch_profile:
                argv.append("--profile")
            commands.append(Command(
                argv=tuple(_wrap(spec, argv, cwd)), env=dict(env), cwd=str(cwd), cases=group, repeat=r,
                result_file=str(result), log_file=str(cwd / "output.log"), run_name=run_name,
            ))
    return commands


def server_command(
    spec: BenchSpec,
    *,
    python: str,
    model_path: str,
    base_url: str | None = None,
    cuda_visible_devices: str | None = None,
    profiler_dir: str | None = None,
) -> Command:
    """The ``sglang.launch_server`` command a serving spec runs against (shown, or started by a session)."""
    from urllib.parse import urlsplit

    url = urlsplit(base_url or DEFAULT_BASE_URL)
    env = _base_env(spec, cuda_visible_devices, None)
    if spec.wrappers.torch_profile and profiler_dir:
        env["SGLANG_TORCH_PROFILER_DIR"] = profiler_dir
    argv = [python, "-m", "sglang.launch_server", "--model-path", model_path, *_flags(spec.server),
            "--host", url.hostname or "127.0.0.1", "--port", str(url.port or 30000)]
    return Command(argv=tuple(argv), env=env, cwd=str(Path.cwd()), cases=(), repeat=0,
                   result_file="", log_file="")
