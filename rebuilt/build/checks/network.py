"""Checks that reach the network: the proxy state, and whether each source host answers
(HTTP HEAD with a short time-out, through the proxy when it is on). Before a build (``probe_network``
off) the probes are left out. With the ``offline`` setting on (``--offline``) the unpacked bundle is
checked instead (``bundle_state``) and nothing reaches the network."""

from __future__ import annotations

import socket
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

from rebuilt.build.checks.model import Check, Context
from rebuilt.build.features import offline, proxy
from rebuilt.core import recipes
from rebuilt.core.secret import public, redact
from rebuilt.errors import RebuiltError


def source_urls(settings, names: list[str]) -> list[str]:
    """The checkout URL of each recipe (its owner's, for recipes sharing a checkout), in order, once each."""
    urls: list[str] = []
    for name in names:
        r = recipes.get(name)
        if not r.source:
            continue
        owner = recipes.get(r.source.from_) if r.source.from_ else r
        url = settings.get(f"{owner.name}.url") or ""
        if url and url not in urls:
            urls.append(url)
    return urls


def hosts(settings, names: list[str]) -> list[str]:
    """``scheme://host[:port]`` of every HTTP(S) source, without credentials."""
    return list(dict.fromkeys(o for o in (proxy.origin(u) for u in source_urls(settings, names)) if o))


def bundle_state(ctx: Context) -> list[Check]:
    """Offline (the ``offline`` setting): what the unpacked bundle holds for these recipes, instead of hosts."""
    workdir = ctx.settings.workdir()
    if not offline.index_path(workdir).exists():
        return [Check("bundle", "fail", f"offline, and no bundle is unpacked in {offline.root(workdir)}",
                      "inv src.unbundle FILE (made by inv src.bundle on a connected host)")]
    index = offline.read_index(workdir)
    rows = [Check("bundle", "ok", f"{len(index['repos'])} repositories, {len(index['deps'])} CMake dependencies, "
                  f"{len(list((offline.root(workdir) / 'wheels').glob('*.whl')))} wheels in {offline.root(workdir)}")]
    dirs = {ctx.settings.get(f"{o.name}.url") or "": o.source.dir for o in
            (recipes.get(recipes.get(n).source.from_ or n) for n in ctx.recipes if recipes.get(n).source)}
    for url in source_urls(ctx.settings, ctx.recipes):  # bundled under this URL, or for this checkout
        known = any(v in index["repos"] for v in offline.url_variants(url)) or dirs.get(url) in index.get(
            "components", {})
        rows.append(Check(f"bundle {redact(url)}", "ok" if known else "fail",
                          "in the bundle" if known else "not in the unpacked bundle",
                          "" if known else "bundle it on a connected host (inv src.bundle), then inv src.unbundle"))
    gone = [n for n, d in index["deps"].items() if not (offline.root(workdir) / d["dir"]).is_dir()]
    if gone:
        rows.append(Check("bundle deps", "fail", f"CMake dependency folders missing: {', '.join(gone)}",
                          "inv src.unbundle FILE again"))
    return rows


def proxy_state(ctx: Context) -> list[Check]:
    if offline.enabled(ctx.settings):
        return bundle_state(ctx)
    try:
        url = proxy.url_of(ctx.settings)
    except RebuiltError as exc:
        return [Check("proxy", "fail", str(exc), exc.hint or "")]
    text = proxy.describe(ctx.settings)
    if ctx.settings["proxy.insecure"] and url:
        return [Check("proxy", "warn", text, "TLS is not verified for network steps: unset proxy.insecure "
                      "when the proxy does not intercept TLS")]
    if not url or not ctx.probe_network:
        return [Check("proxy", "ok", text)]
    parts = urllib.parse.urlsplit(public(url))
    port = parts.port or (443 if parts.scheme == "https" else 1080 if parts.scheme.startswith("socks") else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=proxy.TIMEOUT_S).close()
    except OSError as exc:
        return [Check("proxy", "fail", f"{text}; nothing answers at {parts.hostname}:{port} ({exc.strerror or exc})",
                      "check proxy.url, or inv proxy.off")]
    return [Check("proxy", "ok", text)]


def source_hosts(ctx: Context) -> list[Check]:
    if not ctx.probe_network or offline.enabled(ctx.settings):  # offline: bundle rows (proxy_state) instead
        return []
    targets = hosts(ctx.settings, ctx.recipes)
    try:
        proxy.url_of(ctx.settings)
    except RebuiltError:
        return []  # proxy_state says why
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda h: proxy.reach(h, ctx.settings), targets))
    rows = []
    for host, (ok, detail) in zip(targets, answers):
        rows.append(Check(f"reach {redact(host)}", "ok" if ok else "warn", detail,
                          "" if ok else "inv proxy.on (with proxy.url set), a mirror URL (--set <recipe>.url=...), "
                                       "or check the network; --offline skips this"))
    return rows
