"""Builds that never touch the network: every step reads what ``inv src.unbundle`` unpacked.

With the setting ``offline`` on (``--offline``, ``--set offline=true``, ``INVOKE_REBUILT_OFFLINE=1``),
every step gets:
- git: ``url.<mirror>.insteadOf <url>`` for every repository of the bundle (checkouts, submodules,
  CMake dependencies) through ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n``, and
  ``GIT_ALLOW_PROTOCOL=file`` so a URL missing from the bundle fails at once instead of connecting;
- CMake: ``FETCHCONTENT_FULLY_DISCONNECTED=ON`` and ``FETCHCONTENT_SOURCE_DIR_<UPPERCASE NAME>`` for
  every dependency, in a toolchain file named by ``CMAKE_TOOLCHAIN_FILE`` (CMake >= 3.21 reads that
  environment variable, whatever wrapper runs CMake: vLLM's setup.py passes no CMAKE_ARGS through)
  and appended to ``CMAKE_ARGS`` where the step sets it (scikit-build-core reads it: sgl-kernel);
- pip and uv: ``PIP_NO_INDEX=1 PIP_FIND_LINKS=<wheelhouse>``, ``UV_OFFLINE=1 UV_NO_INDEX=1
  UV_FIND_LINKS=<wheelhouse>``;
- every proxy variable pointing to a closed local port, so any other client fails in milliseconds.
Before a step flagged ``network`` runs, a hook checks that the bundle holds its checkout and every
FetchContent dependency its CMake tree declares, and fails naming what is missing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from rebuilt.core import shape
from rebuilt.core.fs import read_json
from rebuilt.core.secret import public
from rebuilt.errors import StepFailed

CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens there, a connection is refused at once
PROXIES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


def enabled(settings) -> bool:
    """Is the ``offline`` setting on (``--offline``, ``--set offline=true``, ``INVOKE_REBUILT_OFFLINE=1``)?
    The one reading of it: every module that asks, asks here."""
    return bool(settings.get("offline"))


def root(workdir: Path | str) -> Path:
    return Path(workdir) / "offline"


def index_path(workdir: Path | str) -> Path:
    return root(workdir) / "index.json"


_TEXT = shape.nullable(shape.STR)
INDEX = shape.Obj({
    "repos": shape.opt(shape.MapOf(shape.Obj({"mirror": shape.STR, "commits": shape.ListOf(shape.STR)}))),
    "deps": shape.opt(shape.MapOf(shape.Obj({"dir": shape.STR, "url": shape.STR, "ref": _TEXT,
                                             "commit": shape.opt(_TEXT), "sha256": shape.opt(_TEXT)}))),
    "components": shape.opt(shape.MapOf(shape.STR)), "bundles": shape.opt(shape.ListOf(shape.MapOf(shape.ANY))),
})


def read_index(workdir: Path | str) -> dict:
    """What the unpacked bundles hold: {"repos": {url: {...}}, "deps": {name: {...}}, "bundles": [...]}.

    Empty before the first ``src.unbundle``; a damaged index (checked against ``INDEX``) is an error.
    """
    data = read_json(index_path(workdir), INDEX, missing={}, what="offline index",
                     hint="inv src.unbundle writes it: remove the offline folder and unbundle again")
    return {"repos": {}, "deps": {}, "bundles": [], **data}


def bare_url(url: str) -> str:
    """``url`` without credentials (they never go into a bundle, its manifest or the index)."""
    import urllib.parse

    url = public(url)  # a credential-bearing source setting (rebuilt.core.secret.Secret)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme and (parts.username or parts.password):
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        return urllib.parse.urlunsplit(parts._replace(netloc=host))
    return url


def url_variants(url: str) -> list[str]:
    """The spellings of one repository URL (with and without ``.git`` and a trailing slash)."""
    url = bare_url(url)
    base = url.rstrip("/")
    base = base[:-4] if base.endswith(".git") else base
    return list(dict.fromkeys([url, base, base + ".git"]))


def git_config(workdir: Path | str, index: dict | None = None, environ=None,
               aliases: dict[str, str] | None = None) -> dict[str, str]:
    """GIT_CONFIG_* env: every bundled URL rewritten to its local mirror, file transport allowed,
    appended after any GIT_CONFIG_COUNT entries the caller already has. ``aliases`` maps another URL
    to a bundled one (a checkout bundled from a mirror, built with the recipe's usual URL)."""
    index = read_index(workdir) if index is None else index
    environ = os.environ if environ is None else environ
    pairs = [("protocol.file.allow", "always")]
    repos = index.get("repos", {})
    for url, repo in sorted(repos.items()):
        mirror = str(root(workdir) / repo["mirror"])
        pairs += [(f"url.{mirror}.insteadOf", u) for u in url_variants(url)]
    for alias, url in sorted((aliases or {}).items()):
        if url in repos:
            pairs += [(f"url.{root(workdir) / repos[url]['mirror']}.insteadOf", u)
                      for u in dict.fromkeys([alias, *url_variants(alias)])]
    try:
        start = int(environ.get("GIT_CONFIG_COUNT") or 0)
    except ValueError:
        start = 0
    env = {"GIT_CONFIG_COUNT": str(start + len(pairs)), "GIT_ALLOW_PROTOCOL": "file"}
    for i, (key, value) in enumerate(pairs, start):
        env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
    return env


def toolchain_file(workdir: Path | str) -> Path:
    return root(workdir) / "fetchcontent.cmake"


def cmake_defines(workdir: Path | str, index: dict | None = None) -> dict[str, str]:
    index = read_index(workdir) if index is None else index
    out = {"FETCHCONTENT_FULLY_DISCONNECTED": "ON"}
    for name, dep in sorted(index.get("deps", {}).items()):
        out[f"FETCHCONTENT_SOURCE_DIR_{name.upper()}"] = str(root(workdir) / dep["dir"])
    return out


def toolchain_text(defines: dict[str, str]) -> str:
    lines = ["# Written by `inv src.unbundle`: FetchContent reads the unpacked bundle, never the network."]
    lines += [f'set({k} "{v}" CACHE STRING "rebuilt offline bundle" FORCE)' for k, v in defines.items()]
    return "\n".join(lines) + "\n"


def component_alias(workdir: Path | str, step, index: dict | None = None) -> dict[str, str]:
    """A fetch step whose URL the bundle does not know, for a recipe the bundle holds under another URL
    (bundled from a mirror or a fork): {step URL: bundled URL}."""
    if step.action != "fetch":
        return {}
    index, url = read_index(workdir) if index is None else index, step.args["url"]
    if _known(url, index.get("repos", {})):  # with credentials, git sees the URL as written: map that one
        bare = next(v for v in url_variants(url) if v in index["repos"])
        return {url: bare} if bare_url(url) != url else {}
    owner = Path(step.args["dest"]).name
    url = index.get("components", {}).get(owner)
    return {step.args["url"]: url} if url else {}


def env_for(workdir: Path | str, step_env: dict, environ=None, aliases=None,
            index: dict | None = None) -> dict[str, str | None]:
    """The env changes of one step in offline mode."""
    environ = os.environ if environ is None else environ
    index = read_index(workdir) if index is None else index
    wheels = str(root(workdir) / "wheels")
    env: dict[str, str | None] = {
        "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": wheels, "UV_OFFLINE": "1", "UV_NO_INDEX": "1",
        "UV_FIND_LINKS": wheels, "no_proxy": "", "NO_PROXY": "", "GIT_TERMINAL_PROMPT": "0",
        **{p: CLOSED for p in PROXIES}, **git_config(workdir, index, environ=environ, aliases=aliases),
    }
    defines = cmake_defines(workdir, index)
    if not environ.get("CMAKE_TOOLCHAIN_FILE"):
        env["CMAKE_TOOLCHAIN_FILE"] = str(toolchain_file(workdir))
    if "CMAKE_ARGS" in step_env or environ.get("CMAKE_ARGS"):
        base = step_env.get("CMAKE_ARGS") or environ.get("CMAKE_ARGS") or ""
        env["CMAKE_ARGS"] = " ".join([base.strip(), *(f"-D{k}={v}" for k, v in defines.items())]).strip()
    return env


def offline_env(settings, recipe, step, ctx, workdir, machine) -> dict:
    """With ``offline`` on, every step reads the bundle (git mirrors, FetchContent dirs, wheelhouse)."""
    if not enabled(settings):
        return {}
    index = read_index(workdir)  # once per step: every part of the env reads the same index
    return env_for(workdir, step.env, aliases=component_alias(workdir, step, index), index=index)


def missing_warning(settings, recipe, steps, ctx, workdir, machine) -> list[str]:
    if not enabled(settings):
        return []
    if not index_path(workdir).exists():
        return [f"offline is on but {index_path(workdir)} does not exist: run inv src.unbundle FILE first"]
    index = read_index(workdir)
    return [f"offline: {s.args['url']} is not in the unpacked bundle ({index_path(workdir)})"
            for s in steps if s.action == "fetch" and not _known(s.args["url"], index["repos"])
            and not component_alias(workdir, s, index)]



def _known(url: str, repos: dict) -> bool:
    return any(v in repos for v in url_variants(url))


def missing_for_step(workdir: Path, step) -> list[str]:
    """What a network step would need from the network that the unpacked bundle lacks."""
    index = read_index(workdir)
    missing = []
    if step.action == "fetch" and not _known(step.args["url"], index["repos"]) \
            and not component_alias(workdir, step, index):
        missing.append(f"the checkout {step.args['url']}")
    cmake_root = Path(step.cwd)
    if step.network and (cmake_root / "CMakeLists.txt").is_file():
        from rebuilt.build import fetchcontent

        for name, dep in fetchcontent.scan(cmake_root).deps.items():
            have = index["deps"].get(name)
            if not have or not (root(workdir) / have["dir"]).is_dir():
                missing.append(f"the CMake dependency {name} ({dep.git_repository or dep.url} "
                               f"{dep.git_tag}, {dep.where})")
    return missing


class Hook:
    """Fails a network step in seconds, naming what the bundle lacks (instead of a clone that hangs)."""

    def __init__(self, settings, workdir, console, opts, machine=None):
        self.on, self.workdir, self.console = enabled(settings), Path(workdir), console

    def before_step(self, step, env) -> None:
        if not self.on or not (step.network or step.action == "fetch"):
            return
        if not index_path(self.workdir).exists():
            raise StepFailed(f"step {step.title}: offline, and no bundle is unpacked in {root(self.workdir)}",
                             hint="inv src.unbundle FILE (a file made by inv src.bundle on a connected host)")
        missing = missing_for_step(self.workdir, step)
        if missing:
            raise StepFailed(f"step {step.title} needs the network, offline, for: " + "; ".join(missing),
                             hint="make a bundle that holds it (inv src.bundle on a connected host), "
                                  "then inv src.unbundle FILE")

SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def slug(url: str) -> str:
    """A file-system name for a repository URL: host_path plus a short hash (credentials dropped)."""
    import hashlib
    import urllib.parse

    url = public(url)
    parts = urllib.parse.urlsplit(url)
    tail = (parts.hostname or "") + parts.path if parts.scheme else url
    tail = SLUG.sub("_", tail.rstrip("/").removesuffix(".git")).strip("_")[-60:]
    return f"{tail}-{hashlib.sha256(url_variants(url)[1].encode()).hexdigest()[:8]}"
