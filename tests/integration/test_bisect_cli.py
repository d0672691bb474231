"""`inv bisect` through the real CLI over a real git history of a small C extension.

The history (tests/fixtures/bisect/project, 30 commits after the tag v0.1.0) has one commit
that makes the benchmarked ``work()`` twenty times slower (SLOW), one whose C file does not
compile (BROKEN, fixed by the next commit) and one the --cmd test calls untestable
(exit 125). Each candidate is built by the fixture recipe (tests/fixtures/recipes/bisect-fix.toml)
into a virtual environment made here; the benchmark is a stand-in bench_one_batch that
measures the installed ``work()`` with simulated jitter. Builds are counted from manifests.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.envs import make_venv
from tests.gitrepo import GIT_ENV, commit, git, make_repo

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "bisect"
RECIPES = f"{ROOT / 'tests' / 'fixtures' / 'recipes'}{os.pathsep}{ROOT / 'recipes'}"
N, SLOW, BROKEN, UNTESTABLE = 30, 20, 18, 15
pytestmark = pytest.mark.slow

SPEC = """\
description = "bisect fixture: work() latency"
repeats = 3
[matrix]
batch_size = [1]
input_len = [8]
output_len = [2]
"""


def make_history(path: Path) -> list[str]:
    """The fixture project at v0.1.0, then N commits; returns the commit ids, index 0 = v0.1.0."""
    repo = make_repo(path, copy_from=FIX / "project")
    git(repo, "tag", "v0.1.0")
    hashes = [git(repo, "rev-parse", "HEAD")]
    init, work = repo / "bisect_fix" / "__init__.py", repo / "src" / "work.c"
    for k in range(1, N + 1):
        text = init.read_text().replace(f"STEP = {k - 1}", f"STEP = {k}")
        text = text.replace(f"UNTESTABLE = {k - 1 == UNTESTABLE}", f"UNTESTABLE = {k == UNTESTABLE}")
        init.write_text(text)
        subject = f"step {k}"
        if k == BROKEN:
            work.write_text(work.read_text().replace("volatile long acc = 0;", "volatile long acc = 0"))
            subject += ": tidy the loop (does not compile)"
        if k == BROKEN + 1:
            work.write_text(work.read_text().replace("volatile long acc = 0\n", "volatile long acc = 0;\n"))
            subject += ": fix the build"
        if k == SLOW:
            work.write_text(work.read_text().replace("#define LOOPS 4000000L", "#define LOOPS 80000000L"))
            subject += ": a more thorough loop (twenty times slower)"
        hashes.append(commit(repo, subject))
    return hashes


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bisect")
    hashes = make_history(tmp / "upstream" / "bisect_fix")
    env_dir = tmp / "env"
    make_venv(env_dir)  # sees this interpreter's setuptools and wheel (no index needed)
    (tmp / "model").mkdir()
    (tmp / "model" / "config.json").write_text("{}")
    (tmp / "spec.toml").write_text(SPEC)
    env = {**os.environ, **GIT_ENV, "PIP_NO_INDEX": "1", "INVOKE_REBUILT_AUTO_BACKUP": "false",
           "REBUILT_RECIPES_DIR": RECIPES, "PYTHONPATH": str(FIX / "bench"), "BISECT_FIX_JITTER": "0.3",
           "BISECT_FIX_CACHE": str(tmp / "jit-cache"), "BISECT_FIX_LATENCY": "loops"}
    env.pop("PIP_CONSTRAINT", None)
    common = ["--stack", "fixture", "--python", str(env_dir / "bin" / "python"), "--workdir", str(tmp / "wd"),
              "--no-checks", "--jobs", "2", "--set", f"bisect-fix.url={tmp / 'upstream' / 'bisect_fix'}"]
    box = {"tmp": tmp, "hashes": hashes, "env": env, "common": common, "wd": tmp / "wd",
           "python": env_dir / "bin" / "python"}
    # the environment before any bisection: the pinned ref v0.1.0 built and installed
    first = inv(box, "build.bisect-fix", *common)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    return box


def inv(box, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=box["env"], capture_output=True,
                          text=True, timeout=600)


def installed_step(box) -> str:
    return subprocess.run([str(box["python"]), "-c", "import bisect_fix; print(bisect_fix.STEP, bisect_fix.loops())"],
                          capture_output=True, text=True, cwd="/").stdout.strip()


def compiled(box, since: float) -> list[dict]:
    """Build manifests (finished or failed) of the fixture written after ``since``."""
    out = []
    for p in (box["wd"] / "manifests").glob("*-bisect-fix.json"):
        if p.stat().st_mtime >= since:
            data = json.loads(p.read_text())
            if data["status"] in ("done", "failed"):
                out.append(data)
    return out


def state(box) -> dict:
    return json.loads((box["wd"] / "bisect" / "bisect-fix" / "state.json").read_text())


def test_bench_bisection_survives_ctrl_c_and_finds_the_slow_commit(box):
    # The stand-in benchmark reports the installed build's loop count (BISECT_FIX_LATENCY=loops) with up to +30%
    # simulated jitter, never a clock: a fast commit stays under x1.3 of the reference and the slow one above
    # x15, whatever else the machine runs; --threshold 200 (x3) splits them.
    hashes = box["hashes"]
    args = ["bisect", "--recipe", "bisect-fix", "--good", "v0.1.0", "--bad", hashes[N], "--spec",
            str(box["tmp"] / "spec.toml"), "--metric", "total_latency", "--threshold", "200",
            "--set", f"bench.model_path={box['tmp'] / 'model'}", *box["common"]]
    since = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=box["env"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    path = box["wd"] / "bisect" / "bisect-fix" / "state.json"
    decided = 0
    while proc.poll() is None and decided < 3:  # Ctrl-C once three commits are decided, however long that takes
        try:
            decided = sum(1 for e in json.loads(path.read_text())["entries"].values() if e["verdict"])
        except (OSError, ValueError):
            decided = 0
        time.sleep(0.2)
    assert proc.poll() is None, "the bisection ended before it could be interrupted: " + proc.stdout.read()[-3000:]
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C: the whole foreground group
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out[-3000:]
    assert "--resume" in out
    saved = state(box)
    assert saved["status"] == "interrupted"
    assert sum(1 for e in saved["entries"].values() if e["verdict"]) >= 3  # the decisions made before Ctrl-C are kept
    assert installed_step(box) == "0 4000000"  # the starting build was put back (its kept wheel)

    log = inv(box, "bisect", "--recipe", "bisect-fix", "--log", "--workdir", str(box["wd"]))
    assert log.returncode == 0 and "status: interrupted" in log.stdout, log.stdout + log.stderr

    again = inv(box, "bisect", "--recipe", "bisect-fix", "--resume", "--workdir", str(box["wd"]))
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-3000:]
    text = again.stdout
    assert f"first bad commit: {hashes[SLOW]}" in text, text[-3000:]
    assert f"step {SLOW}: a more thorough loop" in text
    assert f"its parent (last good): {hashes[SLOW - 1]}" in text
    assert "measured bs1-il8-ol2: median" in text  # values and spread of both
    done = state(box)
    verdicts = {e: v["verdict"] for e, v in done["entries"].items()}
    assert verdicts[hashes[BROKEN]] == "skip" and "does not build" in done["entries"][hashes[BROKEN]]["note"]
    assert f"skipped or unclear: {hashes[BROKEN][:12]}" in text
    # every measured commit got its verdict right despite the jitter
    for h, v in verdicts.items():
        k = hashes.index(h)
        if v in ("good", "bad"):
            assert v == ("bad" if k >= SLOW else "good"), (k, v)
    # builds: the good ref was already built (no-op); at most ceil(log2 N) + 2, plus the skipped one
    builds = compiled(box, since)
    assert sum(1 for m in builds if m["status"] == "done") <= math.ceil(math.log2(N)) + 2
    assert [m["source"]["commit"] for m in builds if m["status"] == "failed"] == [hashes[BROKEN]]
    assert len(builds) <= math.ceil(math.log2(N)) + 2 + 1
    assert (box["wd"] / "bisect" / "bisect-fix" / "bisect.png").stat().st_size > 1000
    assert installed_step(box) == "0 4000000"  # the environment ends with the build it started with
    assert "holds the starting build again" in text


def test_build_only_finds_the_commit_that_broke_the_build(box):
    hashes = box["hashes"]
    since = time.time()
    r = inv(box, "bisect", "--recipe", "bisect-fix", "--good", "v0.1.0", "--bad", hashes[BROKEN], "--build-only",
            *box["common"])
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-3000:]
    assert f"first bad commit: {hashes[BROKEN]}" in r.stdout
    assert f"its parent (last good): {hashes[BROKEN - 1]}" in r.stdout
    assert len(compiled(box, since)) <= math.ceil(math.log2(BROKEN)) + 2
    assert installed_step(box) == "0 4000000"


def test_cmd_mode_follows_git_bisect_run(box):
    hashes = box["hashes"]
    check = ("python -P -c 'import sys, bisect_fix; "
             "sys.exit(125 if bisect_fix.UNTESTABLE else 0 if bisect_fix.loops() < 10**7 else 1)'")
    store = box["wd"] / "bisect" / "bisect-fix" / "builds"
    args = ["bisect", "--recipe", "bisect-fix", "--good", "v0.1.0", "--bad", hashes[N], "--cmd", check, *box["common"]]
    first = inv(box, *args)  # this test's own first bisection: it keeps every commit it builds
    assert first.returncode == 0 and f"first bad commit: {hashes[SLOW]}" in first.stdout, first.stdout[-3000:]
    kept = {p.name for p in store.iterdir() if (p / "stamp.json").exists()}
    assert kept & set(state(box)["entries"]), kept  # candidates of the first run were kept
    since = time.time()
    r = inv(box, *args, "--keep")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-3000:]
    assert f"first bad commit: {hashes[SLOW]}" in r.stdout
    done = state(box)
    # the same range again: no kept commit is compiled again (only one that does not build is tried again),
    # every kept build is reinstalled
    again = compiled(box, since)
    assert not kept & {m["source"]["commit"] for m in again}
    assert all(m["status"] == "failed" for m in again), [(m["source"]["commit"], m["status"]) for m in again]
    assert kept & set(done["entries"])
    for h in kept & set(done["entries"]):
        assert done["entries"][h]["builds"][-1]["status"] == "reused", (h, done["entries"][h]["builds"])
    assert done["entries"][hashes[UNTESTABLE]]["verdict"] == "skip"
    assert done["entries"][hashes[UNTESTABLE]]["note"] == "exit 125"
    assert installed_step(box) == f"{SLOW} 80000000"  # --keep: the last candidate stays


def test_bad_input_is_refused_before_anything_runs(box):
    r = inv(box, "bisect", "--recipe", "bisect-fix", "--good", "v0.1.0", "--bad", box["hashes"][3], *box["common"])
    assert r.returncode == 2 and "exactly one of --metric" in r.stderr
    r = inv(box, "bisect", "--recipe", "bisect-fix", "--good", box["hashes"][3], "--bad", "v0.1.0", "--build-only",
            *box["common"])
    assert r.returncode == 2 and "is not an ancestor" in r.stderr, r.stderr
    r = inv(box, "bisect", "--recipe", "bisect-fix", "--resume", "--good", "v0.1.0", "--workdir", str(box["wd"]))
    assert r.returncode == 2 and "cannot be combined with --resume" in r.stderr


def test_refused_ranges_leave_the_checkout_where_it_was(box):
    hashes, upstream = box["hashes"], box["tmp"] / "upstream" / "bisect_fix"
    src = box["wd"] / "src" / "bisect_fix"
    start = git(src, "rev-parse", "HEAD")
    for name, at in (("refusal-a", 7), ("refusal-b", 9), ("refusal-c", 5)):  # branches the checkout has not seen
        git(upstream, "branch", "-f", name, hashes[at])
    cases = [("refusal-a", "refusal-a", "are the same commit"), ("refusal-b", hashes[4], "is not an ancestor"),
             ("refusal-c", "no-such-ref", "'no-such-ref' does not exist")]
    for good, bad, said in cases:  # each --good is fetched first, which moves the checkout
        r = inv(box, "bisect", "--recipe", "bisect-fix", "--good", good, "--bad", bad, "--build-only", *box["common"])
        assert r.returncode == 2 and said in r.stderr, (good, bad, r.stdout[-2000:] + r.stderr[-2000:])
        assert "Traceback" not in r.stderr
        assert git(src, "rev-parse", "HEAD") == start, (good, bad)


def test_bad_head_is_the_commit_checked_out_and_a_bad_ref_that_passes_stops(box):
    head = box["hashes"][12]
    built = inv(box, "build.bisect-fix", "--ref", head, *box["common"])  # the environment: commit 12, checked out
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-2000:]
    r = inv(box, "bisect", "--recipe", "bisect-fix", "--good", "v0.1.0", "--bad", "HEAD", "--build-only",
            *box["common"])
    assert r.returncode == 2, r.stdout[-3000:] + r.stderr[-2000:]
    assert f"the bad ref HEAD ({head[:12]}) builds" in r.stderr and "builds: builds" not in r.stderr
    assert state(box)["status"] == "failed" and len(state(box)["commits"]) == 13
    assert installed_step(box) == "12 4000000"  # put back after the failure
