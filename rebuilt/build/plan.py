"""Plans: a pure function (settings, stack, recipes, machine) -> ordered steps.

A Step is what the runner executes: an argv, a shell line or an internal
action, with its cwd, the env variables it sets/changes/unsets, and flags
(needs the network, installs packages, needs a GPU). ``render()`` prints a plan
for ``--dry-run``. Nothing here starts a process; the plan reads files that decide
its steps (the patches folder, and what the features read: the offline index, the
proxy state), and writes none.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rebuilt.build import features as features_mod
from rebuilt.build import jobs as jobs_mod
from rebuilt.build.template import fill_argv, fill_env
from rebuilt.core import conditions
from rebuilt.core.fs import sha256_file
from rebuilt.core.machine import Machine
from rebuilt.core.recipes import Recipe, StepSpec
from rebuilt.core.secret import redact
from rebuilt.core.settings import Settings, env_name
from rebuilt.core.text import render as fill
from rebuilt.errors import ConfigError

JOBS = "{jobs}"  # the job count as the no-op stamp sees it: -j 8 and -j 64 build the same thing
RESERVED = {"python", "python_bin", "python_prefix", "cmake_prefix", "jobs", "workdir", "wheelhouse", "src",
            "build_dir", "cuda_home", "nvcc", "cuda", "arch_list", "nvshmem_dir", "recipe", "gpu", "nvshmem",
            "nvshmem_pip", "cuda_cccl",
            "ccache", "offline", "python_version", "host_cxx", "host_cc", "version"}


@dataclass(frozen=True)
class Step:
    recipe: str
    name: str
    cwd: str
    argv: tuple[str, ...] | None = None
    shell: str | None = None
    action: str | None = None
    args: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)  # name -> value, or None to unset
    network: bool = False
    installs: bool = False
    gpu: bool = False
    replaces: tuple[str, ...] = ()
    note: str | None = None
    needs: tuple[str, ...] = ()  # "cmake>=3.26", "nvcc", ...: what the pre-build checks look at for this step
    provides: tuple[str, ...] = ()  # what it makes available to the steps after it ("torch", "uv")
    # What came from the job count: env name -> (value, the value with "{jobs}" in place of the count),
    # and the command so rendered (None: the command holds no job count). The no-op stamp reads these.
    jobs_env: dict = field(default_factory=dict)
    jobs_command: str | None = None

    @property
    def title(self) -> str:
        return f"{self.recipe}:{self.name}"

    def command_text(self) -> str:
        if self.argv:
            return shlex.join(self.argv)
        if self.shell:
            return self.shell
        return describe_action(self)


@dataclass(frozen=True)
class RecipePlan:
    recipe: Recipe
    context: dict
    steps: tuple[Step, ...]
    warnings: tuple[str, ...]
    jobs: jobs_mod.JobChoice
    source_dir: str | None
    inputs: dict  # what reaches the plan, for stamps and manifests
    unset: tuple[tuple[str, str], ...] = ()  # (setting, how to set it): a dry run shows a placeholder instead


@dataclass(frozen=True)
class Plan:
    stack: str
    python: str
    workdir: str
    recipes: tuple[RecipePlan, ...]
    python_why: str = ""  # the rule that chose the target interpreter (rebuilt/core/interpreter.py)

    @property
    def steps(self) -> list[Step]:
        return [s for rp in self.recipes for s in rp.steps]

    @property
    def warnings(self) -> list[str]:
        return [w for rp in self.recipes for w in rp.warnings]


def describe_action(step: Step) -> str:
    a = step.args
    if step.action == "fetch":
        sub = "; git submodule sync --recursive; git submodule update --init --recursive" if a["submodules"] else ""
        return f"git fetch {redact(a['url'])} {a['ref']} -> {a['dest']} (checkout --detach){sub}"
    if step.action == "patches":
        shas = a.get("sha256") or [""] * len(a["patches"])
        return "git apply, in order, skipping patches already applied: " + ", ".join(
            f"{Path(p).name}{f' ({h})' if h else ''}" for p, h in zip(a["patches"], shas))
    if step.action == "collect":
        return f"copy {', '.join(a['patterns'])} -> {a['dest']} (sha256 in the manifest)"
    if step.action == "pip-protected":
        return (f"{a['python']} -m pip install --no-deps {' '.join(a['target'])}; then its requirements "
                f"except protected {sorted(a['protected'])} (printed), resolved first (pip --dry-run --report) and "
                f"installed as resolved; a protected one not installed only at the version matching torch")
    if step.action == "drop-requirements":
        check = (f"; then the lines of {', '.join(a['resolve'])} that pip's resolver (--dry-run --report) cannot "
                 f"install next to the installed protected versions (each with pip's reason)") if a.get("resolve") else ""
        return (f"remove requirement lines naming {sorted(a['protected'])} from {', '.join(a['files'])} "
                f"(by requirement name, not upstream's substring match){check}")
    if step.action == "check-import":
        return f"{a['python']} -c 'import {a['module']}' (prints its version and path)"
    if step.action == "keep-installed":
        return f"keep the environment's {a['dist']} ({a['found'] or 'not installed'}); expected {a['expect'] or 'any'}"
    return f"<{step.action}>"


def _source_dir(settings: Settings, recipe: Recipe, workdir: Path) -> tuple[str | None, Recipe | None]:
    """(checkout dir, recipe that owns the checkout)."""
    from rebuilt.core import recipes as recipes_mod

    if not recipe.source:
        return None, None
    owner = recipes_mod.get(recipe.source.from_) if recipe.source.from_ else recipe
    return str(workdir / "src" / owner.source.dir), owner


def _context(settings: Settings, recipe: Recipe, machine: Machine, workdir: Path, jobs: int) -> dict[str, Any]:
    python = settings.python()
    cuda_home = machine.cuda_home or ""
    src, _ = _source_dir(settings, recipe, workdir)
    build_dir = str(Path(src) / recipe.source.subdir) if src and recipe.source.subdir else (src or str(workdir))
    # nvshmem_dir: a real NVSHMEM install named in settings (it has lib/libnvshmem_host.so); nvshmem_pip:
    # the target environment's nvidia.nvshmem package, whose lib/ has only the soname (libnvshmem_host.so.3),
    # so builds that link it by name must not be pointed at it (DeepEP v1.2.1 setup.py).
    nvshmem_dir, nvshmem_pip = settings["nvshmem_dir"], machine.python.nvshmem or ""
    prefix = machine.python.prefix or str(Path(python).parent.parent)
    ctx: dict[str, Any] = {
        "recipe": recipe.name, "python": python, "python_bin": str(Path(python).parent), "python_prefix": prefix,
        "cmake_prefix": os.environ.get("CONDA_PREFIX") or prefix, "jobs": jobs, "workdir": str(workdir),
        "wheelhouse": str(workdir / "wheels"), "src": src or "", "build_dir": build_dir, "cuda_home": cuda_home,
        "nvcc": f"{cuda_home}/bin/nvcc" if cuda_home else "nvcc", "cuda": settings["cuda"],
        "arch_list": settings["torch_cuda_arch_list"], "nvshmem_dir": nvshmem_dir, "nvshmem_pip": nvshmem_pip,
        "cuda_cccl": machine.cuda_cccl or "",
        "python_version": settings["python_version"], "version": settings.get(f"{recipe.name}.version") or "",
        "gpu": bool(machine.gpus), "nvshmem": bool(nvshmem_dir or nvshmem_pip),
        "ccache": bool(settings["ccache.enabled"]),
        "offline": features_mod.offline.enabled(settings),
    }
    for opt in recipe.options:
        if opt in RESERVED:
            raise ConfigError(f"{recipe.path}: option {opt!r} shadows a built-in placeholder; rename it")
        ctx[opt] = settings[f"{recipe.name}.{opt}"]
    if recipe.source and recipe.source.when and not conditions.evaluate(recipe.source.when, ctx, str(recipe.path)):
        ctx["src"], ctx["build_dir"] = "", str(workdir)  # nothing to check out in this mode
    return ctx


def _needs(items, ctx: dict, where: str) -> tuple[str, ...]:
    """A step's needs with their conditions evaluated (recipe-level first), each once."""
    out: list[str] = []
    for item in items:
        if isinstance(item, dict):
            if not conditions.evaluate(item.get("when", "true"), ctx, where):
                continue
            item = item["need"]
        if item not in out:
            out.append(item)
    return tuple(out)


def _step(recipe: Recipe, spec: StepSpec, ctx: dict, build_dir: str) -> Step:
    where = f"{recipe.path} step {spec.name}: "
    env = fill_env({**recipe.env, **spec.env}, ctx, str(recipe.path))
    for name in recipe.unset + spec.unset:
        env[name] = None
    if spec.path_prepend:
        env["PATH"] = ":".join(fill(p, ctx, where=where) for p in spec.path_prepend) + ":${PATH}"
    cwd = fill(spec.cwd, ctx, where=where) if spec.cwd else build_dir
    cwd = cwd if os.path.isabs(cwd) else str(Path(build_dir) / cwd)
    args = {k: (fill(v, ctx, where=where) if isinstance(v, str) else v) for k, v in spec.with_.items()}
    replaces = spec.replaces if spec.replaces is not None else (recipe.replaces if spec.installs else ())
    return Step(
        recipe=recipe.name, name=spec.name, cwd=cwd,
        argv=fill_argv(spec.run, ctx, where) if spec.run else None,
        shell=fill(spec.shell, ctx, where=where) if spec.shell else None,
        action=spec.action, args=args, env=env, network=spec.network, installs=spec.installs,
        gpu=spec.gpu, replaces=tuple(replaces), note=fill(spec.note, ctx, where=where) if spec.note else None,
        needs=_needs(recipe.needs + spec.needs, ctx, f"{where}needs"), provides=tuple(spec.provides),
    )


def _action_args(step: Step, ctx: dict, settings: Settings, machine: Machine) -> Step:
    """Fill in what internal actions need from the context."""
    args = dict(step.args)
    if step.action in ("pip-protected", "check-import", "keep-installed", "drop-requirements"):
        args.setdefault("python", ctx["python"])
    if step.action in ("pip-protected", "drop-requirements"):
        args.setdefault("protected", list(settings["protected"]))
    if step.action == "pip-protected" and isinstance(args.get("target"), str):
        args["target"] = shlex.split(args["target"])
    if step.action == "keep-installed":
        args["found"] = machine.python.packages.get(args["dist"])
    if step.action == "drop-requirements":
        for key in ("files", "resolve"):
            if isinstance(args.get(key), str):
                args[key] = shlex.split(args[key])
    return Step(**{**step.__dict__, "args": args})


def plan_recipe(settings: Settings, recipe: Recipe, machine: Machine, workdir: Path,
                placeholders: bool = False, features=features_mod.FEATURES) -> RecipePlan:
    """The steps for one recipe: fetch, patches, the recipe's own steps, collect.

    A required setting that is empty raises ConfigError, or with ``placeholders`` (a dry run) shows as
    ``<name: not set>`` in the plan, with a warning, and is listed in ``RecipePlan.unset``."""
    opts = settings.recipe(recipe.name)
    threads = opts.get(recipe.nvcc_threads_option) if recipe.nvcc_threads_option else None
    per_job = jobs_mod.mem_per_job(recipe.mem_per_job_gb, threads)
    note = f"{recipe.mem_per_job_gb:g} GiB x {threads} nvcc threads" if threads else ""
    choice = jobs_mod.choose(settings["jobs"], machine.cpus, machine.mem_available_gb, per_job, note)
    ctx = _context(settings, recipe, machine, workdir, choice.jobs)
    free = {**ctx, "jobs": JOBS}  # the same recipe with the job count left as a placeholder
    src, owner = _source_dir(settings, recipe, workdir)
    src = src if ctx["src"] else None
    warnings = [w for w in [choice.warning] if w]
    steps: list[Step] = []
    unset: list[tuple[str, str]] = []
    if src:
        url, ref = settings[f"{owner.name}.url"], settings[f"{owner.name}.ref"]
        required = [(f"{owner.name}.url", url, f"the {owner.name} source has no public URL",
                     f"set it in invoke.yaml (rebuilt: {{{owner.name}: {{url: ...}}}}), "
                     f"--set {owner.name}.url=<git url> "
                     f"or export {env_name(owner.name + '.url')}=<git url>"),
                    (f"{owner.name}.ref", ref, "", "give --ref or set it in the stack")]
        for key, value, why, hint in required:
            if value:
                continue
            if not placeholders:
                raise ConfigError(f"setting {key} is empty" + (f": {why}" if why else ""), hint=hint)
            unset.append((key, hint))
            warnings.append(f"setting {key} is not set: a real build stops here ({hint})")
        url, ref = url or f"<{owner.name}.url: not set>", ref or f"<{owner.name}.ref: not set>"
        steps.append(Step(recipe.name, "fetch", cwd=str(workdir / "src"), action="fetch", network=True,
                          args={"url": url, "ref": ref, "dest": src, "submodules": owner.source.submodules},
                          needs=("git",)))
        from rebuilt.build import patches as patches_mod

        patches = patches_mod.for_recipe(settings, owner.name)
        if patches:  # the sha256 is part of the plan: a changed patch is a changed input
            steps.append(Step(recipe.name, "patches", cwd=src, action="patches",
                              args={"patches": [str(p) for p in patches], "dest": src,
                                    "sha256": [sha256_file(p)[:12] for p in patches]}, needs=("git",)))
    for spec in recipe.steps:
        if spec.when and not conditions.evaluate(spec.when, ctx, f"{recipe.path} step {spec.name}"):
            continue
        step = _action_args(_step(recipe, spec, ctx, ctx["build_dir"]), ctx, settings, machine)
        step = _mark_jobs(step, _action_args(_step(recipe, spec, free, free["build_dir"]), free, settings, machine))
        if step.gpu and not machine.gpus:
            warnings.append(f"{step.title} needs a GPU and none was found: the step is left out")
            continue
        steps.append(step)
    if recipe.artifacts and conditions.evaluate(recipe.artifacts_when or "true", ctx, str(recipe.path)):
        steps.append(Step(recipe.name, "collect", cwd=ctx["build_dir"], action="collect",
                          args={"patterns": list(recipe.artifacts), "dest": ctx["wheelhouse"]}))
    for when, text in recipe.warnings:
        if conditions.evaluate(when, ctx, f"{recipe.path} warning"):
            warnings.append(f"{recipe.name}: {fill(text, ctx)}")
    if recipe.provides and steps:
        steps[-1] = Step(**{**steps[-1].__dict__, "provides": steps[-1].provides + tuple(recipe.provides)})
    steps = [features_mod.apply(features, settings, recipe, s, ctx, workdir, machine) for s in steps]
    warnings += features_mod.warnings(features, settings, recipe, steps, ctx, workdir, machine)
    inputs = {"recipe": recipe.name, "options": {k: redact(v) if isinstance(v, str) else v for k, v in opts.items()},
              "steps": [_step_inputs(s) for s in steps]}
    return RecipePlan(recipe, ctx, tuple(steps), tuple(warnings), choice, src, inputs, tuple(unset))


def _mark_jobs(step: Step, free: Step) -> Step:
    """``step`` with what came from the job count: ``free`` is the same step rendered with ``{jobs}``."""
    env = {k: (step.env.get(k), v) for k, v in free.env.items() if step.env.get(k) != v}
    command = free.command_text()
    return replace(step, jobs_env=env, jobs_command=command if command != step.command_text() else None)


def _step_inputs(step: Step) -> list:
    """A step as the no-op stamp compares it: command and env, the job count left out (it changes no output)."""
    env = dict(step.env)
    for name, (value, free) in step.jobs_env.items():
        if env.get(name) == value:  # as the recipe rendered it (a feature may have replaced it since)
            env[name] = free
    return [step.name, redact(step.jobs_command or step.command_text()),
            sorted((k, redact(str(v))) for k, v in env.items() if not _transport(k))]


def _transport(name: str) -> bool:
    """Env that changes how a build reaches the network or its cache, never what it builds."""
    return name.lower() in ("http_proxy", "https_proxy", "no_proxy", "git_ssl_no_verify") or \
        name.startswith("CCACHE_") or name.endswith("_COMPILER_LAUNCHER") or name == "TORCH_NO_COMPILER_WRAPPER"


def make(settings: Settings, recipes: list[Recipe], machine: Machine, workdir: Path,
         placeholders: bool = False, features=features_mod.FEATURES) -> Plan:
    """The plan for ``recipes`` (already in build order); ``placeholders``: see ``plan_recipe``;
    ``features``: what every step gets (``rebuilt.build.features.FEATURES``; a test may pass fewer)."""
    target = settings.target()
    return Plan(stack=settings.stack.name, python=target.python, workdir=str(workdir), python_why=target.why,
                recipes=tuple(plan_recipe(settings, r, machine, workdir, placeholders, features) for r in recipes))


def _env_line(name: str, value: str | None) -> str:
    return f"unset {name}" if value is None else f"{name}={shlex.quote(redact(value))}"


def env_diff(previous: dict, current: dict) -> list[str]:
    """The env changes a step declares that differ from the previous step's (plan and run echo alike)."""
    lines = [_env_line(n, v) for n, v in current.items() if n not in previous or previous[n] != v]
    back = sorted(set(previous) - set(current))
    if back:
        lines.append(f"(as in the caller's environment again: {', '.join(back)})")
    return lines


def render(plan: Plan, machine: Machine) -> str:
    """Human-readable plan: every step with cwd, env changes and command."""
    py = machine.python
    lines = [f"Plan: {', '.join(rp.recipe.name for rp in plan.recipes)} (stack {plan.stack})",
             f"  python   {plan.python} ({py.version or 'not runnable: ' + str(py.error)})"
             + (f", chosen by {plan.python_why}" if plan.python_why else ""),
             f"  workdir  {plan.workdir}"]
    for rp in plan.recipes:
        lines.append(f"  jobs     {rp.recipe.name}: {rp.jobs.jobs} ({rp.jobs.explanation})")
    for w in plan.warnings:
        lines.append(f"  ! {w}")
    steps = plan.steps
    previous: dict = {}
    for i, step in enumerate(steps, 1):
        flags = [f for f, on in (("network", step.network), ("installs", step.installs), ("gpu", step.gpu)) if on]
        lines.append(f"[{i}/{len(steps)}] {step.title}" + (f"  ({', '.join(flags)})" if flags else ""))
        lines.append(f"      cwd  {step.cwd}")
        lines += [f"      env  {line}" for line in env_diff(previous, step.env)]
        previous = step.env
        if step.note:
            lines.append(f"      note {step.note}")
        lines.append(f"      {'$' if not step.action else '>'} {redact(step.command_text())}")
    return "\n".join(lines)


def source_only(plan: Plan) -> Plan:
    """The same plan with only the checkout steps (fetch, patches) of each recipe that has a source."""
    from dataclasses import replace

    kept = [replace(rp, steps=tuple(s for s in rp.steps if s.action in ("fetch", "patches")), warnings=())
            for rp in plan.recipes if rp.source_dir]
    seen, unique = set(), []
    for rp in kept:  # sgl-kernel and sglang share one checkout
        if rp.source_dir not in seen:
            seen.add(rp.source_dir)
            unique.append(rp)
    return replace(plan, recipes=tuple(unique))
