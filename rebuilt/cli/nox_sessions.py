"""What the nox sessions do, importable and testable; noxfile.py only declares the sessions.

Two modes (docs/NOX.md):

* **Build mode** (default): ``build(stack=…)`` builds the stack into its own Python 3.11
  virtualenv through the same planner and runner as ``inv`` (the session's interpreter is
  the target), reusing wheels whose inputs are unchanged. ``h200_bench`` requires
  ``h200_build`` (the same build, for the bench's stack), which requires ``h200_preflight``
  (seconds, before any virtualenv or build): nox skips the build when the preflight failed.
* **Existing-environment mode**: ``REBUILT_PYTHON=/usr/bin/python3 nox -s h200_bench`` uses
  that interpreter (an NGC container whose stack is installed), creates no virtualenv and
  builds nothing. An environment variable and not a posarg, because nox decides which
  sessions a session requires (and whether to make venvs) before it reads posargs.

Posargs pass through to every session of the chain; each takes the flags it knows
(``FLAGS``) and an unknown flag is an error, not silently dropped.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from rebuilt.build import manifest as manifest_mod
from rebuilt.core import flags, interpreter, machine, recipes, runner
from rebuilt.errors import CheckFailed, ConfigError, InputError, Interrupted, RebuiltError, StepFailed

EXISTING = os.environ.get("REBUILT_PYTHON", "")
DEFAULT_STACK = "sglang-0.5.4"
GPU_HEALTH = Path(__file__).resolve().parents[1] / "tools" / "bench" / "gpu_health.py"  # run as a script by path
# Of the data sheet's dense bf16 TFLOP/s and HBM bandwidth. Healthy cards here measured 68-81% (matmul)
# and 88-90% (copy) of those on random data (docs/GPU.md): 60% is about 75% of the best matmul and
# 68% of the copy measured on an H200, i.e. the "70% of the measured ceilings" a throttled card falls below.
HEALTH_MIN = 0.60
GPU_QUERIES = (" ".join(machine.smi_argv("query-gpu", machine.GPU_FIELDS)),  # rebuilt.core.machine's one query
               " ".join(machine.smi_argv("query-compute-apps", machine.APP_FIELDS)))


# --------------------------------------------------------------------------- options


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nox -s <session> --", add_help=False, allow_abbrev=False)
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--workdir")
    # build
    p.add_argument("--jobs")
    p.add_argument("--force", action="store_true")
    p.add_argument("--explain", action="store_true")
    p.add_argument("--no-checks", action="store_true")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--set", action="append", default=[], dest="set_")
    p.add_argument("--offline", action="store_true")  # build from the unpacked bundle only (inv src.unbundle)
    # bench
    p.add_argument("--spec")
    p.add_argument("--model-path")
    p.add_argument("--cases")
    p.add_argument("--repeats")
    p.add_argument("--cuda-visible-devices")
    p.add_argument("--base-url")
    p.add_argument("--allow-slow-gpu", action="store_true")
    return p


FLAGS = sorted(a.option_strings[0] for a in _parser()._actions)


def parse_posargs(posargs: list[str]) -> argparse.Namespace:
    """The flags of the build and bench sessions (both see the same posargs when chained)."""
    args, unknown = _parser().parse_known_args(list(posargs))
    if any(u == "--python" or u.startswith("--python=") for u in unknown):
        raise ConfigError("--python is not a session flag: nox has chosen the sessions before it reads posargs",
                          hint="REBUILT_PYTHON=/path/to/python nox -s h200_bench -- ... (no venv, no build)")
    if unknown:
        raise ConfigError(f"unknown argument(s) after --: {' '.join(unknown)}", hint=f"known: {' '.join(FLAGS)}")
    if args.repeats is not None:
        args.repeats = flags.number(args.repeats, "--repeats", minimum=1)
    return args


def stacks() -> list[str]:
    return recipes.stack_names()


def bench_stack() -> str:
    """The stack h200_bench builds: REBUILT_NOX_STACK, else the `stack` setting (invoke.yaml, env, default)."""
    if os.environ.get("REBUILT_NOX_STACK"):
        return os.environ["REBUILT_NOX_STACK"]
    from rebuilt.core import settings as settings_mod

    try:
        return settings_mod.resolve({})["stack"]
    except RebuiltError:  # a broken config must not break `nox -l`; the sessions report it
        return DEFAULT_STACK


def existing_python() -> str:
    """REBUILT_PYTHON as an absolute path (a name is looked up on PATH); it must exist."""
    return interpreter.require_exists(interpreter.named(EXISTING, "REBUILT_PYTHON")).python


def target_python(session) -> interpreter.Target:
    """The session's interpreter, or REBUILT_PYTHON in existing-environment mode."""
    if EXISTING:
        return interpreter.Target(existing_python(), "REBUILT_PYTHON")
    try:
        return interpreter.Target(str(Path(session.bin) / "python"), "the nox session's virtualenv")
    except ValueError:  # --no-venv: building into nox's own interpreter would be a surprise
        raise ConfigError("this session has no environment of its own (--no-venv?)",
                          hint="REBUILT_PYTHON=/path/to/python selects an existing environment") from None


def _settings(stack: str, args: argparse.Namespace, target: interpreter.Target | None = None, **flags):
    from rebuilt.core import settings as settings_mod

    offline = {"offline": True} if getattr(args, "offline", False) else {}
    return settings_mod.resolve({"stack": stack, "workdir": args.workdir, **flags, **offline},
                                assignments=settings_mod.parse_assignments(args.set_), target=target)


def _guarded(session, fn, *args) -> None:
    """A RebuiltError becomes one message and a failed session, never a traceback."""
    try:
        fn(*args)
    except RebuiltError as err:
        session.error(err.render())


# --------------------------------------------------------------------------- build


def build(session, stack: str) -> None:
    """Build ``stack`` into the session's environment through the same planner and runner as inv."""
    _guarded(session, lambda: _build(target_python(session), session.posargs, stack))


def _build(target: interpreter.Target, posargs: list[str], stack: str) -> None:
    from rebuilt.build import builder

    args = parse_posargs(posargs)
    s = _settings(stack, args, target, jobs=args.jobs)
    opts = builder.Options(dry_run=args.dry_run, force=args.force, explain=args.explain,
                           checks=s["checks"] and not args.no_checks, verbose=args.verbose or s["verbose"])
    outcome = builder.build(s, ["stack"], opts, runner.Console(verbose=opts.verbose))
    if outcome.skipped:
        print(f"build: {len(outcome.skipped)} of {len(outcome.plan.recipes)} component(s) not rebuilt: "
              + "; ".join(f"{k}: {v}" for k, v in outcome.skipped.items()))
    interpreter.record(s.workdir(), stack, target.python, dry_run=args.dry_run)


# --------------------------------------------------------------------------- checks and GPU health


def _spec(args: argparse.Namespace, s):
    from rebuilt.tools.bench import spec as bspec

    loaded = bspec.load(bspec.find(args.spec or s["bench.spec"]))
    return bspec.override(loaded, cases=args.cases, repeats=args.repeats)


def _bench_target(args: argparse.Namespace, s) -> dict:
    return {"model": args.model_path or s["bench.model_path"] or None,
            "cvd": args.cuda_visible_devices or s["bench.cuda_visible_devices"] or None,
            "base_url": args.base_url or s["bench.base_url"] or None}


def need_gpus() -> list[dict]:
    """The GPUs nvidia-smi lists; without one, CheckFailed saying the bench needs one and which check failed."""
    from rebuilt.tools.bench import preflight

    try:
        return preflight.query_gpus()  # about a second
    except CheckFailed as exc:
        raise CheckFailed(f"h200_bench needs an NVIDIA GPU, and the GPU check failed (nvidia-smi --query-gpu): "
                          f"{exc}; nothing was built", hint=exc.hint) from None


def machine_checks(spec, *, model_path: str | None, cuda_visible_devices: str | None,
                   base_url: str | None = None) -> list:
    """What can be checked before the environment exists: GPUs, their memory, the model, nsys."""
    from rebuilt.tools.bench import preflight

    if spec.kind != "one_batch":
        if not base_url and not getattr(spec, "profile", None):
            need_gpus()  # the server starts here, on this machine's GPUs
        return []  # the server runs the built stack; h200_bench checks it after the build
    gpus = need_gpus()
    checks = preflight.raise_failures([preflight.check_gpus(gpus, cuda_visible_devices, preflight.tp_of(spec.server))])
    checks += [preflight.check_gpu_free(gpus, cuda_visible_devices), preflight.check_model_path(model_path)]
    if spec.wrappers.nsys:
        checks.append(preflight.check_tool(spec.wrappers.nsys_program, "the spec wraps the bench in nsys profile"))
    return preflight.raise_failures(checks)


def preflight(session, stack: str) -> None:
    """The h200_preflight session: the machine checks, before the build h200_bench requires."""
    _guarded(session, _preflight, session.posargs, stack)


def _preflight(posargs: list[str], stack: str) -> None:
    args = parse_posargs(posargs)
    s = _settings(stack, args)
    spec, t = _spec(args, s), _bench_target(args, s)
    if args.dry_run:
        print("# h200_preflight: GPUs, free GPU memory, model path (no build has started yet)")
        print("\n".join(GPU_QUERIES) if spec.kind == "one_batch" else "# serving spec: nothing before the build")
        return
    for check in machine_checks(spec, model_path=t["model"], cuda_visible_devices=t["cvd"], base_url=t["base_url"]):
        print(check.line())


def gpu_health(python: str, env: dict | None = None, timeout: float = 900) -> dict:
    """Run the microbenchmark by path with the target interpreter; its JSON report."""
    proc = runner.capture([python, str(GPU_HEALTH), "--json"], env=env, timeout=timeout)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise CheckFailed(f"GPU health check failed (exit {proc.returncode}): "
                          f"{lines[-1] if lines else 'no output'}") from None
    report["exit_status"] = proc.returncode
    return report


def health_problems(report: dict, minimum: float = HEALTH_MIN) -> list[str]:
    """Why the figures say the GPU is throttled (or the timing is off); empty when healthy."""
    out = []
    for key, what in (("matmul", "bf16 matmul"), ("copy", "HBM copy")):
        frac = (report.get(key) or {}).get("fraction_of_nominal")
        if frac is not None and frac < minimum:
            out.append(f"{what} at {frac:.0%} of the data sheet (threshold {minimum:.0%})")
    if report.get("harness_ok") is False:
        out.append(f"the timing harness reached only {report['harness_ratio']:.0%} of a bare matmul loop "
                   "(needs 90%): another process on the GPU?")
    return out


def health_line(report: dict) -> str:
    mm, cp = report["matmul"], report["copy"]
    name = (report.get("device") or {}).get("name", "?")
    frac = (lambda x: f" ({x:.0%} of data sheet)" if x is not None else " (no data-sheet figure for this card)")
    return (f"GPU health, {name}: matmul {mm['tflops']:.0f} TFLOP/s{frac(mm['fraction_of_nominal'])}, "
            f"copy {cp['gbps']:.0f} GB/s{frac(cp['fraction_of_nominal'])}, "
            f"harness {report['harness_ratio']:.1%} of the bare loop")


# --------------------------------------------------------------------------- bench


def bench(session, stack: str) -> None:
    """The h200_bench session: full preflight, GPU health, then the spec's commands, stored."""
    _guarded(session, _bench, session.posargs, stack)


def bench_python(s, stack: str, dry_run: bool) -> str:
    """REBUILT_PYTHON, else the environment the build session recorded for ``stack``."""
    if EXISTING:
        return existing_python()
    found = interpreter.recorded(s.workdir(), stack, dry_run=dry_run)
    if found is not None:
        return found.python
    raise ConfigError(f"no environment built for stack {stack} ({interpreter.handoff_file(s.workdir(), stack)} "
                      f"is missing)",
                      hint="nox -s h200_bench builds it first; REBUILT_PYTHON=/path/to/python uses an existing one")


def _bench(posargs: list[str], stack: str) -> None:
    from rebuilt.tools.bench import preflight as pre
    from rebuilt.tools.bench import run as brun

    args = parse_posargs(posargs)
    s = _settings(stack, args)
    spec, t = _spec(args, s), _bench_target(args, s)
    python, workdir = bench_python(s, stack, args.dry_run), s.workdir()
    if args.dry_run:
        model = t["model"] or "<model-path>"
        planned = brun.plan(spec, python=python, model_path=model, workdir=workdir,
                            cuda_visible_devices=t["cvd"], base_url=t["base_url"])
        print(f"# preflight: nvidia-smi queries, then {python} -c <import probe> {' '.join(pre.IMPORTS)}")
        print(f"# GPU health (fails below {HEALTH_MIN:.0%} of the data sheet unless --allow-slow-gpu):")
        print(f"{python} {GPU_HEALTH} --json")
        print(brun.dry_run_text(spec, planned, python=python, model_path=model, base_url=t["base_url"],
                                cuda_visible_devices=t["cvd"]))
        return
    for check in pre.run(spec, python=python, model_path=t["model"], cuda_visible_devices=t["cvd"],
                         base_url=t["base_url"]):
        print(check.line())
    report = measure_health(python, t["cvd"], args.allow_slow_gpu)
    stored = run_and_store(spec, python=python, t=t, workdir=workdir, report=report,
                           stack=stack_manifest(workdir, stack),
                           settings={k: v for k, v in s.redacted().items() if k.startswith("bench.") or k == "stack"})
    print(f"stored {stored}")


def measure_health(python: str, cuda_visible_devices: str | None, allow_slow: bool) -> dict:
    """GPU health on the card the benchmark will use; loud, and fatal unless allowed, when it is slow."""
    env = {**os.environ, **({"CUDA_VISIBLE_DEVICES": cuda_visible_devices} if cuda_visible_devices else {})}
    print(f"GPU health: {python} {GPU_HEALTH} --json (about a minute) ...", flush=True)
    report = gpu_health(python, env)
    problems = health_problems(report)
    print(health_line(report))
    if problems:
        banner = "!" * 78
        print(f"{banner}\n!! SLOW GPU: " + "\n!! SLOW GPU: ".join(problems) + f"\n{banner}", flush=True)
        if not allow_slow:
            raise CheckFailed("the GPU looks throttled or busy: " + "; ".join(problems),
                              hint="check clocks, power and other processes (nvidia-smi -q -d PERFORMANCE), "
                                   "or pass --allow-slow-gpu to benchmark anyway")
    return report


def run_and_store(spec, *, python: str, t: dict, workdir: Path, report: dict, stack: dict, settings: dict) -> Path:
    """run.execute, then the health report into run.json and the run folder (also for failed runs)."""
    from rebuilt.tools.bench import run as brun
    from rebuilt.tools.bench import store

    def run_dirs() -> set[Path]:
        return {d for d in store.bench_dir(workdir).glob("*") if d.is_dir()}

    before = run_dirs()
    try:
        outcome = brun.execute(spec, python=python, model_path=t["model"], workdir=workdir,
                               cuda_visible_devices=t["cvd"], base_url=t["base_url"], stack=stack, settings=settings)
        run_dir = Path(outcome.run_dir)
    except (StepFailed, Interrupted):
        new = sorted(run_dirs() - before)
        if new:
            attach_health(new[-1], report)
        raise
    attach_health(run_dir, report)
    return run_dir


def attach_health(run_dir: Path, report: dict) -> None:
    from rebuilt.core.fs import write_json
    from rebuilt.tools.bench import store

    data = store.load_run(run_dir)
    data.pop("_dir", None)
    data.pop("schema_version", None)
    data["gpu_health"] = report
    store.write_run(run_dir, data)
    write_json(Path(run_dir) / "gpu_health.json", report)


def stack_manifest(workdir: Path, stack: str) -> dict:
    """The newest build manifest of each recipe of ``stack``: version, commit, dirty, artifacts."""
    out: dict[str, dict] = {}
    for path in sorted((Path(workdir) / "manifests").glob("*.json")):
        try:
            m = manifest_mod.read(path)
        except InputError:
            continue  # a damaged manifest is no evidence of a build of this stack
        if m.get("kind", "build") != "build" or m.get("status") != "done" or m.get("stack") not in (None, stack) \
                or not m.get("recipe") or not m.get("run_id"):
            continue
        src = m.get("source") or {}
        out[m["recipe"]] = {"run_id": m["run_id"], "commit": src.get("commit"), "ref": src.get("ref"),
                            "dirty": src.get("dirty"), "manifest": path.name,
                            "artifacts": [a["path"].rsplit("/", 1)[-1] for a in m.get("artifacts", [])]}
    return {"name": stack, "components": out} if out else {"name": stack}
