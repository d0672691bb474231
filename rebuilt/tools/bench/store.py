"""Stored bench runs: ``<workdir>/bench/<run-id>/run.json`` plus the raw logs and traces.

``run.json`` (schema_version 1) holds the spec, the machine and GPU, the stack manifest
given by the caller, the settings, every command with its exit status and files, and
every case with all its repeats (upstream's JSONL field names plus ``repeat``). It is
rewritten atomically after each command, so an interrupted run still has one.
Non-finite numbers (an unlimited request rate) are stored as the strings ``"inf"``,
``"-inf"``, ``"nan"`` to keep the file strict JSON.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import re
import secrets
import shutil
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rebuilt.core import shape
from rebuilt.core.fs import mark_cachedir, read_json, write_json
from rebuilt.errors import InputError

SCHEMA_VERSION = 1
RUN_FILE = "run.json"


def bench_dir(workdir: Path | str) -> Path:
    return Path(workdir) / "bench"


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def new_run_id(spec_name: str, when: dt.datetime | None = None) -> str:
    """``20260122-093000-one-batch-default-1a2b``: sorts by time, unique, readable."""
    when = when or dt.datetime.now()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", spec_name).strip("-") or "run"
    return f"{when:%Y%m%d-%H%M%S}-{slug}-{secrets.token_hex(2)}"


def create_run_dir(workdir: Path | str, run_id: str) -> Path:
    root = mark_cachedir(bench_dir(workdir))
    path = root / run_id
    path.mkdir(parents=True, exist_ok=False)
    return path


def strict(obj: Any) -> Any:
    """Replace non-finite floats by strings, recursively (strict JSON)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    return obj


def write_run(run_dir: Path | str, data: dict) -> Path:
    """Write ``run.json`` atomically (temp file + rename)."""
    data = {"schema_version": SCHEMA_VERSION, **data}
    return write_json(Path(run_dir) / RUN_FILE, strict(data))


_ANY_MAP = shape.MapOf(shape.ANY)
RUN = shape.Obj({
    "schema_version": shape.INT, "run_id": shape.STR, "status": shape.STR, "created": shape.opt(shape.STR),
    "spec": shape.Obj({"name": shape.STR, "kind": shape.STR}),
    "cases": shape.ListOf(shape.Obj({"id": shape.STR, "repeats": shape.ListOf(_ANY_MAP)})),
    "commands": shape.opt(shape.ListOf(_ANY_MAP)),
    **{k: shape.opt(shape.nullable(_ANY_MAP)) for k in ("gpu", "target", "stack", "settings", "machine", "serve")},
})


def load_run(run_dir: Path | str) -> dict:
    """A stored run (``run.json``), checked against ``RUN`` before anything reads it."""
    path = Path(run_dir)
    path = path / RUN_FILE if path.is_dir() else path
    hint = "bench.run wrote it: remove the run's folder if it is damaged"
    data = read_json(path, what="bench run", hint=hint)
    version = data.get("schema_version") if isinstance(data, dict) else None
    if isinstance(data, dict) and version != SCHEMA_VERSION:
        raise InputError(f"{path}: schema_version {version!r}; this rebuilt reads {SCHEMA_VERSION}")
    shape.check(data, RUN, str(path), error=InputError, hint=hint)
    data["_dir"] = str(path.parent)
    return data


def machine_info() -> dict[str, Any]:
    return {"hostname": socket.gethostname(), "platform": platform.platform(),
            "machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()}


def attach(run_dir: Path | str, paths: Iterable[Path | str], folder: str = "attachments") -> list[str]:
    """Copy files or folders (server-side traces, …) into the run; returns their paths in the run."""
    dest_root = Path(run_dir) / folder
    out = []
    for src in map(Path, paths):
        dest = dest_root / src.name
        dest_root.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest, dirs_exist_ok=True)
        elif src.is_file():
            shutil.copy2(src, dest)
        else:
            raise InputError(f"cannot attach {src}: it does not exist")
        out.append(str(dest.relative_to(run_dir)))
    return out


def runs(workdir: Path | str) -> list[dict]:
    """Every readable run in the work directory, oldest first."""
    root = bench_dir(workdir)
    found = []
    for path in sorted(root.glob(f"*/{RUN_FILE}")) if root.is_dir() else []:
        try:
            found.append(load_run(path))
        except InputError:
            continue
    return sorted(found, key=lambda r: (r.get("created", ""), r.get("run_id", "")))


def resolve(ref: str, workdir: Path | str) -> Path:
    """A run directory from a path, a run id (or unique prefix), ``latest`` or ``latest~N``."""
    p = Path(ref)
    if p.is_dir() and (p / RUN_FILE).is_file():
        return p
    if p.name == RUN_FILE and p.is_file():
        return p.parent
    all_runs = runs(workdir)
    if m := re.fullmatch(r"latest(?:~(\d+))?", ref):
        back = int(m.group(1) or 0)
        if back >= len(all_runs):
            raise InputError(f"'{ref}': only {len(all_runs)} run(s) in {bench_dir(workdir)}",
                             hint="bench.run stores a run there (--workdir names another work dir); to try the "
                                  "tools without a GPU, docs/BENCH.md's 'Try it' uses the runs in bench/samples")
        return Path(all_runs[-1 - back]["_dir"])
    ids = [r["run_id"] for r in all_runs]
    exact = [r for r in all_runs if r["run_id"] == ref]
    hits = exact or [r for r in all_runs if r["run_id"].startswith(ref)]
    if len(hits) == 1:
        return Path(hits[0]["_dir"])
    if len(hits) > 1:
        raise InputError(f"'{ref}' matches {len(hits)} runs: {', '.join(r['run_id'] for r in hits)}")
    raise InputError(f"no bench run '{ref}' in {bench_dir(workdir)}",
                     hint=("known: " + ", ".join(ids[-5:])) if ids else "run `inv bench.run` first")


def stack_summary(run: dict) -> str:
    """``sglang 0.5.4@1053e1b, torch 2.8.0`` from the stack manifest, else from the import probe."""
    parts = []
    stack = run.get("stack") or {}
    comps = stack.get("components", stack) if isinstance(stack, dict) else {}
    for name, info in comps.items():
        if isinstance(info, dict):
            ver, commit = info.get("version"), info.get("commit")
            if ver or commit:
                parts.append(f"{name} {ver or ''}{'@' + str(commit)[:7] if commit else ''}".strip())
        elif isinstance(info, (str, int, float)):
            parts.append(f"{name} {info}")
    if not parts:
        for name, info in (run.get("target") or {}).get("modules", {}).items():
            if "version" in info:
                parts.append(f"{name} {info['version']}")
    return ", ".join(parts) or "-"


def gpu_summary(run: dict) -> str:
    gpu = run.get("gpu") or {}
    chosen = [g for g in gpu.get("gpus", []) if g.get("index") in gpu.get("selected", [])]
    if not chosen:
        return "-"
    names = {g["name"] for g in chosen}
    return f"{len(chosen)}x {', '.join(sorted(names))}"


def format_list(all_runs: list[dict]) -> str:
    if not all_runs:
        return "no bench runs yet"
    rows = [("run", "date", "spec", "status", "cases", "gpu", "stack")]
    for r in all_runs:
        cases = r.get("cases", [])
        reps = sum(len(c.get("repeats", [])) for c in cases)
        rows.append((r.get("run_id", "?"), (r.get("created") or "")[:16].replace("T", " "),
                     (r.get("spec") or {}).get("name", "?"), r.get("status", "?"),
                     f"{len(cases)} ({reps} results)", gpu_summary(r), stack_summary(r)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)
