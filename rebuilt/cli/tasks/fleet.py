"""`inv fleet.*`: rebuilt's commands on many hosts at once, through SSH (docs/FLEET.md)."""

from __future__ import annotations

from invoke import Collection, task

from rebuilt.cli.tasks._entry import entry
from rebuilt.cli.tasks.common import BUILD_HELP, resolve

HOSTS_HELP = ("hosts, comma separated: inventory names (fleet.hosts), @group (fleet.groups), slurm (this "
              "allocation's nodes) or SSH destinations ([user@]host[:port], a ~/.ssh/config alias)")


def _hosts(settings, hosts):
    from rebuilt.tools.fleet import inventory

    return inventory.select(settings, hosts)


@task(iterable=["set_"], help={
    "hosts": HOSTS_HELP,
    "stack": BUILD_HELP["stack"],
    "recipe": "check for these recipes only (comma separated); default: every component of the stack",
    "offline": "as a build with --offline sees it on each host (no network probes)",
    "json": "print every host's rows as JSON (status, message, rows, the checks in which it differs)",
    "force": "run every host, also those that finished in an interrupted earlier run of this command",
    "workdir": "local work directory (each host's results under fleet/<run-id>/<host>/); default .rebuilt",
    "set_": BUILD_HELP["set_"],
})
@entry
def doctor(c, hosts=None, stack=None, recipe=None, offline=False, json=False, force=False, workdir=None, set_=None):
    """The doctor's checks on every host in parallel: one table, the host that differs marked."""
    from rebuilt.errors import CheckFailed
    from rebuilt.tools.fleet import doctor as fleet_doctor

    settings = resolve(stack=stack, workdir=workdir, set_=set_)
    argv = [*(["--stack", stack] if stack else []), *(["--recipe", recipe] if recipe else []),
            *(["--offline"] if offline else [])]
    if fleet_doctor.main(settings, _hosts(settings, hosts), argv, force=force, as_json=json) == 3:
        raise CheckFailed("a host failed a check (the list above says which and what to do)")


@task(iterable=["set_"], help={
    "hosts": HOSTS_HELP,
    "stack": BUILD_HELP["stack"],
    "recipe": "components to build and ship (comma separated); default: every component of the stack",
    "no_build": "ship what the last build of each component left in the wheelhouse; build nothing",
    "fail_fast": "stop every host as soon as one fails (default: the others finish)",
    "force": "run every host, also those that finished in an interrupted earlier run of this command",
    "workdir": "local work directory (builds, wheels; each host's log under fleet/<run-id>/<host>/)",
    "set_": BUILD_HELP["set_"],
})
@entry
def build(c, hosts=None, stack=None, recipe=None, no_build=False, fail_fast=False, force=False, workdir=None,
          set_=None):
    """Build once here, install and verify on every host."""
    from rebuilt.cli.tasks.doctor import _names
    from rebuilt.tools.fleet import build as fleet_build

    settings = resolve(stack=stack, workdir=workdir, set_=set_)
    targets = _hosts(settings, hosts)
    fleet_build.main(settings, targets, _names(settings, recipe), build_first=not no_build, fail_fast=fail_fast,
                     force=force)


ns = Collection(doctor, build)
