"""ccache through the real build machinery: hits on a second build, from another checkout path,
and from a Redis remote into a fresh local cache. Real ccache, real redis-server on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from rebuilt.build.features import ccache
from tests.integration.test_fixture_builds import inv, repo_of

ROOT = Path(__file__).resolve().parents[2]
RECIPES = f"{ROOT / 'tests' / 'fixtures' / 'recipes'}{os.pathsep}{ROOT / 'recipes'}"
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not shutil.which("ccache") or not shutil.which("redis-server"),
                                 reason="needs ccache and redis-server (installed by .ci/run)")]


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


def build(repo, wd, cache, *extra):
    r = inv("build.ext-light", "--workdir", str(wd), "--no-checks", "--force", "--jobs", "2",
            "--set", f"ext-light.url={repo}", "--set", "ccache.enabled=true", "--set", f"ccache.dir={cache}", *extra,
            env={"REBUILT_RECIPES_DIR": RECIPES})
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


def test_fresh_local_cache_hits_from_redis(tmp_path, redis):
    repo = repo_of(tmp_path, "deepep_like", "ext_light", "v0.1.0")
    build(repo, tmp_path / "wd1", tmp_path / "cache1", "--set", f"ccache.remote={redis}")
    (hits, misses, rate), out = build(repo, tmp_path / "wd2", tmp_path / "cache2", "--set", f"ccache.remote={redis}")
    assert rate == 1.0 and misses == 0, out
    assert "from remote storage" in out and ccache.last(tmp_path / "wd2")["stats"]["remote_storage_hit"] >= 1
