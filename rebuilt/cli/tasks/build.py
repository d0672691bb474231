"""`inv build.<recipe>` for every recipe in recipes/, and `inv build.stack`."""

from __future__ import annotations

from invoke import Collection, Task

from rebuilt.cli.tasks import _catalog
from rebuilt.cli.tasks._entry import entry
from rebuilt.cli.tasks.common import BUILD_HELP, resolve


def _make(names: list[str], summary: str, task_name: str) -> Task:
    def body(c, stack=None, jobs=None, python=None, ref=None, force=False, dry_run=False, explain=False,
             no_checks=False, verbose=False, workdir=None, set_=None, offline=False):
        from rebuilt.build import builder

        extra = {"offline": True} if offline else {}
        if ref:
            from rebuilt.errors import ConfigError

            if names == ["stack"]:
                raise ConfigError("--ref does not apply to build.stack: each component's ref comes from the stack",
                                  hint="use --set <recipe>.ref=REF for one component")
            from rebuilt.core import recipes

            owner = recipes.get(names[0]).source
            if owner is None:
                raise ConfigError(f"--ref: {names[0]} has no source checkout (its recipe installs packages), "
                                  f"so there is no ref to build")
            extra[f"{owner.from_ or names[0]}.ref"] = ref
        settings = resolve(stack=stack, jobs=jobs, python=python, workdir=workdir, set_=set_, **extra)
        checks = settings["checks"] and not no_checks
        builder.build(settings, names, builder.Options(dry_run=dry_run, force=force, explain=explain,
                                                       checks=checks, verbose=verbose or settings["verbose"]))

    body.__doc__ = summary
    body.__name__ = task_name.replace("-", "_")
    help_ = dict(BUILD_HELP)
    if names == ["stack"]:
        help_["ref"] = "not used by build.stack: each component's ref comes from the stack (use --set <recipe>.ref=...)"
    return Task(entry(body), name=task_name, help=help_, iterable=["set_"])


ns = Collection("build")
for _name in _catalog.recipe_names():  # names and summaries only: the recipes are parsed when a task runs
    ns.add_task(_make([_name], _catalog.summary(_name), _name))
ns.add_task(_make(["stack"], "Build every component of the stack in dependency order.", "stack"))
