"""`inv doctor`: every toolchain check, with what was found and what to do."""

from __future__ import annotations

from invoke import Collection, task

from rebuilt.tasks._entry import entry
from rebuilt.tasks.common import BUILD_HELP, resolve


@task(help={"stack": BUILD_HELP["stack"], "json": "print JSON rows", "fix": "fix what can be fixed (a stale nvcc "
            "in CMakeCache.txt, flashinfer JIT caches of other versions)", "python": BUILD_HELP["python"],
            "offline": "skip the checks that reach the network (source hosts)", "workdir": BUILD_HELP["workdir"],
            "set_": BUILD_HELP["set_"]}, iterable=["set_"])
@entry
def doctor(c, stack=None, json=False, fix=False, python=None, offline=False, workdir=None, set_=None):
    """Check the toolchain against the stack; exit non-zero when any check fails."""
    from rebuilt import builder
    from rebuilt.doctor import checks, report
    from rebuilt.errors import CheckFailed

    settings = resolve(stack=stack, python=python, workdir=workdir, set_=set_)
    names = [n for n in settings.stack.components if n != "speedgate" or settings["speedgate.url"]]
    plan, machine = builder.make_plan(settings, names)
    ctx = checks.Context(settings=settings, machine=machine, recipes=names, plan=plan, fix=fix, offline=offline)
    rows = report.run(ctx, checks.ALL)
    print(report.as_json(rows) if json else report.table(rows))
    failed = [r.name for r in rows if r.status == "fail"]
    if failed:
        raise CheckFailed(f"{len(failed)} check(s) failed: {', '.join(failed)}")


ns = Collection(doctor)
