"""Serving tasks: start a profile's roles in the background, their status and logs, a smoke request, stop."""

from __future__ import annotations

import sys

from invoke import Collection, task

from rebuilt.cli.tasks._entry import entry
from rebuilt.core.flags import number

H = {
    "profile": "serving profile: a name in recipes/serve/ or a path to a .toml (default: the one started last "
               "in the work directory, else setting serve.profile)",
    "workdir": "work directory holding serve/<profile>/ (state, logs); default .rebuilt",
    "set_": "override any setting: --set KEY=VALUE (repeatable), e.g. --set serve.model_path=/models/X",
    "stack": "stack whose settings apply (recipes/stacks/<name>.toml); default from settings",
}


def _settings(workdir, set_, stack):
    from rebuilt.cli.tasks.common import resolve

    return resolve(workdir=workdir, set_=set_, stack=stack)


def _red(s):
    from rebuilt.core.secret import from_settings

    return from_settings((k, v.value) for k, v in s.items())


def _name(profile, s) -> str:
    """--profile, else the profile started last in this work directory, else setting serve.profile."""
    from rebuilt.tools.serve import state

    return profile or state.last_started(s.workdir()) or s["serve.profile"]


def _echo(red):
    return lambda text: print(red(text), flush=True)


@task(iterable=["set_"], positional=["profile"], help={
    **H, "role": "only this role (prefill, decode, router, server): one role per host",
    "dry_run": "print every role's environment (secrets redacted) and command; start nothing",
    "python": "interpreter whose sglang runs (default: setting python, else the environment nox -s build made, "
              "else the active virtual or conda environment, else python3 on PATH)",
    "timeout": "seconds to wait for every role to answer its health endpoints (default: setting serve.timeout)",
    "hosts": "start roles on other hosts: ROLE=HOST,... (HOST: a fleet.hosts name or SSH destination), e.g. "
             "prefill=node1,decode=node2; a role not named runs here; status/logs/smoke/down then act on every host",
})
@entry
def up(c, profile=None, role=None, dry_run=False, python=None, timeout=None, workdir=None, set_=None, stack=None,
       hosts=None):
    """Start a serving profile's roles in the background and wait until each answers its health checks."""
    from rebuilt.tools.serve import lifecycle

    s = _settings(workdir, set_, stack)
    red = _red(s)
    if hosts:  # docs/FLEET.md
        from rebuilt.cli.tasks.fleet import up_on_hosts

        return up_on_hosts(s, _name(profile, s), hosts, echo=_echo(red), conflicting=(
            (role, "--role"), (dry_run, "--dry-run"), (python, "--python"), (timeout, "--timeout")))
    lifecycle.up(s, _name(profile, s), role=role, python=python, dry_run=dry_run,
                 timeout=number(timeout, "--timeout", kind=float, minimum=0) if timeout is not None else None, echo=_echo(red))


@task(iterable=["set_"], help=H)
@entry
def status(c, profile=None, workdir=None, set_=None, stack=None):
    """Show each role's pid, port, health and uptime (exit 3 when one is down or unhealthy)."""
    from rebuilt.errors import CheckFailed
    from rebuilt.tools.serve import watch

    s = _settings(workdir, set_, stack)
    if _placed(s, profile):  # started with --hosts: every host of it
        return _fleet().act_on_hosts(s, _name(profile, s), "serve.status", [], "a role is not running or not "
                                     "healthy", echo=_echo(_red(s)))
    if not watch.status(s, _name(profile, s), echo=_echo(_red(s))):
        raise CheckFailed("a role is not running or not healthy")


@task(iterable=["set_"], help={**H, "role": "only this role's log (default: every role's)",
                               "follow": "keep printing new lines until the roles exit (Ctrl-C stops)",
                               "lines": "how many last lines to show first (default 50)"})
@entry
def logs(c, role=None, profile=None, follow=False, lines=50, workdir=None, set_=None, stack=None):
    """Print the last lines of each role's log (secrets masked); -f follows them."""
    from rebuilt.tools.serve import watch

    s = _settings(workdir, set_, stack)
    red = _red(s)
    if _placed(s, profile):  # started with --hosts: every host of it
        return _fleet().act_on_hosts(s, _name(profile, s), "serve.logs", ["--lines", str(lines)],
                                     "a role's log could not be read", role=role, follow=follow, echo=_echo(red))
    try:
        watch.logs(s, _name(profile, s), role=role, lines=number(lines, "--lines", minimum=0), follow=follow,
                   echo=_echo(red), red=red)
    except BrokenPipeError:  # `inv serve.logs | head`
        sys.stdout = None


@task(iterable=["set_"], help={
    **H, "role": "ask this role instead of the profile's entry (the router or the single server)",
    "url": "ask this base URL instead (http://host:port)", "prompt": "the user message",
    "max_tokens": "max_tokens of the request (default 1: does it answer at all)",
    "timeout": "seconds for the whole command, retries included, however slowly the server sends (default 60)",
    "retries": "retries of 502/503/504 while the server warms up (default 10); a refused connection fails at once",
    "expect": "fail unless the answer contains this text (case-insensitive)",
})
@entry
def smoke(c, profile=None, role=None, url=None, prompt=None, max_tokens=1, timeout=60, retries=10, expect=None,
          workdir=None, set_=None, stack=None):
    """Send one chat completion (max_tokens 1); print the answer, time to first byte and total latency."""
    from rebuilt.tools.serve import health
    from rebuilt.tools.serve import smoke as smoke_mod

    if url is not None:
        _check_url(url)
    s = _settings(workdir, set_, stack)
    red = _red(s)
    if url is None and _placed(s, profile):  # started with --hosts: through the entry role's host
        return _fleet().smoke_on_hosts(s, _name(profile, s), role, echo=_echo(red), prompt=prompt,
                                       max_tokens=max_tokens, timeout=timeout, retries=retries, expect=expect)
    smoke_mod.run(s, _name(profile, s), role=role, url=url, prompt=prompt or health.PROMPT,
                  max_tokens=number(max_tokens, "--max-tokens", minimum=0),
                  timeout=number(timeout, "--timeout", kind=float, minimum=0),
                  retries=number(retries, "--retries", minimum=0), expect=expect,
                  red=red, echo=_echo(red))


def _check_url(url: str) -> None:
    """--url is bad input unless it is http(s)://host[:port][/path]."""
    from urllib.parse import urlsplit

    from rebuilt.errors import ConfigError

    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in url
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(f"--url {url!r} is not an http(s) URL", hint="e.g. --url http://127.0.0.1:30000")


@task(iterable=["set_"], help={**H, "role": "stop only this role"})
@entry
def down(c, profile=None, role=None, workdir=None, set_=None, stack=None):
    """Stop the roles in reverse start order: SIGINT, SIGTERM, then SIGKILL of each whole process group."""
    from rebuilt.tools.serve import lifecycle

    s = _settings(workdir, set_, stack)
    if _placed(s, profile):  # started with --hosts: every host of it, this one included
        from rebuilt.tools.fleet import serve as fleet_serve

        return fleet_serve.down(s, _name(profile, s), role=role, echo=_echo(_red(s)))
    lifecycle.down(s, _name(profile, s), role=role, echo=_echo(_red(s)))


def _fleet():
    from rebuilt.cli.tasks import fleet

    return fleet


def _placed(s, profile) -> bool:
    """Whether serve.up --hosts started the profile from this work dir (docs/FLEET.md)."""
    return _fleet().placed(s, _name(profile, s))


ns = Collection("serve")
for _t in (up, status, logs, smoke, down):
    ns.add_task(_t)
