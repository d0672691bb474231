"""ccache figures in one run, on a five-file C++ torch extension built through the real build machinery.

1. cold build (empty cache) vs a second, clean build with the warm cache: time ratio (target <= 0.3);
2. the same build from a second checkout at another path, same cache: hit rate (target >= 90%);
3. a fresh, empty local cache backed by a warm Redis remote (redis-server on 127.0.0.1): hit rate (>= 90%).
Usage: python perf/ccache_figures.py [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = f"{ROOT / 'tests' / 'fixtures' / 'recipes'}{os.pathsep}{ROOT / 'recipes'}"
GIT = {"GIT_AUTHOR_NAME": "p", "GIT_AUTHOR_EMAIL": "p@example.invalid", "GIT_COMMITTER_NAME": "p",
       "GIT_COMMITTER_EMAIL": "p@example.invalid"}


def sh(*argv, cwd=None):
    subprocess.run(argv, cwd=cwd, check=True, env={**os.environ, **GIT}, stdout=subprocess.DEVNULL)


def build(repo: Path, wd: Path, cache: Path, jobs: int, remote: str = "") -> tuple[float, dict]:
    argv = [sys.executable, "-m", "invoke", "build.ext-cpp", "--workdir", str(wd), "--no-checks", "--force",
            "--jobs", str(jobs), "--set", f"ext-cpp.url={repo}", "--set", "ccache.enabled=true",
            "--set", f"ccache.dir={cache}"] + (["--set", f"ccache.remote={remote}"] if remote else [])
    env = {**os.environ, "REBUILT_RECIPES_DIR": RECIPES, "INVOKE_REBUILT_AUTO_BACKUP": "false", "PIP_NO_INDEX": "1"}
    t = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - t
    stats = json.loads((wd / "state" / "ccache-last.json").read_text())["stats"]
    return seconds, stats


def rate(s: dict) -> str:
    hits = s.get("direct_cache_hit", 0) + s.get("preprocessed_cache_hit", 0)
    total = hits + s.get("cache_miss", 0)
    return f"{hits}/{total} = {hits / total:.0%}" if total else "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ccache-figures-"))
    repo = tmp / "upstream" / "ext_cpp"
    shutil.copytree(ROOT / "tests" / "fixtures" / "ext_cpp", repo)
    sh("git", "init", "-q", cwd=repo)
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-qm", "fixture", cwd=repo)
    sh("git", "tag", "v0.1.0", cwd=repo)

    cold, s_cold = build(repo, tmp / "wd1", tmp / "cache", args.jobs)
    warm, s_warm = build(repo, tmp / "wd1", tmp / "cache", args.jobs)
    print(f"cold build {cold:6.1f} s ({rate(s_cold)} hits)   warm rebuild {warm:6.1f} s ({rate(s_warm)} hits)   "
          f"time ratio {warm / cold:.2f} (target <= 0.3)")
    _, s_other = build(repo, tmp / "elsewhere" / "second-checkout" / "wd2", tmp / "cache", args.jobs)
    print(f"second checkout at another path: hit rate {rate(s_other)} (target >= 90%)")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", str(tmp)], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        url = f"redis://127.0.0.1:{port}"
        build(repo, tmp / "wd3", tmp / "cache-a", args.jobs, url)  # fills the remote
        _, s_remote = build(repo, tmp / "wd4", tmp / "cache-b", args.jobs, url)  # empty local cache
        print(f"fresh local cache + warm Redis remote: hit rate {rate(s_remote)} "
              f"({s_remote.get('remote_storage_hit', 0)} from Redis) (target >= 90%)")
    finally:
        redis.terminate()
        redis.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
