"""`inv proxy.on|off|status|env|check`: the proxy for network steps (clones, installs, FetchContent)."""

from __future__ import annotations

from invoke import Collection, task

from rebuilt.cli.tasks._entry import entry
from rebuilt.cli.tasks.common import BUILD_HELP, resolve

H = {"workdir": BUILD_HELP["workdir"], "set_": BUILD_HELP["set_"]}


@task(help={"url": "proxy URL without credentials, e.g. http://proxy.example:3128 (a URL with a password "
                   "belongs in settings: proxy.url in invoke.yaml or INVOKE_REBUILT_PROXY_URL)", **H},
      iterable=["set_"])
@entry
def on(c, url=None, workdir=None, set_=None):
    """Use the proxy for network steps from now on."""
    from rebuilt.build.features import proxy

    settings = resolve(workdir=workdir, set_=set_)
    proxy.switch(settings, True, url)
    print(proxy.describe(settings))


@task(help=H, iterable=["set_"])
@entry
def off(c, workdir=None, set_=None):
    """Stop using the proxy for network steps."""
    from rebuilt.build.features import proxy

    settings = resolve(workdir=workdir, set_=set_)
    proxy.switch(settings, False)
    print(proxy.describe(settings))


@task(help=H, iterable=["set_"])
@entry
def status(c, workdir=None, set_=None):
    """Say whether the proxy is on, and which (redacted)."""
    from rebuilt.build.features import proxy

    print(proxy.describe(resolve(workdir=workdir, set_=set_)))


@task(help=H, iterable=["set_"])
@entry
def env(c, workdir=None, set_=None):
    """Print export/unset lines: eval "$(inv proxy.env)"."""
    import shlex

    from rebuilt.build.features import proxy
    from rebuilt.core.secret import reveal

    settings = resolve(workdir=workdir, set_=set_)
    values = proxy.env_for(settings)
    if values:  # the real URL, credentials included: this output is meant for eval, not for a log
        for k, v in values.items():
            print(f"export {k}={shlex.quote(reveal(v))}")  # for eval: the shell hands it to programs
    else:
        names = (*proxy.NAMES, *proxy.NO_PROXY) + ((proxy.INSECURE,) if settings["proxy.insecure"] else ())
        print("unset " + " ".join(names))


@task(help={"url": "a URL to reach (repeatable); default: the source host of each stack component",
            "stack": BUILD_HELP["stack"], **H}, iterable=["url", "set_"])
@entry
def check(c, url=None, stack=None, workdir=None, set_=None):
    """Reach URLs as network steps would (3 s time-out)."""
    from concurrent.futures import ThreadPoolExecutor

    from rebuilt.build.checks import network
    from rebuilt.build.features import proxy
    from rebuilt.core.secret import redact
    from rebuilt.errors import CheckFailed

    settings = resolve(stack=stack, workdir=workdir, set_=set_)
    for target in url or ():
        proxy.check_target(target)
    targets = list(url or network.hosts(settings, list(settings.stack.components)))
    print(proxy.describe(settings))
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda t: proxy.reach(t, settings), targets))
    for target, (ok, detail) in zip(targets, answers):
        print(f"{'ok  ' if ok else 'FAIL'}  {redact(target)}: {detail}")
    bad = sum(not ok for ok, _ in answers)
    if bad:
        raise CheckFailed(f"{bad} of {len(targets)} did not answer")


ns = Collection("proxy", on, off, status, env, check)
