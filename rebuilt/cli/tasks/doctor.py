"""`inv doctor`: every toolchain check, with what was found and what to do."""

from __future__ import annotations

from invoke import Collection, task

from rebuilt.cli.tasks._entry import entry
from rebuilt.cli.tasks.common import BUILD_HELP, resolve

HELP = {
    "stack": BUILD_HELP["stack"],
    "recipe": "check for these recipes only (comma separated); default: every component of the stack",
    "json": "print the rows as JSON (name, status, found, todo)",
    "fix": "repair what can be repaired: a CMakeCache.txt remembering another nvcc, flashinfer JIT caches of "
           "other versions; each row says what was done",
    "python": BUILD_HELP["python"],
    "offline": "as a build with --offline sees it: the network checks become checks of the unpacked bundle "
               "(inv src.unbundle); nothing reaches the network",
    "workdir": BUILD_HELP["workdir"],
    "set_": BUILD_HELP["set_"],
}


def _names(settings, recipe: str | None) -> list[str]:
    """The recipes to check: those asked for, else the stack's components that have a source URL when
    they need one (a private recipe without its URL is left out, as a build would refuse it)."""
    from rebuilt.core import recipes

    if recipe:
        return [n.strip() for n in recipe.split(",") if n.strip()]
    names = []
    for n in settings.stack.components:
        r = recipes.get(n)
        owner = recipes.get(r.source.from_) if r.source and r.source.from_ else r
        if not owner.source or settings.get(f"{owner.name}.url") or owner.source.when:
            names.append(n)
    return names


@task(help=HELP, iterable=["set_"])
@entry
def doctor(c, stack=None, recipe=None, json=False, fix=False, python=None, offline=False, workdir=None, set_=None):
    """Check the toolchain against the stack; what to fix."""
    from rebuilt.build import builder
    from rebuilt.build.checks import catalog as checks
    from rebuilt.build.checks import report
    from rebuilt.core.command import as_typed
    from rebuilt.errors import CheckFailed

    settings = resolve(stack=stack, python=python, workdir=workdir, set_=set_, offline=True if offline else None)
    names = _names(settings, recipe)
    plan, machine = builder.make_plan(settings, names)
    ctx = checks.Context(settings=settings, machine=machine, recipes=[rp.recipe.name for rp in plan.recipes],
                         plan=plan, fix=fix)  # the offline setting turns host probes into bundle rows
    rows = report.run(ctx, checks.for_plan(ctx, checks.ALL))  # as a build's checks: only what its steps use
    print(report.as_json(rows) if json else as_typed(report.table(rows)))  # hints name the running program
    failed = [r.name for r in rows if r.status == "fail"]
    if failed:
        raise CheckFailed(f"{len(failed)} check(s) failed: {', '.join(failed)}")


ns = Collection(doctor)
