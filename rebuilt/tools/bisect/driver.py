"""From `inv bisect` flags to a running bisection: validation first, then the state, then the loop."""

from __future__ import annotations

from dataclasses import dataclass, field

from rebuilt.core import flags, runner
from rebuilt.errors import ConfigError, InputError
from rebuilt.tools.bisect import report as bisect_report
from rebuilt.tools.bisect import search as bisect
from rebuilt.tools.bisect import verdict as bisect_verdict
from rebuilt.tools.bisect.builds import Builds
from rebuilt.tools.bisect.run import Bench, Bisection


@dataclass
class Args:
    recipe: str | None = None
    good: str | None = None
    bad: str | None = None
    spec: str | None = None
    metric: str | None = None
    cmd: str | None = None
    build_only: bool = False
    threshold: str | None = None
    repeats: str | None = None
    resume: bool = False
    log: bool = False
    keep: bool = False
    verbose: bool = False
    flags: dict = field(default_factory=dict)  # stack, python, set_, workdir, jobs, no_checks


def _resolver(flags: dict):
    from rebuilt.core.settings import parse_assignments
    from rebuilt.core.settings import resolve as resolve_settings

    def resolve(stack=None, jobs=None, python=None, workdir=None, set_=None, **extra):
        """Settings from the task's flags (None: not given), as every build task resolves them."""
        layer = {"stack": stack, "jobs": jobs, "python": python, "workdir": workdir, **extra}
        return resolve_settings(layer, assignments=parse_assignments(set_))

    base = {k: flags.get(k) for k in ("stack", "jobs", "python", "workdir", "set_")}
    cache: dict = {}

    def settings_for(ref_key: str | None, ref: str | None):
        key = (ref_key, ref)
        if key not in cache:
            cache[key] = resolve(**base, **({ref_key: ref} if ref_key and ref else {}))
        return cache[key]

    return settings_for


def _mode(a: Args) -> str:
    modes = [m for m, on in (("cmd", a.cmd), ("build-only", a.build_only), ("bench", a.metric or a.spec)) if on]
    if len(modes) != 1:
        raise InputError("say how to decide good or bad: exactly one of --metric (with --spec), --cmd or --build-only"
                         + (f" (got {', '.join(modes)})" if modes else ""))
    if modes == ["bench"] and not a.metric:
        raise InputError("--spec needs --metric: the metric to compare, e.g. --metric total_latency")
    return modes[0]


def _bench(settings, options: dict) -> Bench:
    from rebuilt.tools.bench import spec as bspec

    loaded = bspec.load(bspec.find(options["spec"]))
    if loaded.kind != "one_batch":
        raise InputError(f"bench spec {options['spec']} is a {loaded.kind} spec: it measures a running server, "
                         f"which a bisection cannot restart for every commit", hint="use a one_batch spec")
    bisect_verdict.check_metric(loaded.kind, options["metric"])
    loaded = bspec.override(loaded, repeats=options["repeats"])
    model_path = settings["bench.model_path"]
    if not model_path:
        raise ConfigError("no model path for the benchmark", hint="--set bench.model_path=/path/to/model")
    return Bench(loaded, model_path, check=options["checks"],
                 cuda_visible_devices=settings["bench.cuda_visible_devices"] or None,
                 base_url=settings["bench.base_url"] or None)


def main(a: Args) -> dict | None:
    if not a.recipe:
        raise InputError("--recipe is required: the component whose commits are bisected")
    if a.log or a.resume:
        given = [f"--{k}" for k in ("good", "bad", "spec", "metric", "cmd", "threshold", "repeats") if getattr(a, k)]
        given += ["--build-only"] if a.build_only else []
        given += [f"--{k.rstrip('_').replace('_', '-')}" for k, v in a.flags.items()
                  if v and k not in ("workdir",)]
        if given:
            raise InputError(f"{' '.join(given)} cannot be combined with --{'log' if a.log else 'resume'}: "
                             f"the saved bisection keeps its own refs, mode and settings")
        probe = _resolver({"workdir": a.flags.get("workdir")})(None, None)
        state = bisect.load(probe.workdir(), a.recipe)
        if state is None:
            raise InputError(f"no bisection of {a.recipe} in {bisect.folder(probe.workdir(), a.recipe)}",
                             hint="start one with --good, --bad and a way to decide")
        if a.log:
            print(bisect_report.table(state))
            if state.status == "done":
                print(bisect_report.result_text(state))
            return None
        if state.status == "done":
            raise InputError(f"the bisection of {a.recipe} is finished; --log shows it")
        return _run(state, a)
    return _start(a)


def _start(a: Args) -> dict:
    mode = _mode(a)
    if not (a.good and a.bad):
        raise InputError("--good and --bad are required: the refs the regression lies between")
    from rebuilt.core.settings import parse_assignments

    key = f"{_owner(a.recipe)}.ref"
    if key in parse_assignments(a.flags.get("set_")):
        raise InputError(f"--set {key}=... cannot be used with bisect: it sets {key} to each candidate commit",
                         hint="give the range with --good and --bad")
    settings_for = _resolver(a.flags)
    settings = settings_for(None, None)
    threshold = flags.number(a.threshold, "--threshold", kind=float, minimum=0) if a.threshold is not None \
        else round((settings["bench.factor"] - 1) * 100, 6)
    repeats = flags.number(a.repeats, "--repeats", minimum=1) if a.repeats is not None else None
    checks = settings["checks"] and not a.flags.get("no_checks")
    options = {"spec": a.spec or settings["bench.spec"], "metric": a.metric, "cmd": a.cmd, "threshold": threshold,
               "repeats": repeats, "alpha": settings["bench.alpha"], "checks": checks}
    if mode == "bench":
        _bench(settings, options)  # validates spec, metric and model path before anything is built
    old = bisect.load(settings.workdir(), a.recipe)
    if old and old.status not in ("done", "failed"):
        folder = bisect.folder(settings.workdir(), a.recipe)
        raise InputError(f"a bisection of {a.recipe} is unfinished ({old.status}) in {folder}",
                         hint=f"--resume continues it, --log shows it; remove {folder / 'state.json'} to start over")
    builds = _builds(a, settings_for, checks)
    start = builds.snapshot_start()
    src = builds.source_dir()
    try:  # fetching a ref moves the checkout: a refused range puts it back where it was
        commits = _range(a, builds, src)
    except BaseException:
        builds.put_back(start)
        raise
    state = bisect.State(recipe=a.recipe, mode=mode, good=a.good, bad=a.bad, commits=commits, options=options,
                         flags={**a.flags, "workdir": str(settings.workdir())}, source_dir=str(src), start=start)
    n = len(state.commits) - 1
    runner.Console().say(f"bisect {a.recipe}: {n} commit(s) after {a.good} up to {a.bad}; at most "
                         f"{bisect.max_tests(n)} builds when every commit decides")
    return _run(state, a)


def _range(a: Args, builds: Builds, src) -> list[dict]:
    """The commits from --good to --bad (checked: both exist, good is an ancestor of bad, they differ)."""
    resolved = []
    for ref in (a.good, a.bad):  # resolved before anything moves the checkout (HEAD stays what it was)
        found = bisect.try_resolve(src, ref)
        if found is None:  # not in the checkout yet: fetched as --ref fetches it
            builds.fetch(ref)
            if not (src / ".git").exists():
                raise InputError(f"recipe {a.recipe} has no checkout with these settings (its [source] is off)",
                                 hint="bisect a mode that builds from source, e.g. --set flashinfer.mode=editable")
            found = bisect.resolve(src, ref)
        resolved.append(found)
    return [c.__dict__ for c in bisect.commits(src, a.good, a.bad, *resolved)]


def _owner(name: str) -> str:
    """The recipe whose checkout ``name`` builds (sgl-kernel builds in sglang's)."""
    from rebuilt.core import recipes

    recipe = recipes.get(name)
    return recipe.source.from_ if recipe.source and recipe.source.from_ else recipe.name


def _builds(a: Args, settings_for, checks: bool) -> Builds:
    settings = settings_for(None, None)
    owner = _owner(a.recipe)
    return Builds(settings_for=lambda ref: settings_for(f"{owner}.ref", ref), recipe=a.recipe,
                  folder=bisect.folder(settings.workdir(), a.recipe), console=runner.Console(verbose=a.verbose),
                  checks=checks, verbose=a.verbose or settings["verbose"])


def _run(state: bisect.State, a: Args) -> dict:
    settings_for = _resolver(state.flags)
    settings = settings_for(None, None)
    checks = state.options["checks"]
    builds = _builds(Args(recipe=state.recipe, verbose=a.verbose), settings_for, checks)
    bench = _bench(settings, state.options) if state.mode == "bench" else None
    return Bisection(state, builds, workdir=settings.workdir(), python=settings.python(), console=builds.console,
                     bench=bench, keep=a.keep).run()
