"""Benchmark tasks: run specs, parse outputs, list, compare and plot stored runs, GPU health."""

from __future__ import annotations

import os
import sys

from invoke import Collection, Exit, task

from rebuilt.cli.tasks._entry import entry
from rebuilt.core import flags

H_WORKDIR = "work directory holding bench/<run-id>/ (default: setting workdir, .rebuilt)"
H_PYTHON = ("target interpreter (a path or a name on PATH); default: setting python, else the active virtual or "
            "conda environment, else python3 on PATH")
H_SPEC = "spec name in bench/specs/ or a path to a .toml (default: setting bench.spec, one-batch-default)"
H_MODEL = "model folder (default: setting bench.model_path)"
H_CVD = "CUDA_VISIBLE_DEVICES for the benchmark (default: setting bench.cuda_visible_devices)"
H_URL = "serving specs: the running sglang server (default: setting bench.base_url, else http://127.0.0.1:30000)"


def _settings(workdir: str | None):
    """Flags left at None fall back to the settings cascade ([bench] in rebuilt/core/defaults.toml and above)."""
    from rebuilt.cli.tasks.common import resolve

    return resolve(workdir=workdir)


def _bench_settings(s) -> dict:
    return {k: v for k, v in s.redacted().items() if k.startswith("bench.") or k in ("workdir", "stack")}


def _python(python: str | None, s) -> str:
    """--python, else the settings' target (rebuilt/core/interpreter.py); it must exist."""
    from rebuilt.core import interpreter

    return interpreter.require_exists(s.target(python)).python


def _check_target(model_path: str | None, cuda_visible_devices: str | None, base_url: str | None) -> None:
    """Refuse what cannot be right before any GPU check or run: a missing model folder, a malformed
    CUDA_VISIBLE_DEVICES or server URL (flag or setting, the message names both)."""
    import re
    import urllib.parse

    from rebuilt.errors import ConfigError

    if model_path and model_path.startswith(("/", "~", "./", "../")) and \
            not os.path.exists(os.path.expanduser(model_path)):
        raise ConfigError(f"--model-path (or setting bench.model_path) {model_path}: no such folder",
                          hint="give a local model folder or a Hugging Face id (org/name)")
    item = r"(\d+|GPU-[0-9A-Fa-f-]+|MIG-[0-9A-Za-z/-]+)"
    if cuda_visible_devices and not re.fullmatch(rf"{item}(,{item})*", cuda_visible_devices.replace(" ", "")):
        raise ConfigError(f"--cuda-visible-devices (or setting bench.cuda_visible_devices) {cuda_visible_devices!r}: "
                          f"expected GPU indices or UUIDs joined by commas", hint="e.g. 0 or 0,1,2,3")
    if base_url:
        try:
            parts = urllib.parse.urlsplit(base_url)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port or 1) > 0
        except ValueError:
            ok = False
        if not ok:
            raise ConfigError(f"--base-url (or setting bench.base_url) {base_url!r}: not an http(s) URL",
                              hint="e.g. http://127.0.0.1:30000")


def _spec(spec: str, cases: str | None = None, repeats: str | None = None):
    from rebuilt.tools.bench import spec as bspec

    loaded = bspec.load(bspec.find(spec))
    repeats = flags.number(repeats, "--repeats", minimum=1) if repeats is not None else None
    return bspec.override(loaded, cases=cases, repeats=repeats)


@task(help={
    "spec": H_SPEC, "python": H_PYTHON, "model-path": H_MODEL, "dry-run": "print every command, run nothing",
    "repeats": "override the spec's repeats", "cases": "override matrix axes, e.g. 'bs=1,8;il=512'",
    "workdir": H_WORKDIR, "cuda-visible-devices": H_CVD, "base-url": H_URL,
    "skip-preflight": "do not check GPU, imports and model first",
})
@entry
def run(c, spec=None, python=None, model_path=None, dry_run=False, repeats=None, cases=None,
        workdir=None, cuda_visible_devices=None, base_url=None, skip_preflight=False):
    """Run a bench spec in an existing environment and store the results."""
    from rebuilt.errors import ConfigError
    from rebuilt.tools.bench import run as brun

    s = _settings(workdir)
    workdir = s.workdir()
    model_path = model_path or s["bench.model_path"] or None
    cuda_visible_devices = cuda_visible_devices or s["bench.cuda_visible_devices"] or None
    base_url = base_url or s["bench.base_url"] or None
    _check_target(model_path, cuda_visible_devices, base_url)
    loaded = _spec(spec or s["bench.spec"], cases, repeats)
    target = _python(python, s)
    if dry_run:
        model = model_path or "<model-path>"
        planned = brun.plan(loaded, python=target, model_path=model, workdir=workdir,
                            cuda_visible_devices=cuda_visible_devices, base_url=base_url)
        print(brun.dry_run_text(loaded, planned, python=target, model_path=model, base_url=base_url,
                                cuda_visible_devices=cuda_visible_devices))
        return
    if not model_path:
        raise ConfigError("no model path", hint="pass --model-path or set bench.model_path")
    brun.execute(loaded, python=target, model_path=model_path, workdir=workdir,
                 cuda_visible_devices=cuda_visible_devices, base_url=base_url, check=not skip_preflight,
                 settings=_bench_settings(s))


@task(help={"spec": H_SPEC, "python": H_PYTHON, "model-path": H_MODEL, "cuda-visible-devices": H_CVD,
            "base-url": H_URL})
@entry
def preflight(c, spec=None, python=None, model_path=None, cuda_visible_devices=None, base_url=None):
    """Check GPU, free GPU memory, target imports and model path in seconds."""
    from rebuilt.tools.bench import preflight as pre

    s = _settings(None)
    model_path = model_path or s["bench.model_path"] or None
    cuda_visible_devices = cuda_visible_devices or s["bench.cuda_visible_devices"] or None
    base_url = base_url or s["bench.base_url"] or None
    _check_target(model_path, cuda_visible_devices, base_url)
    for check in pre.run(_spec(spec or s["bench.spec"]), python=_python(python, s), model_path=model_path,
                         cuda_visible_devices=cuda_visible_devices, base_url=base_url):
        print(check.line())


@task(help={"path": "a bench_one_batch / bench_serving log or JSONL file",
            "kind": "auto (default), one_batch or serving"})
@entry
def parse(c, path, kind="auto"):
    """Print the benchmark records found in a log or JSONL file as JSON lines."""
    from rebuilt.tools.bench import parse as bparse

    try:
        for record in bparse.parse_file(path, kind).records:
            print(bparse.dumps(record), flush=True)
    except BrokenPipeError:  # `inv bench.parse LOG | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


@task(name="list", help={"workdir": H_WORKDIR})
@entry
def list_(c, workdir=None):
    """List stored bench runs: date, spec, status, cases, GPU and stack."""
    from rebuilt.tools.bench import store

    print(store.format_list(store.runs(_settings(workdir).workdir())))


@task(help={
    "a": "baseline run: id, id prefix, path, latest or latest~N", "b": "run to judge against A",
    "factor": "smallest ratio of medians that counts as a change (default: setting bench.factor, 1.05)",
    "alpha": "significance level of the test (default: setting bench.alpha, 0.05)",
    "metric": "comma-separated metrics (default: all)",
    "workdir": H_WORKDIR, "fail-on-regression": "exit 1 when any metric got worse", "json": "print rows as JSON",
})
@entry
def compare(c, a, b, factor=None, alpha=None, metric=None, workdir=None, fail_on_regression=False, json=False):
    """Compare two runs per metric: medians, ratio, significance, better or worse."""
    import json as jsonlib

    from rebuilt.tools.bench import compare as cmp
    from rebuilt.tools.bench import store

    s = _settings(workdir)
    workdir = s.workdir()
    factor = flags.number(factor, "--factor", kind=float) if factor is not None else s["bench.factor"]
    alpha = flags.number(alpha, "--alpha", kind=float) if alpha is not None else s["bench.alpha"]

    run_a = store.load_run(store.resolve(a, workdir))
    run_b = store.load_run(store.resolve(b, workdir))
    metrics = [m.strip() for m in metric.split(",")] if metric else None
    rows = cmp.compare(run_a, run_b, metrics=metrics, factor=factor, alpha=alpha)
    if json:
        for row in rows:
            print(jsonlib.dumps(cmp.describe(row)))
    else:
        print(cmp.format_table(rows, run_a["spec"]["kind"], run_a["run_id"], run_b["run_id"],
                               factor, alpha))
    worse = cmp.regressions(rows)
    if fail_on_regression and worse:
        what = ", ".join(f"{r.metric} {r.case}" for r in worse[:5]) + (" ..." if len(worse) > 5 else "")
        raise Exit(f"rebuilt: {len(worse)} regression(s): {what}", code=1)


@task(help={"runs": "comma-separated runs (ids, paths, latest, latest~N)", "output": "PNG file to write",
            "metrics": "comma-separated metrics, one panel each (default by kind)", "workdir": H_WORKDIR})
@entry
def plot(c, runs, output="bench.png", metrics=None, workdir=None):
    """Plot throughput and latency against batch size for several runs into a PNG."""
    from rebuilt.tools.bench import plot as bplot
    from rebuilt.tools.bench import store

    workdir = _settings(workdir).workdir()
    refs = [r for r in runs.replace(" ", ",").split(",") if r]
    loaded = [store.load_run(store.resolve(ref, workdir)) for ref in refs]
    path = bplot.plot(loaded, output, metrics=[m.strip() for m in metrics.split(",")] if metrics else None)
    print(f"wrote {path}")


@task(help={"python": H_PYTHON, "json": "print the full report as JSON",
            "hosts": "every GPU of these hosts instead (docs/FLEET.md: names, @group, slurm, user@host:port); "
                     "flags a GPU or host below the fleet's median by more than the spec's health_slower",
            "spec": "with --hosts: the bench spec whose health_slower is the threshold (default: setting "
                    "bench.spec; a spec without one: setting fleet.health_slower)"})
@entry
def health(c, python=None, json=False, hosts=None, spec=None):
    """Measure bf16 GEMM TFLOP/s and HBM copy GB/s in the target environment."""
    import json as jsonlib

    from rebuilt.core import runner
    from rebuilt.errors import CheckFailed, RebuiltError, StepFailed
    from rebuilt.tools.bench import gpu_health

    if spec:  # an unknown spec is bad input, named before anything runs
        from rebuilt.tools.bench import spec as bspec

        bspec.find(spec)
    if hosts:
        from rebuilt.tools.fleet import health as fleet_health
        from rebuilt.tools.fleet import inventory

        s = _settings(None)
        if fleet_health.main(s, inventory.select(s, hosts), [], as_json=json, spec=spec) == 3:
            raise CheckFailed("a GPU or host is slower than the fleet's median (the lines above say which)")
        return

    proc = runner.capture([_python(python, _settings(None)), os.path.abspath(gpu_health.__file__), "--json"],
                          timeout=900)
    if proc.returncode not in (0, 1):
        message = proc.stderr.strip().splitlines()
        if proc.returncode == 2 and message:  # no CUDA (or no torch) there: exit 2, as docs/BENCH.md says
            raise RebuiltError(message[-1], hint="run it where the GPU is, with --python naming an interpreter "
                                                 "whose torch has CUDA")
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise StepFailed(f"gpu_health exited {proc.returncode}:\n{tail}")
    report = jsonlib.loads(proc.stdout)
    print(jsonlib.dumps(report, indent=2) if json else gpu_health.format_text(report))
    if proc.returncode == 1:
        raise CheckFailed(proc.stderr.strip() or "the timing harness is below 90% of the bare loop")


ns = Collection("bench")
for _t in (run, preflight, parse, list_, compare, plot, health):
    ns.add_task(_t)
