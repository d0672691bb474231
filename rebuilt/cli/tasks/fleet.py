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
    if recipe:  # an unknown name is bad input here, before any host is contacted
        from rebuilt.core import recipes

        for name in recipe.split(","):
            recipes.get(name.strip())
    argv = [*(["--stack", stack] if stack else []), *(["--recipe", recipe] if recipe else []),
            *(["--offline"] if offline else [])]
    if fleet_doctor.main(settings, _hosts(settings, hosts), argv, force=force, as_json=json) == 3:
        raise CheckFailed("a host failed a check (the list above says which and what to do)")


@task(iterable=["set_"], help={
    "hosts": HOSTS_HELP,
    "stack": BUILD_HELP["stack"],
    "recipe": "components to build and ship (comma separated); default: every component of the stack",
    "no_build": "ship what the last build of each component left in the wheelhouse; build nothing",
    "build_on": "build on this host instead of here (an inventory name or SSH destination; 'first': the first "
                "of --hosts); its wheels, manifests and logs come back under fleet/<run-id>/<host>/",
    "bundle": "with --build-on: an inv src.bundle file for a build host without network (unbundled there, "
              "built --offline)",
    "fail_fast": "stop every host as soon as one fails (default: the others finish)",
    "force": "run every host, also those that finished in an interrupted earlier run of this command",
    "workdir": "local work directory (builds, wheels; each host's log under fleet/<run-id>/<host>/)",
    "set_": BUILD_HELP["set_"],
})
@entry
def build(c, hosts=None, stack=None, recipe=None, no_build=False, build_on=None, bundle=None, fail_fast=False,
          force=False, workdir=None, set_=None):
    """Build once, install and verify on every host."""
    from rebuilt.cli.tasks.doctor import _names
    from rebuilt.tools.fleet import build as fleet_build

    settings = resolve(stack=stack, workdir=workdir, set_=set_)
    targets = _hosts(settings, hosts)
    builder, bundle_file = _build_on(settings, targets, build_on, bundle, no_build)
    fleet_build.main(settings, targets, _names(settings, recipe), build_first=not no_build, fail_fast=fail_fast,
                     force=force, build_on=builder, bundle=bundle_file)


def _build_on(settings, targets, build_on, bundle, no_build):
    """--build-on HOST (or 'first') and --bundle FILE checked: (the build host or None, the bundle or None)."""
    from pathlib import Path

    from rebuilt.errors import ConfigError

    if bundle and not build_on:
        raise ConfigError("--bundle needs --build-on HOST: the bundle is unpacked and built on that host",
                          hint="the install hosts need no network: wheels are installed with pip --no-index")
    if build_on and no_build:
        raise ConfigError("--build-on and --no-build contradict each other", hint="leave one out")
    if not build_on:
        return None, None
    if bundle and not Path(bundle).is_file():
        raise ConfigError(f"--bundle {bundle}: no such file", hint="write one with inv src.bundle -o FILE")
    found = targets[:1] if build_on == "first" else _hosts(settings, build_on)
    if len(found) != 1:
        raise ConfigError(f"--build-on {build_on!r}: names {len(found)} hosts; the build runs on one")
    return found[0], Path(bundle).resolve() if bundle else None


SERVE_HELP = {
    "profile": "serving profile: a name in recipes/serve/ or a path to a .toml (the same on every host)",
    "workdir": "local work directory (which role runs where: fleet/serve/<profile>.json); default .rebuilt",
    "set_": BUILD_HELP["set_"],
}
PLACE_HELP = ("where each role runs: ROLE=HOST,... (HOST: an inventory name or SSH destination), e.g. "
              "prefill=node1,decode=node2; a role not named runs here (the router)")


@task(name="serve-up", iterable=["set_"], positional=["profile"], help={**SERVE_HELP, "hosts": PLACE_HELP})
@entry
def serve_up(c, profile, hosts=None, workdir=None, set_=None):
    """Start each role on its host until healthy."""
    up_on_hosts(resolve(workdir=workdir, set_=set_), profile, hosts)


def up_on_hosts(settings, profile, hosts, *, conflicting=(), echo=print):
    """serve.up PROFILE --hosts ROLE=HOST,...: each placed role on its host, the others here."""
    from rebuilt.errors import ConfigError
    from rebuilt.tools.fleet import serve as fleet_serve
    from rebuilt.tools.serve import profile as profile_mod

    if any(flag for flag, _ in conflicting):
        raise ConfigError(f"serve.up --hosts: {next(n for f, n in conflicting if f)} acts on this host only",
                          hint="leave it out with --hosts (each host's target interpreter runs its roles)")
    roles = list(profile_mod.load(profile).roles)
    fleet_serve.up(settings, profile, fleet_serve.placement(settings, hosts, roles), echo=echo)


def placed(settings, profile) -> bool:
    """Whether serve.up --hosts started the profile from this work dir (serve.* then act on every host)."""
    from rebuilt.tools.fleet import serve as fleet_serve

    return bool(profile) and fleet_serve.is_placed(settings, profile)


def act_on_hosts(settings, profile, what, extra, failure, role=None, follow=False, echo=print, **smoke_kwargs):
    """serve.status / serve.logs / serve.smoke of a profile placed on hosts, on every host (exit 3 on a failure)."""
    from rebuilt.errors import CheckFailed, ConfigError
    from rebuilt.tools.fleet import serve as fleet_serve

    if follow:
        raise ConfigError(f"serve.logs --follow: profile {profile} runs on several hosts (serve.up --hosts)",
                          hint="serve.logs --lines N shows every host's last lines; follow one on its host")
    if not fleet_serve.act(settings, profile, what, extra, role=role, echo=echo, **smoke_kwargs):
        raise CheckFailed(failure)


def smoke_on_hosts(settings, profile, role, *, echo, prompt, max_tokens, timeout, retries, expect):
    """serve.smoke of a profile placed on hosts: through its entry role (or --role), on that role's host."""
    from rebuilt.core.flags import number

    kw = {"max_tokens": number(max_tokens, "--max-tokens", minimum=0),
          "timeout": number(timeout, "--timeout", kind=float, minimum=0),
          "retries": number(retries, "--retries", minimum=0), "expect": expect, **({"prompt": prompt} if prompt else {})}
    argv = [f"--{k.replace('_', '-')}={v}" for k, v in kw.items() if v is not None]
    act_on_hosts(settings, profile, "serve.smoke", argv, "the smoke request failed", role=role, echo=echo, **kw)


@task(name="serve-status", iterable=["set_"], positional=["profile"], help=SERVE_HELP)
@entry
def serve_status(c, profile, workdir=None, set_=None):
    """Each role's health on its host (exit 3 if down)."""
    act_on_hosts(resolve(workdir=workdir, set_=set_), profile, "serve.status", [],
                 "a role is not running or not healthy")


@task(name="serve-logs", iterable=["set_"], positional=["profile"], help={
    **SERVE_HELP, "lines": "how many last lines of each role's log (default 50)"})
@entry
def serve_logs(c, profile, lines=50, workdir=None, set_=None):
    """The last lines of each role's log, on its host."""
    act_on_hosts(resolve(workdir=workdir, set_=set_), profile, "serve.logs", ["--lines", str(lines)],
                 "a role's log could not be read")


@task(name="serve-smoke", iterable=["set_"], positional=["profile"], help=SERVE_HELP)
@entry
def serve_smoke(c, profile, workdir=None, set_=None):
    """One chat completion through the entry role's host."""
    act_on_hosts(resolve(workdir=workdir, set_=set_), profile, "serve.smoke", [], "the smoke request failed")


@task(name="serve-down", iterable=["set_"], positional=["profile"], help=SERVE_HELP)
@entry
def serve_down(c, profile, workdir=None, set_=None):
    """Stop every role of the profile on every host."""
    from rebuilt.tools.fleet import serve as fleet_serve

    fleet_serve.down(resolve(workdir=workdir, set_=set_), profile)


ns = Collection(doctor, build, serve_up, serve_status, serve_logs, serve_smoke, serve_down)
