"""The no-op check of a source tree vs `git status --porcelain`, side by side in one run.

Generates a git repository of 100,000 files (in 1,000 folders) with a submodule, warms the cache,
then times `git status --porcelain` and rebuilt's tree-state check (`rebuilt.build.features.stamps.tree_state`:
`git rev-parse HEAD` + `git status --porcelain=v2` with submodules) alternately, N repeats each,
and prints the medians and their ratio (goal <= 1.1). Also times the clean and a dirty tree; exits 1 when the
goal is missed.
Usage: python perf/noop_check.py [--files 100000] [--repeats 15] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rebuilt.build.features.stamps import tree_state  # noqa: E402

ENV = {**os.environ, "GIT_AUTHOR_NAME": "p", "GIT_AUTHOR_EMAIL": "p@example.invalid", "GIT_COMMITTER_NAME": "p",
       "GIT_COMMITTER_EMAIL": "p@example.invalid", "GIT_CONFIG_COUNT": "1",
       "GIT_CONFIG_KEY_0": "protocol.file.allow", "GIT_CONFIG_VALUE_0": "always"}


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, env=ENV, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def generate(root: Path, files: int) -> Path:
    sub = root / "sub"
    sub.mkdir(parents=True)
    git(sub, "init", "-q")
    (sub / "lib.h").write_text("int f(void);\n")
    git(sub, "add", "-A")
    git(sub, "commit", "-qm", "sub")
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    per = 100
    for d in range(files // per):
        folder = repo / f"d{d:04d}"
        folder.mkdir()
        for i in range(per):
            (folder / f"f{i:03d}.cc").write_text(f"// file {d}/{i}\nint f{d}_{i}() {{ return {i}; }}\n")
    (repo / ".gitignore").write_text("build/\n")
    git(repo, "add", "-A")
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "third_party/sub")
    git(repo, "commit", "-qm", "many files")
    return repo


def median_time(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


GOAL = 1.1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--keep", help="reuse/keep the generated repository in this folder")
    args = ap.parse_args()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="noop-"))
    repo = base / "repo"
    if not repo.exists():
        t = time.perf_counter()
        repo = generate(base, args.files)
        print(f"generated {args.files} files + a submodule in {time.perf_counter() - t:.0f}s: {repo}")
    status = lambda: subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], check=True,  # noqa: E731
                                    stdout=subprocess.DEVNULL)
    check = lambda: tree_state(str(repo))  # noqa: E731
    for fn in (status, check, status, check):  # warm the page cache and git's index stat data
        fn()
    missed = False
    for label, prepare in (("clean tree", None), ("one file edited", "edit")):
        if prepare:
            p = repo / "d0000" / "f000.cc"
            p.write_text(p.read_text() + "// edit\n")
        a, b = [], []
        for _ in range(args.repeats):  # alternate so that drift hits both sides alike
            a += median_time(status, 1)
            b += median_time(check, 1)
        ms, mc = statistics.median(a), statistics.median(b)
        print(f"{label:16}  git status --porcelain {ms * 1000:7.1f} ms   no-op check {mc * 1000:7.1f} ms   "
              f"ratio {mc / ms:.2f}  (goal <= {GOAL})")
        missed = missed or mc / ms > GOAL
    if missed:
        print("goal missed")
        sys.exit(1)


if __name__ == "__main__":
    main()
