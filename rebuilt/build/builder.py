"""From settings to a finished build: plan, checks, run under the lock and the guard, manifest.

Tasks (inv) and sessions (nox) call ``build()``; this is the data flow the
README describes: the plan (with the features' env), the checks' verdict
(``rebuilt.build.checks.preflight.before_build``), then each recipe's steps
with the features' hooks around them. The features are a parameter (default
``rebuilt.build.features.FEATURES``, whose order is explained there).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from rebuilt.build import features as features_mod
from rebuilt.build import plan as plan_mod
from rebuilt.core import interpreter, runner, signals, worklock
from rebuilt.core import machine as machine_mod
from rebuilt.core import recipes as recipes_mod
from rebuilt.core.fs import mark_cachedir, open_private, private_dir, write_json
from rebuilt.core.secret import redact
from rebuilt.core.settings import Settings
from rebuilt.core.text import fmt_seconds
from rebuilt.errors import Interrupted, RebuiltError, StepFailed

# manifest, logscan and the step actions (with packaging, via reqcompat) are imported where a real build
# uses them: a dry run, the doctor and a no-op build never do.


@dataclass
class Options:
    dry_run: bool = False
    force: bool = False
    explain: bool = False
    checks: bool = True
    verbose: bool = False
    source_only: bool = False  # src.fetch: only the fetch and patches steps, no manifest


@dataclass
class Outcome:
    plan: plan_mod.Plan
    manifests: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def targets(settings: Settings, names: list[str]) -> list[recipes_mod.Recipe]:
    """Recipes for ``names`` ("stack" = every component of the stack), in build order."""
    all_r = recipes_mod.all_recipes()
    if names == ["stack"]:
        names = list(settings.stack.components)
    for n in names:
        recipes_mod.get(n)
    return [all_r[n] for n in recipes_mod.build_order(names, all_r)]


def probe(settings: Settings) -> machine_mod.Machine:
    return machine_mod.probe(settings.python(), settings["cuda"], settings["cuda_home"], settings["host_compiler"],
                             cache=settings.workdir() / "state" / "probe.json")


def make_plan(settings: Settings, names: list[str], machine=None, placeholders: bool = False,
              features=features_mod.FEATURES) -> tuple[plan_mod.Plan, machine_mod.Machine]:
    machine = machine or probe(settings)
    workdir = settings.workdir()
    return plan_mod.make(settings, targets(settings, names), machine, workdir, placeholders, features), machine


def check_python(machine: machine_mod.Machine, settings: Settings) -> None:
    """The target interpreter must run: bad input (exit 2), also in a dry run."""
    interpreter.require_runs(settings.target(), machine.python.version, machine.python.error)


def build(settings: Settings, names: list[str], opts: Options, console: runner.Console | None = None,
          features=features_mod.FEATURES) -> Outcome:
    """Plan ``names``; print it (dry run) or run it, with ``features`` around every step."""
    from rebuilt.build.checks import preflight

    console = console or runner.Console(verbose=opts.verbose)
    plan, machine = make_plan(settings, names, placeholders=opts.dry_run, features=features)
    check_python(machine, settings)
    if opts.source_only:
        plan = plan_mod.source_only(plan)
    if opts.dry_run:
        console.say(plan_mod.render(plan, machine))
        console.say("(dry run: nothing was executed)")
        if opts.explain and not opts.source_only:  # what a real build would rebuild, and why
            from rebuilt.build.features.stamps import Stamps

            stamps = Stamps(settings, settings.workdir(), console, opts)
            stamps.machine = machine
            for rp in plan.recipes:
                console.say(stamps.explain_dry(rp))
        if opts.checks and not opts.source_only:  # the verdict a real build would meet, without failing
            preflight.before_build(plan, machine, settings, console, dry_run=True)
        return Outcome(plan)
    for w in plan.warnings:
        console.say(f"! {w}")
    if opts.checks and not opts.source_only:
        preflight.before_build(plan, machine, settings, console)
    workdir = settings.workdir()
    for sub in ("logs", "wheels", "manifests", "state", "src"):
        mark_cachedir(workdir / sub) if sub != "src" else private_dir(workdir / sub)
    outcome = Outcome(plan)
    with worklock.workdir_lock(workdir):
        hooks = [] if opts.source_only else features_mod.hooks(features, settings, workdir, console, opts, machine)
        run_id = time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"
        steps_total = len(plan.steps)
        index = 0
        for rp in plan.recipes:
            reason = None if opts.force else _skip_reason(hooks, rp)
            if reason:
                console.say(f"{rp.recipe.name}: up to date ({reason}); --force rebuilds")
                outcome.skipped[rp.recipe.name] = reason
                index += len(rp.steps)
                continue
            _call(hooks, "before_recipe", rp)
            path = _run_recipe(rp, plan, machine, settings, hooks, console, run_id, index, steps_total, workdir,
                               write_manifest=not opts.source_only)
            if path:
                outcome.manifests.append(path)
            index += len(rp.steps)
    return outcome


def _skip_reason(hooks, rp) -> str | None:
    for h in hooks:
        fn = getattr(h, "up_to_date", None)
        reason = fn(rp) if fn else None
        if reason:
            return reason
    return None


def _call(hooks, name: str, *args) -> None:
    for h in hooks:
        fn = getattr(h, name, None)
        if fn:
            fn(*args)


def _run_recipe(rp, plan, machine, settings, hooks, console, run_id, index, total, workdir,
                write_manifest=True) -> Path | None:
    logdir = workdir / "logs" / run_id
    private_dir(logdir)
    started = time.time()
    results: list[runner.StepResult] = []
    status_file = logdir / f"{rp.recipe.name}.status.json"
    previous_env: dict = {}
    status, error = "failed", None
    i, step = index, None
    try:
        for i, step in enumerate(rp.steps, index + 1):
            result, previous_env = _run_step(step, i, total, logdir, console, hooks, previous_env, started)
            results.append(result)
            write_json(status_file, {"recipe": rp.recipe.name, "steps": [r.__dict__ for r in results]})
        status = "done"
    except (Interrupted, KeyboardInterrupt) as exc:  # Ctrl-C, SIGTERM, SIGHUP
        results.append(runner.StepResult(step.name, "interrupted", log=str(_log_path(logdir, i, step))))
        error = _interrupted(exc, f"[{i}/{total}] {step.title}")
        status, error = _ended(hooks, step, results[-1], "interrupted", error)
    except RebuiltError as exc:
        if step is not None and (not results or results[-1].name != step.name):  # its duration, exit status, errors
            results.append(getattr(exc, "result", None) or
                           runner.StepResult(step.name, "failed", log=str(_log_path(logdir, i, step))))
        error = exc
        if step is not None:
            status, error = _ended(hooks, step, results[-1], status, error)
    finally:
        write_json(status_file, {"recipe": rp.recipe.name, "steps": [r.__dict__ for r in results]})
    if not write_manifest:
        if error:
            raise error
        return None
    source = None
    if rp.source_dir:
        from rebuilt.build import sources

        source = sources.status(rp.source_dir)
    from rebuilt.build import manifest

    with signals.deferred_signals():  # the manifest is written whatever arrives meanwhile
        data = manifest.build_manifest(run_id=run_id, recipe_plan=rp, plan=plan, machine=machine,
                                       settings=settings, status=status, results=results, source=source,
                                       started=started, finished=time.time())
        path = manifest.write(workdir, f"{run_id}-{rp.recipe.name}", data)
    _call(hooks, "after_recipe", rp, status, data)
    if error:
        raise error
    console.say(f"{rp.recipe.name}: built in {fmt_seconds(time.time() - started)}; manifest {path}")
    return path


def _interrupted(exc: BaseException, where: str) -> Interrupted:
    if isinstance(exc, Interrupted):
        return exc
    by = exc.args[0] if isinstance(exc, signals.Terminated) else "Ctrl-C"
    return Interrupted(f"interrupted during {where} ({by})")


def _ended(hooks, step, result, status: str, error):
    """A step failed or was interrupted: the hooks see that ending too (the guard restores torch)."""
    try:
        _call(hooks, "after_step", step, result)
    except RebuiltError as exc:  # e.g. a restore that failed: more urgent than the step's own error
        return status, exc
    except KeyboardInterrupt as exc:
        result.status = "interrupted"
        return "interrupted", _interrupted(exc, step.title)
    return status, error


def _log_path(logdir: Path, i: int, step) -> Path:
    return logdir / f"{i:02d}-{step.recipe}-{step.name}.log"


def _run_step(step, i, total, logdir, console, hooks, previous_env, started):
    label = f"[{i}/{total}] {step.title}"
    log_path = _log_path(logdir, i, step)
    env = runner.step_environment(os.environ, step.env)
    console.say(label)
    for line in plan_mod.env_diff(previous_env, step.env):
        console.say(f"      env {line}")
    _call(hooks, "before_step", step, env)
    t0 = time.monotonic()
    last_rc: list = [None]  # the exit status of the step's last command, for a failed step's result
    with open_private(log_path, "w") as log:  # 0600: step output may hold what the tools print
        log.write(f"# step {step.title}\n# cwd {step.cwd}\n# {redact(step.command_text())}\n")
        for name, value in step.env.items():
            log.write(f"# env {name}={redact(env.get(name, '')) if value is not None else '(unset)'}\n")
        log.flush()

        def run(argv, cwd=step.cwd, check=True, shell=False, env_extra=None):
            log.write(f"+ {redact(argv if isinstance(argv, str) else ' '.join(map(str, argv)))}\n")
            log.flush()
            rc = runner.stream(argv, cwd=cwd, env={**env, **(env_extra or {})}, log=log, console=console,
                               label=label, shell=shell)
            last_rc[0] = rc
            if check and rc != 0:
                raise StepFailed(f"step {step.title} failed: `{redact(str(argv[0]) if not shell else 'bash')}` "
                                 f"exited {rc}")
            return rc

        details: dict = {}
        rc = 0
        try:
            Path(step.cwd).mkdir(parents=True, exist_ok=True) if step.action == "fetch" else None
            if step.action:
                from rebuilt.build.actions import ACTIONS, ActionEnv

                ax = ActionEnv(run=run, log=log, say=console.say, started=started)
                details = ACTIONS[step.action](step, ax) or {}
            else:
                rc = run(step.shell if step.shell else list(step.argv), shell=bool(step.shell), check=False)
        except StepFailed as exc:
            log.flush()
            raise _step_failed(step, str(exc), log_path, t0, last_rc[0], details, exc.hint) from None
        except RebuiltError as exc:
            log.flush()
            if not isinstance(exc, Interrupted):  # an interrupted step is recorded by _run_recipe, at once
                exc.result = _failed_result(step, log_path, t0, last_rc[0], details)
            raise
    seconds = time.monotonic() - t0
    if rc != 0:
        raise _step_failed(step, f"step {step.title} failed: exit status {rc} after {fmt_seconds(seconds)}",
                           log_path, t0, rc, details)
    result = runner.StepResult(step.name, "done", seconds, rc, str(log_path), details)
    _call(hooks, "after_step", step, result)
    console.say(f"      done in {fmt_seconds(seconds)}")
    return result, step.env


def _failure(step, headline: str, log_path: Path, errors: list | None = None) -> str:
    """The headline, the log's first error lines (compiler, linker, CMake, ninja, pip, ...) when its tail
    lacks them, the tail, and the log's path; ``errors`` receives those lines (rebuilt.build.logscan)."""
    from rebuilt.build import logscan

    text, found = logscan.excerpt(log_path, runner.TAIL_LINES)
    if errors is not None:
        errors[:] = found
    return f"{headline}\n{redact(text)}\n--- full log: {log_path}"


def _failed_result(step, log_path: Path, t0: float, rc, details: dict, errors=None) -> runner.StepResult:
    """A failed step as the manifest records it: how long it ran, its exit status, its log, its first errors."""
    from rebuilt.build import logscan

    errors = logscan.first_errors(log_path) if errors is None else errors
    return runner.StepResult(step.name, "failed", round(time.monotonic() - t0, 3), rc, str(log_path),
                             {**details, "errors": [{"line": e.number, "kind": e.kind, "text": redact(e.text)}
                                                    for e in errors]})


def _step_failed(step, headline: str, log_path: Path, t0: float, rc, details: dict, hint=None) -> StepFailed:
    errors: list = []
    err = StepFailed(_failure(step, headline, log_path, errors), hint=hint)
    err.result = _failed_result(step, log_path, t0, rc, details, errors)
    return err
