"""`inv proxy.on|off|status|env|check`: the proxy for network steps (clones, installs, FetchContent)."""

from __future__ import annotations

from invoke import Collection, task

from rebuilt.tasks._entry import entry
from rebuilt.tasks.common import BUILD_HELP, resolve

H = {"workdir": BUILD_HELP["workdir"]}


@task(help={"url": "proxy URL without credentials (those belong in settings: proxy.url)", **H})
@entry
def on(c, url=None, workdir=None):
    """Use the proxy for the steps that need the network, from now on."""
    from rebuilt import proxy

    settings = resolve(workdir=workdir)
    proxy.switch(settings, True, url)
    print(proxy.describe(settings))


@task(help=H)
@entry
def off(c, workdir=None):
    """Stop using the proxy."""
    from rebuilt import proxy

    settings = resolve(workdir=workdir)
    proxy.switch(settings, False)
    print(proxy.describe(settings))


@task(help=H)
@entry
def status(c, workdir=None):
    """Say whether the proxy is on, and which (credentials redacted)."""
    from rebuilt import proxy

    print(proxy.describe(resolve(workdir=workdir)))


@task(help=H)
@entry
def env(c, workdir=None):
    """Print export/unset lines: eval "$(inv proxy.env)" in your shell."""
    import shlex

    from rebuilt import proxy

    values = proxy.env_for(resolve(workdir=workdir))
    if values:
        for k, v in values.items():
            print(f"export {k}={shlex.quote(v)}")
    else:
        print("unset " + " ".join((*proxy.NAMES, *proxy.NO_PROXY)))


@task(help={"url": "a URL to reach through the proxy (default: each source host of the stack)", **H})
@entry
def check(c, url=None, workdir=None):
    """Reach a URL (or the stack's source hosts) through the proxy, with a short time-out."""
    import requests

    from rebuilt import proxy
    from rebuilt.errors import CheckFailed

    settings = resolve(workdir=workdir)
    targets = [url] if url else sorted({f"https://{u.split('/')[2]}" for n in settings.stack.components
                                        if (u := settings.get(f"{n}.url") or "").startswith("http")})
    bad = 0
    for target in targets:
        try:
            r = requests.head(target, timeout=5, proxies=proxy.requests_proxies(settings), allow_redirects=False)
            print(f"ok    {target} -> HTTP {r.status_code}")
        except requests.RequestException as exc:
            bad += 1
            print(f"FAIL  {target}: {type(exc).__name__}")
    print(proxy.describe(settings))
    if bad:
        raise CheckFailed(f"{bad} of {len(targets)} hosts did not answer")


ns = Collection("proxy", on, off, status, env, check)
