"""Run a bench spec: preflight, every expanded command, parse, store.

Each command runs through ``rebuilt.core.runner.capture`` with the spec's time-out, in its
own folder inside the run directory (so sglang's ``--profile`` traces and nsys reports
land there). Results come from the command's JSONL file, or from its printed log when
the JSONL is missing. A failing command does not stop the others; the run is stored
either way and a ``StepFailed`` names the failed commands at the end.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rebuilt.core import runner
from rebuilt.core.fs import write_text
from rebuilt.errors import InputError, Interrupted, StepFailed
from rebuilt.tools.bench import parse, preflight, store
from rebuilt.tools.bench.spec import AXES, BenchSpec, Command, case_id, expand, server_command

RESULT_FILES = ("output.log", "result.jsonl")


@dataclass
class Planned:
    run_id: str
    run_dir: Path
    commands: list[Command]


@dataclass
class Outcome:
    run_dir: Path
    run: dict[str, Any]
    failed: list[dict[str, Any]] = field(default_factory=list)


def plan(spec: BenchSpec, *, python: str, model_path: str, workdir: Path | str = ".rebuilt",
         cuda_visible_devices: str | None = None, base_url: str | None = None,
         extra_env: Mapping[str, str] | None = None, run_id: str | None = None) -> Planned:
    """The run id, its directory (not created yet) and the commands: what --dry-run prints."""
    run_id = run_id or store.new_run_id(spec.name)
    if spec.kind == "serving" and spec.profile and not base_url:
        from rebuilt.tools.serve.bench import entry_url

        base_url = entry_url(spec.profile, workdir)
    run_dir = (store.bench_dir(workdir) / run_id).absolute()
    commands = expand(spec, python=python, model_path=model_path, out_dir=run_dir,
                      cuda_visible_devices=cuda_visible_devices, base_url=base_url, extra_env=extra_env)
    return Planned(run_id, run_dir, commands)


def dry_run_text(spec: BenchSpec, planned: Planned, *, python: str, model_path: str,
                 base_url: str | None = None, cuda_visible_devices: str | None = None) -> str:
    """Every command with its folder and environment changes, nothing started."""
    lines = [f"# spec {spec.name} ({spec.kind}, {len(spec.cases())} case(s) x {spec.repeats} repeat(s), "
             f"{spec.process}): {len(planned.commands)} command(s)", f"# run directory {planned.run_dir}"]
    if spec.kind == "serving" and spec.profile:
        lines.append(f"# against serving profile {spec.profile}: the roles serve.up started, else started for the "
                     f"run and stopped after it (inv serve.up {spec.profile} --dry-run shows them)")
    elif spec.kind == "serving":
        srv = server_command(spec, python=python, model_path=model_path, base_url=base_url,
                             cuda_visible_devices=cuda_visible_devices)
        lines.append(f"# expects a server started as: {srv.shell()}")
    for i, cmd in enumerate(planned.commands, 1):
        lines += ["", f"# [{i}/{len(planned.commands)}] {cmd.label}", f"cd {cmd.cwd}", cmd.shell()]
    return "\n".join(lines)


def _records_of(kind: str, cmd: Command) -> tuple[list[dict], str]:
    """Results of one command: its JSONL file first, the printed log (with its command line) as the fallback."""
    result = Path(cmd.result_file)
    if result.is_file() and result.stat().st_size:
        return parse.parse_jsonl(result.read_text(encoding="utf-8"), str(result)), "jsonl"
    try:
        return parse.parse_text(Path(cmd.log_file).read_text(encoding="utf-8"), cmd.log_file, kind).records, "log"
    except InputError:
        return [], "none"


def _problem(proc, records: list[dict], log: str) -> tuple[str, str] | None:
    """(``failed`` | ``skipped``, why) for a command that gave no results, else None."""
    if proc.returncode == 124:
        return "failed", proc.stderr.strip() or "timed out"
    if proc.returncode != 0:
        return "failed", f"exit {proc.returncode}"
    if records:
        return None
    if parse.SKIP.search(log):
        return "skipped", "bench_one_batch skipped it (max batch size limit: too little KV cache)"
    return "failed", "no results in its output"


def _params_of(kind: str, record: dict) -> dict[str, Any]:
    return {axis: record.get(axis) for axis in AXES[kind]}


def assign(kind: str, cmd: Command, records: list[dict], cases: dict[str, dict]) -> None:
    """Add each record, as one repeat, to the case it measures."""
    for rec in records:
        target = cmd.cases[0] if len(cmd.cases) == 1 else None
        if target is None:
            got = _params_of(kind, rec)
            target = next((c for c in cmd.cases
                           if all(got[k] in (None, v) for k, v in c.params.items())), None)
        params = target.params if target is not None else _params_of(kind, rec)
        cid = case_id(kind, params)
        entry = cases.setdefault(cid, {"id": cid, "params": params, "repeats": []})
        entry["repeats"].append({**rec, "repeat": cmd.repeat})


def _artifacts(cmd: Command, run_dir: Path) -> list[str]:
    cwd = Path(cmd.cwd)
    return sorted(str(p.relative_to(run_dir)) for p in cwd.rglob("*") if p.is_file() and p.name not in RESULT_FILES)


def _write_log(cmd: Command, proc, seconds: float) -> None:
    text = [f"$ {cmd.shell()}", f"# cwd {cmd.cwd}", f"# exit {proc.returncode} after {seconds:.1f}s", "",
            proc.stdout.rstrip("\n")]
    if proc.stderr.strip():
        text += ["", "# --- stderr ---", proc.stderr.rstrip("\n")]
    write_text(cmd.log_file, "\n".join(text) + "\n")


def _headline(kind: str, records: list[dict]) -> str:
    key = "overall_throughput" if kind == "one_batch" else "output_throughput"
    vals = [r[key] for r in records if parse.finite(r.get(key))]
    unit = "token/s" if kind == "one_batch" else "tok/s"
    return ", ".join(f"{v:,.1f} {unit}" for v in vals) or "no results"


def execute(spec: BenchSpec, *, python: str, workdir: Path | str = ".rebuilt", serve_settings=None,
            echo: Callable[[str], None] = print, **kw) -> Outcome:
    """Preflight, run every command, store ``run.json``; raises StepFailed if any command failed.

    A serving spec that names a ``profile`` runs against that profile's entry role: the one
    ``inv serve.up`` started, or one started here (with the target interpreter) and stopped
    after the run. The profile, its roles' resolved argv and env (redacted) go in run.json.
    """
    if spec.kind == "serving" and spec.profile:
        from rebuilt.tools.serve.bench import serving

        with serving(spec.profile, python=python, workdir=workdir, settings=serve_settings, echo=echo) as (url, prov):
            return _execute(spec, python=python, workdir=workdir, echo=echo, serve=prov,
                            **{**kw, "base_url": url})
    return _execute(spec, python=python, workdir=workdir, echo=echo, **kw)


def _execute(
    spec: BenchSpec,
    *,
    python: str,
    model_path: str,
    workdir: Path | str = ".rebuilt",
    cuda_visible_devices: str | None = None,
    base_url: str | None = None,
    extra_env: Mapping[str, str] | None = None,
    settings: Mapping[str, Any] | None = None,
    stack: Mapping[str, Any] | None = None,
    check: bool = True,
    echo: Callable[[str], None] = print,
    serve: Mapping[str, Any] | None = None,
) -> Outcome:
    planned = plan(spec, python=python, model_path=model_path, workdir=workdir,
                   cuda_visible_devices=cuda_visible_devices, base_url=base_url, extra_env=extra_env)
    env_for_probe = {**os.environ, **spec.env, **(extra_env or {})}
    hint = ""
    if spec.kind == "serving":
        srv = server_command(spec, python=python, model_path=model_path, base_url=base_url,
                             cuda_visible_devices=cuda_visible_devices)
        hint = f"\n    start one with: {srv.shell()}"
    checks = preflight.run(spec, python=python, model_path=model_path, cuda_visible_devices=cuda_visible_devices,
                           env=env_for_probe, base_url=base_url, server_hint=hint) if check else []
    for c in checks:
        echo(c.line())
    by_name = {c.name: c for c in checks}
    run_dir = store.create_run_dir(workdir, planned.run_id)
    record: dict[str, Any] = {
        "run_id": planned.run_id, "status": "running", "created": store.now(), "finished": None,
        "spec": {"name": spec.name, "kind": spec.kind, "path": spec.path, "data": spec.to_dict()},
        "machine": store.machine_info(),
        "gpu": by_name["gpu"].data if "gpu" in by_name else None,
        "checks": [{"name": c.name, "status": c.status, "message": c.found} for c in checks],
        "target": {"python": python, **(by_name["imports"].data if "imports" in by_name else {})},
        "stack": dict(stack or {}), "settings": dict(settings or {}),
        "model_path": model_path, "base_url": base_url if spec.kind == "serving" else None,
        "serve": dict(serve) if serve else None,
        "commands": [], "cases": [],
    }
    cases: dict[str, dict] = {}
    failed: list[dict] = []
    store.write_run(run_dir, record)
    total = len(planned.commands)
    try:
        for i, cmd in enumerate(planned.commands, 1):
            echo(f"[{i}/{total}] {cmd.label}: {cmd.shell()}")
            Path(cmd.cwd).mkdir(parents=True, exist_ok=True)
            t0 = time.monotonic()
            proc = runner.capture(cmd.argv, cwd=cmd.cwd, env={**os.environ, **cmd.env}, timeout=spec.timeout_s)
            seconds = time.monotonic() - t0
            _write_log(cmd, proc, seconds)
            records, source = _records_of(spec.kind, cmd) if proc.returncode == 0 else ([], "none")
            problem = _problem(proc, records, proc.stdout)
            entry = {"label": cmd.label, "argv": list(cmd.argv), "env": cmd.env,
                     "cwd": str(Path(cmd.cwd).relative_to(run_dir)), "repeat": cmd.repeat,
                     "cases": [c.id for c in cmd.cases], "returncode": proc.returncode,
                     "seconds": round(seconds, 3), "log": str(Path(cmd.log_file).relative_to(run_dir)),
                     "results_from": source, "records": len(records), "artifacts": _artifacts(cmd, run_dir)}
            if problem and problem[0] == "skipped":
                entry["skipped"] = problem[1]
                echo(f"    skipped: {problem[1]}")
            elif problem:
                entry["error"] = problem[1]
                failed.append(entry)
                echo(f"    FAILED ({entry['error']}) after {seconds:.1f}s; log: {cmd.log_file}")
            else:
                assign(spec.kind, cmd, records, cases)
                echo(f"    done in {seconds:.1f}s: {_headline(spec.kind, records)}")
            record["commands"].append(entry)
            record["cases"] = list(cases.values())
            store.write_run(run_dir, record)
    except KeyboardInterrupt:
        record.update(status="interrupted", finished=store.now())
        store.write_run(run_dir, record)
        raise Interrupted(f"bench run interrupted; partial results in {run_dir}") from None
    record.update(status="failed" if failed else "complete", finished=store.now())
    store.write_run(run_dir, record)
    outcome = Outcome(run_dir, record, failed)
    if failed:
        logs = "\n  ".join(f"{f['label']}: {f['error']} (log {run_dir / f['log']})" for f in failed)
        raise StepFailed(f"{len(failed)} of {total} bench command(s) failed; run stored in {run_dir}\n  {logs}")
    echo(f"stored {run_dir}")
    return outcome
