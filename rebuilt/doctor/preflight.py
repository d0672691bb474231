"""Before a real build, the checks that matter for its plan run in seconds; a failure stops the build."""

from __future__ import annotations

from rebuilt import builder
from rebuilt.doctor import checks, report
from rebuilt.errors import CheckFailed


def before_build(plan, machine, settings, console) -> None:
    ctx = checks.Context(settings=settings, machine=machine, recipes=[rp.recipe.name for rp in plan.recipes],
                         plan=plan, offline=True)
    rows = report.run(ctx, checks.PREFLIGHT)
    for r in rows:
        if r.status == "warn":
            console.say(f"! {r.name}: {r.found}" + (f" ({r.todo})" if r.todo else ""))
    failed = [r for r in rows if r.status == "fail"]
    if failed:
        detail = "\n".join(f"  {r.name}: {r.found}" + (f"\n    -> {r.todo}" if r.todo else "") for r in failed)
        raise CheckFailed(f"pre-build checks failed ({report.summary(rows)}):\n{detail}",
                          hint="fix these (inv doctor shows every check), or --no-checks to build anyway")
    console.say(f"checks: {report.summary(rows)}")


builder.PREFLIGHT.append(before_build)
