"""Provenance of every build and bench run: schema-versioned JSON in <workdir>/manifests/."""

from __future__ import annotations

import platform
import time
from pathlib import Path

from rebuilt.core import shape
from rebuilt.core.fs import mark_cachedir, read_json, write_json
from rebuilt.core.secret import redact

SCHEMA_VERSION = 1


def build_manifest(*, run_id: str, recipe_plan, plan, machine, settings, status: str, results: list,
                   source: dict | None, started: float, finished: float) -> dict:
    """The manifest of one recipe's build (status done or failed)."""
    artifacts = [a for r in results for a in r.details.get("artifacts", [])]
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "build",
        "run_id": run_id,
        "recipe": recipe_plan.recipe.name,
        "stack": plan.stack,
        "status": status,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": round(finished - started, 3),
        "python": plan.python,
        "host": platform.node(),
        "source": source,
        "jobs": {"jobs": recipe_plan.jobs.jobs, "why": recipe_plan.jobs.explanation},
        "warnings": list(recipe_plan.warnings),
        "steps": [{"name": r.name, "status": r.status, "seconds": round(r.seconds, 3), "returncode": r.returncode,
                   "log": r.log, "details": _redacted(r.details)} for r in results],
        "env": {s.name: {k: (redact(v) if v is not None else None) for k, v in s.env.items()}
                for s in recipe_plan.steps},
        "toolchain": {"tools": machine.tools, "nvcc": machine.nvcc_version, "cuda_home": machine.cuda_home,
                      "python": machine.python.version, "torch": machine.python.torch,
                      "packages": machine.python.packages, "gpus": machine.gpus},
        "settings": settings.redacted(),
        "inputs": recipe_plan.inputs,
        "artifacts": artifacts,
    }


def _redacted(obj):
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {k: _redacted(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_redacted(v) for v in obj]
    return obj


def write(workdir: Path, name: str, data: dict) -> Path:
    folder = mark_cachedir(Path(workdir) / "manifests")
    return write_json(folder / f"{name}.json", data)


_TEXT = shape.opt(shape.nullable(shape.STR))
SHAPE = shape.Obj({
    "schema_version": shape.opt(shape.INT), "kind": _TEXT, "run_id": _TEXT, "recipe": _TEXT, "stack": _TEXT,
    "status": _TEXT, "source": shape.opt(shape.nullable(shape.MapOf(shape.ANY))),
    "artifacts": shape.opt(shape.ListOf(shape.Obj({"path": shape.STR}))),
})


def read(path: Path | str) -> dict:
    """A manifest ``write`` wrote, checked against ``SHAPE`` before it is used."""
    return read_json(path, SHAPE, what="manifest", hint="rebuilt wrote it after a build; remove it if it is damaged")
