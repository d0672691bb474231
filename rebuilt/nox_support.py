"""What the nox sessions do, importable and testable; noxfile.py only declares the sessions.

Existing-environment mode: ``REBUILT_PYTHON=/path/to/python nox -s h200_bench`` uses that
interpreter, creates no virtualenv and does not build (an NGC container whose stack is
installed). Otherwise ``build`` builds the stack into its own Python 3.11 virtualenv
(reusing wheels whose inputs are unchanged) and ``h200_bench`` benchmarks that environment.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from rebuilt import recipes, runner
from rebuilt.errors import CheckFailed, ConfigError, RebuiltError

EXISTING = os.environ.get("REBUILT_PYTHON", "")
# Of the data-sheet bf16 TFLOP/s and HBM bandwidth. Healthy H200s here measured 68-80% (matmul) and 88-90% (copy)
# of those figures on random data (docs/GPU.md); a card under 60% is throttled or misconfigured.
HEALTH_MIN = 0.60


def stacks() -> list[str]:
    return recipes.stack_names()


def venv_params() -> list[str]:
    """Tests set REBUILT_NOX_SYSTEM_SITE=1 so fixture venvs see the machine's CPU torch (fast CI)."""
    return ["--system-site-packages"] if os.environ.get("REBUILT_NOX_SYSTEM_SITE") else []


def target_python(session) -> str:
    """The session's interpreter, or REBUILT_PYTHON in existing-environment mode."""
    if EXISTING:
        return EXISTING
    bin_dir = getattr(session, "bin", None)
    return str(Path(bin_dir) / "python") if bin_dir else sys.executable


def _fail(session, err: RebuiltError):
    session.error(err.render())


def _build_args(posargs: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="nox -s build --", add_help=False)
    p.add_argument("--jobs")
    p.add_argument("--force", action="store_true")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--no-checks", action="store_true")
    p.add_argument("--workdir")
    p.add_argument("--set", action="append", default=[], dest="set_")
    args, _ = p.parse_known_args(posargs)  # the bench's flags pass through untouched
    return args


def _state(settings, stack: str) -> Path:
    return settings.workdir() / "state" / f"nox-{stack}.json"


def build(session, stack: str) -> None:
    """Build ``stack`` into the session's environment through the same planner and runner as inv."""
    from rebuilt import builder, settings as settings_mod
    from rebuilt.util.fs import write_json

    args = _build_args(session.posargs)
    python = target_python(session)
    try:
        flags = {"stack": stack, "python": python, "jobs": args.jobs, "workdir": args.workdir,
                 **settings_mod.parse_assignments(args.set_)}
        s = settings_mod.resolve(flags)
        opts = builder.Options(dry_run=args.dry_run, force=args.force, checks=s["checks"] and not args.no_checks)
        builder.build(s, ["stack"], opts, runner.Console())
        if not args.dry_run:
            write_json(_state(s, stack), {"python": python, "stack": stack})
    except RebuiltError as err:
        _fail(session, err)


def _bench_args(posargs: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="nox -s h200_bench --", add_help=False)
    p.add_argument("--spec")
    p.add_argument("--model-path")
    p.add_argument("--cases")
    p.add_argument("--repeats")
    p.add_argument("--cuda-visible-devices")
    p.add_argument("--base-url")
    p.add_argument("--workdir")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--allow-slow-gpu", action="store_true")
    args, _ = p.parse_known_args(posargs)
    return args


def gpu_health(python: str) -> dict:
    """Run the microbenchmark in the target environment; fail loudly on a slow GPU."""
    script = Path(__file__).parent / "bench" / "gpu_health.py"
    proc = runner.capture([python, str(script), "--json"], timeout=600)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        raise CheckFailed(f"the GPU health check failed in {python}: "
                          f"{(proc.stderr or proc.stdout).strip()[-400:]}") from None
    return report


def slow_parts(report: dict) -> list[str]:
    out = []
    for key in ("matmul", "copy"):
        frac = (report.get(key) or {}).get("fraction_of_nominal")
        if frac is not None and frac < HEALTH_MIN:
            out.append(f"{key} at {frac:.0%} of nominal (< {HEALTH_MIN:.0%})")
    return out


def bench(session, stack: str) -> None:
    """Checks in seconds, GPU health, then the spec's cases; results stored with the build manifests."""
    from rebuilt import settings as settings_mod
    from rebuilt.bench import preflight, run as brun, spec as bspec, store

    args = _bench_args(session.posargs)
    try:
        s = settings_mod.resolve({"stack": stack, "workdir": args.workdir})
        state = _state(s, stack)
        python = EXISTING or (json.loads(state.read_text())["python"] if state.exists() else None)
        if not python:
            raise ConfigError(f"no built environment for stack {stack} ({state} is missing)",
                              hint="run `nox -s build` first, or REBUILT_PYTHON=/path/to/python for an existing one")
        if args.repeats is not None and not str(args.repeats).isdigit():
            raise ConfigError(f"--repeats must be a whole number, not {args.repeats!r}")
        loaded = bspec.override(bspec.load(bspec.find(args.spec or s["bench.spec"])), cases=args.cases,
                                repeats=int(args.repeats) if args.repeats else None)
        model = args.model_path or s["bench.model_path"]
        cvd = args.cuda_visible_devices or s["bench.cuda_visible_devices"] or None
        workdir = str(s.workdir())
        if args.dry_run:
            planned = brun.plan(loaded, python=python, model_path=model or "<model-path>", workdir=workdir,
                                cuda_visible_devices=cvd, base_url=args.base_url)
            print(f"[1] {python} {Path(__file__).parent / 'bench' / 'gpu_health.py'} --json")
            print(brun.dry_run_text(loaded, planned, python=python, model_path=model or "<model-path>",
                                    base_url=args.base_url, cuda_visible_devices=cvd))
            return
        for check in preflight.run(loaded, python=python, model_path=model, cuda_visible_devices=cvd,
                                   base_url=args.base_url):
            print(check.line())
        report = gpu_health(python)
        slow = slow_parts(report)
        print(f"GPU health: matmul {report['matmul']['tflops']:.0f} TFLOP/s, copy {report['copy']['gbps']:.0f} GB/s"
              + (f" -- SLOW: {'; '.join(slow)}" if slow else ""))
        if slow and not args.allow_slow_gpu:
            raise CheckFailed(f"the GPU looks throttled or misconfigured: {'; '.join(slow)}",
                              hint="check clocks and other processes (nvidia-smi), or --allow-slow-gpu")
        outcome = brun.execute(loaded, python=python, model_path=model, workdir=workdir, cuda_visible_devices=cvd,
                               base_url=args.base_url, check=False, stack=_stack_manifest(s.workdir()),
                               settings={k: v for k, v in s.redacted().items() if k.startswith(("bench.", "stack"))})
        health = Path(outcome.run_dir) / "gpu_health.json"
        health.write_text(json.dumps(report, indent=2))
        store.attach(outcome.run_dir, [health])
        print(f"stored {outcome.run_dir}")
    except RebuiltError as err:
        _fail(session, err)


def _stack_manifest(workdir: Path) -> dict:
    """The newest build manifest of each recipe: version, commit, dirty, artifacts."""
    out: dict[str, dict] = {}
    for path in sorted((workdir / "manifests").glob("*.json")):
        try:
            m = json.loads(path.read_text())
        except ValueError:
            continue
        src = m.get("source") or {}
        out[m["recipe"]] = {"run_id": m["run_id"], "status": m["status"], "commit": src.get("commit"),
                            "ref": src.get("ref"), "dirty": src.get("dirty"),
                            "artifacts": [a["path"].rsplit("/", 1)[-1] for a in m.get("artifacts", [])]}
    return out
