"""`inv src.fetch` and `inv src.status`: the checkouts in the work directory."""

from __future__ import annotations

from invoke import Collection, task

from rebuilt.tasks._entry import entry
from rebuilt.tasks.common import BUILD_HELP, resolve


@task(help={"recipe": "recipe whose source to fetch (default: every component of the stack with a source)",
            "stack": BUILD_HELP["stack"], "ref": BUILD_HELP["ref"], "workdir": BUILD_HELP["workdir"],
            "dry_run": BUILD_HELP["dry_run"], "verbose": BUILD_HELP["verbose"], "set_": BUILD_HELP["set_"]},
      iterable=["recipe", "set_"])
@entry
def fetch(c, recipe=None, stack=None, ref=None, workdir=None, dry_run=False, verbose=False, set_=None):
    """Check out sources at their pinned refs, with submodules and patches."""
    from rebuilt import fetching

    settings = resolve(stack=stack, workdir=workdir, set_=set_)
    fetching.fetch(settings, recipe or [], ref=ref, dry_run=dry_run, verbose=verbose)


@task(help={"stack": BUILD_HELP["stack"], "workdir": BUILD_HELP["workdir"],
            "json": "print JSON instead of a table"})
@entry
def status(c, stack=None, workdir=None, json=False):
    """Show each checkout's ref, commit, dirty state and applied patches."""
    from rebuilt import fetching

    fetching.status(resolve(stack=stack, workdir=workdir), as_json=json)


ns = Collection("src", fetch, status)
