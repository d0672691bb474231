"""`inv src.fetch` and `inv src.status`: the checkouts in the work directory."""

from __future__ import annotations

from invoke import Collection, Exit, task

from rebuilt.cli.tasks._entry import entry
from rebuilt.cli.tasks.common import BUILD_HELP, resolve


@task(help={"recipe": "recipe whose source to fetch (default: every component of the stack with a source)",
            "stack": BUILD_HELP["stack"], "ref": BUILD_HELP["ref"], "workdir": BUILD_HELP["workdir"],
            "dry_run": BUILD_HELP["dry_run"], "verbose": BUILD_HELP["verbose"], "set_": BUILD_HELP["set_"]},
      iterable=["recipe", "set_"])
@entry
def fetch(c, recipe=None, stack=None, ref=None, workdir=None, dry_run=False, verbose=False, set_=None):
    """Check out sources at their pinned refs, with submodules and patches."""
    from rebuilt.build import fetching

    settings = resolve(stack=stack, workdir=workdir, set_=set_)
    fetching.fetch(settings, recipe or [], ref=ref, dry_run=dry_run, verbose=verbose)


@task(help={"stack": BUILD_HELP["stack"], "workdir": BUILD_HELP["workdir"], "set_": BUILD_HELP["set_"],
            "json": "print JSON instead of a table"}, iterable=["set_"])
@entry
def status(c, stack=None, workdir=None, json=False, set_=None):
    """Show each checkout's ref, commit, dirty state and applied patches."""
    from rebuilt.build import fetching

    fetching.status(resolve(stack=stack, workdir=workdir, set_=set_), as_json=json)


PATCH_HELP = {"recipe": "recipe whose checkout holds the edits (sgl-kernel's is sglang's)",
              "stack": BUILD_HELP["stack"], "workdir": BUILD_HELP["workdir"], "python": BUILD_HELP["python"],
              "set_": BUILD_HELP["set_"]}


@task(help={**PATCH_HELP, "name": "short name of the patch, e.g. fix-cuda13-include (numbered NNNN- in front)",
            "add": "a new file or folder of yours to put in the patch (repeatable; other untracked files, such as "
                   "build outputs, are left out)"},
      iterable=["set_", "add"])
@entry
def patch_new(c, recipe, name=None, add=None, stack=None, workdir=None, python=None, set_=None):
    """Turn your uncommitted edits of a checkout into the next numbered patch, then re-apply it cleanly."""
    from rebuilt.cli import patching as patch_tasks
    from rebuilt.errors import ConfigError

    if not name:
        raise ConfigError("src.patch-new needs --name, the patch's short name", hint=f"inv src.patch-new {recipe} "
                          "--name fix-cuda13-include")
    patch_tasks.new(resolve(stack=stack, workdir=workdir, python=python, set_=set_), recipe, name, add or [])


@task(help={**PATCH_HELP, "ref": "check against this tag, branch, commit or pr/NNNN (default: the pinned ref)"},
      iterable=["set_"])
@entry
def patch_check(c, recipe, ref=None, stack=None, workdir=None, python=None, set_=None):
    """Say which patches apply, which are already upstream, and which conflict (with the hunks)."""
    from rebuilt.cli import patching as patch_tasks

    code = patch_tasks.check(resolve(stack=stack, workdir=workdir, python=python, set_=set_), recipe, ref)
    if code:
        raise Exit(code=code)


ns = Collection("src", fetch, status, patch_new, patch_check)


# --- bundles for hosts without network (rebuilt/tools/bundle/, rebuilt/build/features/offline.py) -------------------------
BUNDLE_HELP = {"recipe": "recipe to bundle (repeatable; default: every component of the stack)",
               "output": "the bundle file to write (a tar; FILE.index.json beside it makes the next one incremental)",
               "full": "write everything, even what FILE.index.json says an earlier bundle carried",
               "dry_run": "list what would be fetched and estimate sizes; fetch nothing",
               "stack": BUILD_HELP["stack"], "workdir": BUILD_HELP["workdir"], "python": BUILD_HELP["python"],
               "set_": BUILD_HELP["set_"], "verbose": BUILD_HELP["verbose"]}


@task(help=BUNDLE_HELP, iterable=["recipe", "set_"])
@entry
def bundle(c, recipe=None, output=None, full=False, dry_run=False, stack=None, workdir=None, python=None,
           set_=None, verbose=False):
    """Write one file with every checkout, submodule, CMake FetchContent dependency and wheel of the plan."""
    from pathlib import Path

    from rebuilt.core import runner
    from rebuilt.errors import ConfigError

    settings = resolve(stack=stack, workdir=workdir, python=python, set_=set_)
    names = list(recipe or []) or ["stack"]
    if dry_run:
        from rebuilt.tools.bundle import estimate

        estimate.estimate(settings, names, output=Path(output) if output else None)
        return
    if not output:
        raise ConfigError("src.bundle needs -o/--output FILE", hint="inv src.bundle --stack S -o stack.bundle.tar")
    from rebuilt.tools.bundle import make

    make.bundle(settings, names, Path(output), full=full, console=runner.Console(verbose=verbose))


@task(help={"file": "a bundle written by inv src.bundle", "stack": BUILD_HELP["stack"],
            "workdir": BUILD_HELP["workdir"], "python": BUILD_HELP["python"], "set_": BUILD_HELP["set_"]},
      iterable=["set_"])
@entry
def unbundle(c, file, stack=None, workdir=None, python=None, set_=None):
    """Verify a bundle and unpack it into <workdir>/offline, for builds with --offline."""
    from rebuilt.tools.bundle import unpack

    settings = resolve(stack=stack, workdir=workdir, python=python, set_=set_)
    unpack.unbundle(settings.workdir(), file)


ns.add_task(bundle)
ns.add_task(unbundle)
