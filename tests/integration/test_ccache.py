"""ccache through the real build machinery: hits on a second build, from another checkout path,
and from a Redis remote into a fresh local cache; compilers named by an absolute path (CXX) and the
host-compiler shim cached too. Real ccache, real g++, real redis-server on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rebuilt.build.features import ccache
from tests.gitrepo import GIT_ENV
from tests.integration.test_fixture_builds import inv, repo_of

ROOT = Path(__file__).resolve().parents[2]
RECIPES = f"{ROOT / 'tests' / 'fixtures' / 'recipes'}{os.pathsep}{ROOT / 'recipes'}"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not shutil.which("ccache"), reason="needs ccache (.ci/run)")]
needs_redis = pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server (.ci/run)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis(tmp_path):
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


def build(repo, wd, cache, *extra, env=None):
    r = inv("build.ext-light", "--workdir", str(wd), "--no-checks", "--force", "--jobs", "2",
            "--set", f"ext-light.url={repo}", "--set", "ccache.enabled=true", "--set", f"ccache.dir={cache}", *extra,
            env={"REBUILT_RECIPES_DIR": RECIPES, **(env or {})})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    last = ccache.last(wd)
    return ccache.hit_rate(last["stats"]), r.stdout


def test_second_build_and_second_checkout_hit(tmp_path):
    repo = repo_of(tmp_path, "deepep_like", "ext_light", "v0.1.0")
    cache = tmp_path / "cache"
    (hits, misses, _), out = build(repo, tmp_path / "wd1", cache)
    assert misses >= 1 and hits == 0 and "ccache 0 hits" in out
    (hits, misses, rate), _ = build(repo, tmp_path / "wd1", cache)
    assert misses == 0 and rate == 1.0
    (hits, misses, rate), _ = build(repo, tmp_path / "elsewhere" / "wd2", cache)  # another checkout path
    assert rate == 1.0, (hits, misses)
    stats = inv("cache.stats", "--workdir", str(tmp_path / "wd1"), "--set", "ccache.enabled=true",
                "--set", f"ccache.dir={cache}")
    assert "hit rate" in stats.stdout and stats.returncode == 0


@needs_redis
def test_fresh_local_cache_hits_from_redis(tmp_path, redis):
    repo = repo_of(tmp_path, "deepep_like", "ext_light", "v0.1.0")
    build(repo, tmp_path / "wd1", tmp_path / "cache1", "--set", f"ccache.remote={redis}")
    (hits, misses, rate), out = build(repo, tmp_path / "wd2", tmp_path / "cache2", "--set", f"ccache.remote={redis}")
    assert rate == 1.0 and misses == 0, out
    assert "from remote storage" in out and ccache.last(tmp_path / "wd2")["stats"]["remote_storage_hit"] >= 1


def counting_compilers(folder: Path, log: Path, suffix: str = "") -> Path:
    """gcc/g++ at an absolute path that write one line per compile (-c) to ``log``, then run the real
    compiler by its absolute path (never through PATH, where the masquerade folder is)."""
    folder.mkdir(parents=True)
    for name, real in (("gcc", shutil.which("gcc")), ("g++", shutil.which("g++"))):
        path = folder / f"{name}{suffix}"
        path.write_text(f'#!/bin/sh\ncase " $* " in *" -c "*) echo "$@" >> {log};; esac\nexec {real} "$@"\n')
        path.chmod(0o755)
    return folder


def compiles(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_cxx_given_as_an_absolute_path_is_cached_from_another_workdir(tmp_path):
    """torch's BuildExtension writes `cxx = $CXX` into its ninja file: an absolute CXX bypasses the
    masquerade folder, so rebuilt points CXX at a wrapper that runs ccache with it."""
    repo = repo_of(tmp_path, "deepep_like", "ext_light", "v0.1.0")
    log = tmp_path / "compiles.log"
    cxx = counting_compilers(tmp_path / "opt" / "gcc" / "bin", log) / "g++"
    cache = tmp_path / "cache"
    (hits, misses, _), out = build(repo, tmp_path / "wd1", cache, env={"CXX": str(cxx)})
    assert compiles(log) >= 1 and misses >= 1 and hits == 0, out  # the host compile went through ccache
    first = compiles(log)
    (hits, misses, rate), out = build(repo, tmp_path / "elsewhere" / "wd2", cache, env={"CXX": str(cxx)})
    assert rate == 1.0 and misses == 0, out
    assert compiles(log) == first  # served by ccache: the compiler did not run again
    wrapper = tmp_path / "elsewhere" / "wd2" / "state" / "ccache-bin" / "abs" / str(cxx).lstrip("/")
    assert wrapper.read_text() == (tmp_path / "wd1" / "state" / "ccache-bin" / "abs" / str(cxx).lstrip("/")).read_text()


def test_ccache_runs_the_shims_compiler_and_caches_it(tmp_path, monkeypatch):
    """ccache first, then the shim: `c++` on PATH is ccache (the masquerade folder comes first), which
    runs the next `c++` on PATH, the shim's link to the stack's compiler."""
    repo = repo_of(tmp_path, "deepep_like", "ext_light", "v0.1.0")
    log = tmp_path / "compiles.log"
    host = counting_compilers(tmp_path / "toolchain" / "bin", log, suffix="-12") / "gcc-12"
    cache = tmp_path / "cache"
    monkeypatch.delenv("CXX", raising=False)  # by name, through PATH
    monkeypatch.delenv("CC", raising=False)
    (hits, misses, _), out = build(repo, tmp_path / "wd1", cache, "--set", f"host_compiler={host}")
    assert compiles(log) >= 1, out  # the stack's compiler (the shim's) did the compile
    assert misses >= 1 and hits == 0, out  # through ccache
    first = compiles(log)
    (hits, misses, rate), out = build(repo, tmp_path / "elsewhere" / "wd2", cache, "--set", f"host_compiler={host}")
    assert rate == 1.0 and misses == 0 and compiles(log) == first, out


DRIVER = """
import sys
from rebuilt.build import builder
from rebuilt.build.features import FEATURES
from rebuilt.core import settings
by = {f.name: f for f in FEATURES}
s = settings.resolve({"workdir": sys.argv[2], "jobs": 2}, assignments=settings.parse_assignments(sys.argv[3:]))
builder.build(s, ["ext-light"], builder.Options(force=True, checks=False),
              features=tuple(by[n] for n in sys.argv[1].split(",")))
"""


def test_the_other_order_shim_first_would_cache_nothing(tmp_path, monkeypatch):
    """Why ccache comes first in the tuple: with the shim's folder in front, `c++` is the stack's compiler
    itself and no compile reaches ccache (a real build through builder.build with the order swapped)."""
    repo = repo_of(tmp_path, "deepep_like", "ext_light", "v0.1.0")
    log = tmp_path / "compiles.log"
    host = counting_compilers(tmp_path / "toolchain" / "bin", log, suffix="-12") / "gcc-12"
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.delenv("CC", raising=False)
    env = {**os.environ, **GIT_ENV, "REBUILT_RECIPES_DIR": RECIPES, "PIP_NO_INDEX": "1",
           "INVOKE_REBUILT_AUTO_BACKUP": "false"}
    env.pop("PIP_CONSTRAINT", None)
    swapped = "guard,stamps,ccache,shim,proxy,offline"
    for wd in (tmp_path / "wd1", tmp_path / "elsewhere" / "wd2"):
        r = subprocess.run([sys.executable, "-c", DRIVER, swapped, str(wd), f"ext-light.url={repo}",
                            "ccache.enabled=true", f"ccache.dir={tmp_path / 'cache'}", f"host_compiler={host}"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        hits, misses, _ = ccache.hit_rate(ccache.last(wd)["stats"])
        assert hits == 0 and misses == 0, r.stdout  # nothing went through ccache
    assert compiles(log) >= 2  # the stack's compiler compiled in both work dirs
