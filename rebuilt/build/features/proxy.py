"""The proxy for network steps, switched on and off like the notes' set_proxy/unset_proxy.

URL and no-proxy list come from settings (``proxy.url``, ``proxy.no_proxy``); no host
is built in. ``inv proxy.on [--url URL]`` persists the state in
``<workdir>/state/proxy.json`` (mode 0600): whether it is on and a --url given then.
Credentials are never written there: a --url with a user or password is refused,
they belong in the settings (invoke.yaml or INVOKE_REBUILT_PROXY_URL). When on, only
steps that need the network get http_proxy/https_proxy/no_proxy (both cases); every
other step runs with them unset. ``proxy.insecure`` adds GIT_SSL_NO_VERIFY=1 to network
steps and a warning to every plan that uses it.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

from rebuilt.core import shape
from rebuilt.core.fs import atomic_path, read_json
from rebuilt.core.secret import Secret, public, redact, reveal
from rebuilt.errors import ConfigError

NAMES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")
NO_PROXY = ("no_proxy", "NO_PROXY")
INSECURE = "GIT_SSL_NO_VERIFY"
TIMEOUT_S = 3.0


def state_file(workdir: Path) -> Path:
    return Path(workdir) / "state" / "proxy.json"


STATE = shape.Obj({"on": shape.BOOL, "url": shape.opt(shape.STR)})


def read_state(workdir: Path) -> dict:
    """What ``proxy.on`` / ``proxy.off`` recorded (checked against ``STATE``); off when never set."""
    return read_json(state_file(workdir), STATE, missing={"on": False}, what="proxy state file",
                     hint="inv proxy.on or inv proxy.off writes it again")


def has_credentials(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return bool(parts.username or parts.password)


def _check_url(url: str, where: str) -> None:
    if isinstance(url, Secret):
        return  # proxy.url: checked when the settings were resolved (rebuilt/core/settings.py)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https", "socks5", "socks5h") or not parts.hostname:
        raise ConfigError(f"{where}: {redact(url)!r} is not a proxy URL",
                          hint="give scheme, host and port, e.g. http://proxy.example:3128")


def configured_url(settings) -> tuple[str, str]:
    """(URL, where it comes from) whether on or off: a --url given to proxy.on wins over proxy.url."""
    stored = read_state(settings.workdir()).get("url") or ""
    if stored:
        return stored, f"inv proxy.on --url ({state_file(settings.workdir())})"
    url = settings["proxy.url"] or ""
    return url, (f"proxy.url, {settings.source('proxy.url')}" if url else "")


def is_on(settings) -> bool:
    return bool(read_state(settings.workdir()).get("on"))


def url_of(settings) -> str | None:
    """The proxy URL when the proxy is on, else None."""
    if not is_on(settings):
        return None
    url, _ = configured_url(settings)
    if not url:
        raise ConfigError("the proxy is on but no URL is set (proxy.url is empty)",
                          hint="set rebuilt: {proxy: {url: http://host:port}} in invoke.yaml or "
                               "INVOKE_REBUILT_PROXY_URL, or inv proxy.on --url URL, or inv proxy.off")
    _check_url(url, "proxy URL")
    return url


def switch(settings, on: bool, url: str | None = None) -> dict:
    """Persist on/off. A --url without credentials is stored; one with credentials is refused."""
    if url:
        _check_url(url, "--url")
        if has_credentials(url):
            raise ConfigError("a proxy URL with credentials does not go on the command line or into state files",
                              hint="put it in invoke.yaml (rebuilt: {proxy: {url: ...}}) or export "
                                   "INVOKE_REBUILT_PROXY_URL, then run inv proxy.on without --url")
    if on and not url and not settings["proxy.url"]:
        raise ConfigError("proxy.url is not set", hint="inv proxy.on --url http://host:port, or set proxy.url")
    if not on and url:
        raise ConfigError("--url goes with proxy.on")
    state = {"on": on, **({"url": url} if on and url else {})}
    path = state_file(settings.workdir())
    with atomic_path(path, mode=0o600) as tmp:
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    return state


def env_for(settings) -> dict[str, str]:
    """What a network step gets when the proxy is on (empty when off)."""
    url = url_of(settings)
    if not url:
        return {}
    env = {n: url for n in NAMES}
    env.update({n: settings["proxy.no_proxy"] for n in NO_PROXY})
    if settings["proxy.insecure"]:
        env[INSECURE] = "1"
    return env


def proxy_env(settings, recipe, step, ctx, workdir, machine) -> dict:
    """Network steps get the proxy; when rebuilt's proxy is on, the others run without any proxy variables."""
    env = env_for(settings)
    if not env:
        return {}
    if step.network:
        return env
    return {n: None for n in (*NAMES, *NO_PROXY)}


def insecure_warning(settings, recipe, steps, ctx, workdir, machine) -> list[str]:
    if settings["proxy.insecure"] and url_of(settings) and any(s.network for s in steps):
        return [f"proxy.insecure is on: {recipe.name}'s network steps run with {INSECURE}=1 (TLS not verified)"]
    return []



def describe(settings) -> str:
    """One line for status: on/off, the URL (credentials redacted) and where it comes from."""
    url, source = configured_url(settings)
    shown = f"{redact(url)} (from {source})" if url else "(no URL: set proxy.url or use --url)"
    text = f"proxy {'on' if is_on(settings) else 'off'}: {shown}; no_proxy {settings['proxy.no_proxy'] or '(none)'}"
    if settings["proxy.insecure"]:
        text += f"; TLS verification OFF for network steps (proxy.insecure, {INSECURE}=1)"
    return text


def bypasses(url: str, no_proxy: str) -> bool:
    """Would a client skip the proxy for ``url`` (curl/requests rules: suffixes, IPs, CIDR, ``*``)?"""
    import requests.utils

    return bool(requests.utils.should_bypass_proxies(url, no_proxy=no_proxy or None))


def origin(url: str) -> str | None:
    """``https://user:pw@github.com:443/a/b.git`` -> ``https://github.com:443`` (no credentials);
    None for URLs that are not HTTP(S) (ssh, file, git@host:path)."""
    parts = urllib.parse.urlsplit(public(url))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def check_target(url: str) -> None:
    """A URL ``proxy.check --url`` can reach: http(s) with a host (else bad input, exit 2)."""
    try:
        parts = urllib.parse.urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a non-numeric port
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(f"--url {redact(url)!r}: not an http(s) URL", hint="e.g. https://github.com")


def reach(url: str, settings, timeout: float = TIMEOUT_S) -> tuple[bool, str]:
    """HEAD ``url`` the way a network step would: through rebuilt's proxy when on (unless no_proxy
    names the host), else with the caller's environment. (answered, what happened), all of it
    within ``timeout`` seconds (a proxy or server that drips bytes cannot hold it longer)."""
    from rebuilt.core import net

    proxy = url_of(settings)
    via = "directly"
    if proxy:
        if bypasses(url, settings["proxy.no_proxy"]):
            via, proxy = "directly (no_proxy)", None
        else:
            via = f"through {redact(proxy)}"
    else:
        proxy = net.env_proxy(url)
        via = f"through {redact(proxy)} (from the environment)" if proxy else via
    try:
        r = net.request("HEAD", url, deadline=timeout, proxy=reveal(proxy) if proxy else None,  # the connection's copy
                        verify=not settings["proxy.insecure"])
    except net.NetError as exc:
        if "407" in exc.reason:
            return False, f"the proxy wants credentials (HTTP 407) {via}"
        return False, f"no answer {via}: {redact(exc.reason)}"
    if r.status == 407:
        return False, f"the proxy wants credentials (HTTP 407) {via}"
    return True, f"HTTP {r.status} {via}"
