"""The proxy for network steps, switched on and off like the notes' set_proxy/unset_proxy.

URL and no-proxy list come from settings (``proxy.url``, ``proxy.no_proxy``); no host
is built in. ``inv proxy.on`` persists the state in ``<workdir>/state/proxy.json``
(without credentials: they stay in your settings). When on, only steps that need
the network get http_proxy/https_proxy/no_proxy (both cases); every other step
runs without them. ``proxy.insecure`` adds GIT_SSL_NO_VERIFY=1 with a warning.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

from rebuilt import features
from rebuilt.errors import ConfigError
from rebuilt.util.fs import write_json
from rebuilt.util.text import redact

NAMES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")
NO_PROXY = ("no_proxy", "NO_PROXY")


def state_file(workdir: Path) -> Path:
    return Path(workdir) / "state" / "proxy.json"


def read_state(workdir: Path) -> dict:
    try:
        return json.loads(state_file(workdir).read_text())
    except (OSError, ValueError):
        return {"on": False}


def has_credentials(url: str) -> bool:
    return bool(urllib.parse.urlparse(url).password or urllib.parse.urlparse(url).username)


def url_of(settings) -> str | None:
    """The proxy URL when the proxy is on (settings' URL; credentials live only there)."""
    st = read_state(settings.workdir())
    if not st.get("on"):
        return None
    url = settings["proxy.url"] or st.get("url", "")
    if not url:
        raise ConfigError("the proxy is on but proxy.url is empty",
                          hint="set rebuilt: {proxy: {url: http://host:port}} in invoke.yaml or INVOKE_REBUILT_PROXY_URL")
    return url


def switch(settings, on: bool, url: str | None = None) -> dict:
    """Persist on/off; a --url without credentials may be stored, one with credentials is refused."""
    if url and has_credentials(url):
        raise ConfigError("a proxy URL with credentials does not go on the command line or into state files",
                          hint="put it in invoke.yaml (rebuilt: {proxy: {url: ...}}) or INVOKE_REBUILT_PROXY_URL")
    state = {"on": on}
    if on and url:
        state["url"] = url
    elif on and not settings["proxy.url"]:
        raise ConfigError("proxy.url is not set", hint="inv proxy.on --url http://host:port, or set proxy.url")
    write_json(state_file(settings.workdir()), state)
    return state


def env_for(settings) -> dict[str, str]:
    url = url_of(settings)
    if not url:
        return {}
    env = {n: url for n in NAMES}
    env.update({n: settings["proxy.no_proxy"] for n in NO_PROXY})
    if settings["proxy.insecure"]:
        env["GIT_SSL_NO_VERIFY"] = "1"
    return env


def requests_proxies(settings) -> dict | None:
    url = url_of(settings)
    return {"http": url, "https": url} if url else None


@features.feature(order=30)
def proxy_env(settings, recipe, step, ctx, workdir, machine) -> dict:
    env = env_for(settings)
    if not env:
        return {}
    if step.network:
        return env
    return {n: None for n in (*NAMES, *NO_PROXY)}  # a proxy is for network steps only


def _insecure_warning(settings, recipe, steps, ctx, workdir, machine) -> list[str]:
    if settings["proxy.insecure"] and url_of(settings):
        return ["proxy.insecure is on: network steps run with GIT_SSL_NO_VERIFY=1 (TLS not verified)"]
    return []


features.WARNINGS.append(_insecure_warning)


def describe(settings) -> str:
    st = read_state(settings.workdir())
    url = settings["proxy.url"] or st.get("url", "")
    shown = redact(url) if url else "(proxy.url not set)"
    return (f"proxy {'on' if st.get('on') else 'off'}: {shown}; no_proxy {settings['proxy.no_proxy']}"
            + ("; TLS verification OFF (proxy.insecure)" if settings["proxy.insecure"] else ""))
