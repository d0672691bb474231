"""Before a real build, the checks that apply to its plan run in seconds; a failure stops the build.

The checks judge the state the plan will produce (``rebuilt/build/checks/needs.py``): a step that needs
torch is satisfied by an earlier step that installs it, and a check runs only when a step needs what
it checks (``checks.APPLIES``). A dry run runs the same checks and ends with their verdict, without
failing.
"""

from __future__ import annotations

from rebuilt.build.checks import catalog as checks
from rebuilt.build.checks import report
from rebuilt.build.checks.model import Check
from rebuilt.errors import CheckFailed


def hint(plan, settings) -> str:
    """What to do about failed checks, naming the doctor command that runs these same checks: plain
    `doctor` checks every component of the stack against the environment as it is now."""
    from rebuilt.core.command import command

    names = ",".join(rp.recipe.name for rp in getattr(plan, "recipes", ()))
    stack = getattr(getattr(settings, "stack", None), "name", None)
    doctor = command(f"doctor --recipe {names}" + (f" --stack {stack}" if stack else "")) if names else command("doctor")
    return f"fix these (`{doctor}` shows the same checks), or --no-checks to build anyway"


def unset_settings(ctx) -> list[Check]:
    """Settings the plan cannot do without (a private recipe's URL): a dry run shows placeholders."""
    return [Check("settings", "fail", f"{key} is not set", hint)
            for rp in getattr(ctx.plan, "recipes", ()) for key, hint in getattr(rp, "unset", ())]


def run(plan, machine, settings) -> list[Check]:
    ctx = checks.Context(settings=settings, machine=machine, recipes=[rp.recipe.name for rp in plan.recipes],
                         plan=plan, probe_network=False)
    return report.run(ctx, (unset_settings, *checks.for_plan(ctx)))


def _detail(rows: list[Check]) -> str:
    return "\n".join(f"  {r.name}: {r.found}" + (f"\n    -> {r.todo}" if r.todo else "") for r in rows)


def verdict(rows: list[Check], todo: str = "fix these, or --no-checks to build anyway") -> str:
    """What a real build of this plan would meet: the failures and warnings, and whether it would start."""
    failed = [r for r in rows if r.status == "fail"]
    warned = [r for r in rows if r.status == "warn"]
    lines = [f"checks for a real build: {report.summary(rows)}"]
    if failed:
        lines += ["would stop the build (exit 3):", _detail(failed)]
    if warned:
        lines += ["warnings:", _detail(warned)]
    lines.append(f"verdict: a real build would stop at the checks; {todo}" if failed
                 else "verdict: a real build would pass the checks")
    return "\n".join(lines)


def before_build(plan, machine, settings, console, dry_run: bool = False) -> None:
    """The checks for ``plan``: a failure raises CheckFailed (exit 3); with ``dry_run``, print the verdict instead."""
    rows = run(plan, machine, settings)
    if dry_run:
        console.say(verdict(rows, hint(plan, settings)))
        return
    for r in rows:
        if r.status == "warn":
            console.say(f"! {r.name}: {r.found}" + (f" ({r.todo})" if r.todo else ""))
    failed = [r for r in rows if r.status == "fail"]
    if failed:
        raise CheckFailed(f"pre-build checks failed ({report.summary(rows)}):\n{_detail(failed)}",
                          hint=hint(plan, settings))
    console.say(f"checks: {report.summary(rows)}")

