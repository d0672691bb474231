"""A failed step through the real CLI: the first error lines of its log above the tail, and a manifest
entry that says how long the step ran, its exit status, its log and those lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.unit.test_logscan import FATAL, deepep_cccl_log

ROOT = Path(__file__).resolve().parents[2]
RECIPE = """[recipe]
summary = "replays a DeepEP-shaped build failure"

[options]
log = ""
clock = ""

[[steps]]
name = "build"
shell = "date +%s.%N > {clock}; sleep 0.3; cat {log}; date +%s.%N >> {clock}; exit 1"
cwd = "{workdir}"
"""


def inv(tmp_path, *args) -> subprocess.CompletedProcess:
    recipes = tmp_path / "recipes"
    recipes.mkdir(exist_ok=True)
    (recipes / "replay.toml").write_text(RECIPE)
    env = {**os.environ, "REBUILT_RECIPES_DIR": f"{recipes}{os.pathsep}{ROOT / 'recipes'}"}
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_a_failed_step_shows_its_first_errors_and_the_manifest_records_it(tmp_path):
    log = tmp_path / "deepep.log"
    log.write_text(deepep_cccl_log())
    clock = tmp_path / "clock"  # the step's own start and end, as the step itself saw them
    r = inv(tmp_path, "build.replay", "--workdir", str(tmp_path / "wd"), "--no-checks", "--set", f"replay.log={log}",
            "--set", f"replay.clock={clock}")
    assert r.returncode == 1 and "Traceback (most recent call last)" not in r.stderr.split("--- last 30")[0]
    err = r.stderr
    assert "--- first error lines of" in err and f": {FATAL}" in err
    assert err.index(FATAL) < err.index("--- last 30 lines of") < err.index("RuntimeError: Error compiling objects")
    [manifest] = (tmp_path / "wd" / "manifests").glob("*-replay.json")
    whole = json.loads(manifest.read_text())
    [step] = whole["steps"]
    assert step["name"] == "build" and step["status"] == "failed"
    assert step["returncode"] == 1 and Path(step["log"]).is_file()
    began, ended = (float(t) for t in clock.read_text().split())
    # the recorded time spans what the step itself measured (rounded to ms) and lies within the build's
    assert ended - began - 0.001 <= step["seconds"] <= whole["seconds"] + 0.001
    errors = step["details"]["errors"]
    assert {"kind": "compiler", "text": FATAL} == {k: errors[1][k] for k in ("kind", "text")}
    assert errors[0]["kind"] == "ninja"
    assert Path(step["log"]).read_text().splitlines()[errors[1]["line"] - 1] == FATAL  # the step log's line number
    [status] = (tmp_path / "wd" / "logs").glob("*/replay.status.json")
    assert json.loads(status.read_text())["steps"][0]["returncode"] == 1


def test_a_failed_checkout_records_git_s_exit_status(tmp_path):
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "gone.toml").write_text(
        '[recipe]\nsummary = "a source that is not there"\n[source]\nurl = "file:///nonexistent/repo.git"\n'
        'ref = "v1"\n[[steps]]\nname = "noop"\nrun = ["true"]\n')
    r = inv(tmp_path, "build.gone", "--workdir", str(tmp_path / "wd"), "--no-checks")
    assert r.returncode == 2 and "ref 'v1' does not exist" in r.stderr
    [manifest] = (tmp_path / "wd" / "manifests").glob("*-gone.json")
    [step] = json.loads(manifest.read_text())["steps"]
    assert step["name"] == "fetch" and step["status"] == "failed" and step["returncode"] not in (None, 0)
    assert step["seconds"] > 0 and Path(step["log"]).is_file()
