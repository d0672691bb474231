"""Checkouts through the real CLI: tags, branches, commits, pr/NNNN, submodules, patches, bad refs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gitrepo import GIT_ENV, commit, git, make_repo

ROOT = Path(__file__).resolve().parents[2]


def inv(*args: str, env: dict | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    full = {**os.environ, **GIT_ENV, **(env or {})}
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def upstream(tmp_path):
    """A 'pytorch' repo with a submodule, a tag, a branch and a pull-request ref."""
    sub = make_repo(tmp_path / "third_party_src", {"lib.h": "int lib(void);\n"})
    repo = make_repo(tmp_path / "pytorch", {"setup.py": "print('v1')\n", "README": "torch\n"})
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "third_party/lib")
    v1 = commit(repo, "add submodule")
    git(repo, "tag", "v2.8.0")
    (repo / "setup.py").write_text("print('v2')\n")
    v2 = commit(repo, "second")
    git(repo, "update-ref", "refs/pull/7/head", v2)
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "feature.txt").write_text("f\n")
    feature = commit(repo, "feature")
    git(repo, "checkout", "-q", "main")
    return {"path": repo, "v1": v1, "v2": v2, "feature": feature}


def fetch(tmp_path, upstream, ref, *extra, env=None):
    return inv("src.fetch", "--recipe", "torch", "--workdir", str(tmp_path / "wd"),
               "--set", f"torch.url={upstream['path']}", "--set", f"torch.ref={ref}", *extra, env=env)


def head(tmp_path) -> str:
    return git(tmp_path / "wd" / "src" / "pytorch", "rev-parse", "HEAD")


def test_tag_with_submodules(tmp_path, upstream):
    r = fetch(tmp_path, upstream, "v2.8.0")
    assert r.returncode == 0, r.stdout + r.stderr
    assert head(tmp_path) == upstream["v1"]
    assert (tmp_path / "wd" / "src" / "pytorch" / "third_party" / "lib" / "lib.h").exists()
    assert "[1/1] torch:fetch" in r.stdout


def test_pull_request_branch_and_commit_refs(tmp_path, upstream):
    assert fetch(tmp_path, upstream, "pr/7").returncode == 0
    assert head(tmp_path) == upstream["v2"]
    assert fetch(tmp_path, upstream, "feature").returncode == 0
    assert head(tmp_path) == upstream["feature"]
    assert fetch(tmp_path, upstream, upstream["v1"]).returncode == 0
    assert head(tmp_path) == upstream["v1"]


def test_a_fetched_tag_needs_no_network_again(tmp_path, upstream):
    assert fetch(tmp_path, upstream, "v2.8.0").returncode == 0
    gone = dict(upstream, path=tmp_path / "no-such-remote")
    r = fetch(tmp_path, gone, "v2.8.0")
    assert r.returncode == 0, r.stdout + r.stderr
    assert head(tmp_path) == upstream["v1"]


def test_missing_ref_is_one_clear_message(tmp_path, upstream):
    r = fetch(tmp_path, upstream, "v9.9.9")
    assert r.returncode == 2
    assert "ref 'v9.9.9' does not exist" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_dirty_checkout_is_not_switched(tmp_path, upstream):
    assert fetch(tmp_path, upstream, "v2.8.0").returncode == 0
    (tmp_path / "wd" / "src" / "pytorch" / "setup.py").write_text("print('local edit')\n")
    r = fetch(tmp_path, upstream, "pr/7")
    assert r.returncode == 2 and "uncommitted changes" in r.stderr
    assert (tmp_path / "wd" / "src" / "pytorch" / "setup.py").read_text() == "print('local edit')\n"
    assert fetch(tmp_path, upstream, "v2.8.0").returncode == 0  # same ref: the edit is kept, no switch


def _patch(tmp_path, name, old, new):
    d = tmp_path / "patches" / "torch"
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_text(
        f"--- a/setup.py\n+++ b/setup.py\n@@ -1 +1 @@\n-{old}\n+{new}\n")
    return d / name


def test_patches_applied_once_then_detected_and_status(tmp_path, upstream):
    _patch(tmp_path, "0001-fix.patch", "print('v1')", "print('patched')")
    env = {"REBUILT_PATCHES_DIR": str(tmp_path / "patches")}
    r = fetch(tmp_path, upstream, "v2.8.0", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    checkout = tmp_path / "wd" / "src" / "pytorch"
    assert (checkout / "setup.py").read_text() == "print('patched')\n"
    r = fetch(tmp_path, upstream, "v2.8.0", env=env)  # already applied: skipped, not applied twice
    assert r.returncode == 0, r.stdout + r.stderr
    assert (checkout / "setup.py").read_text() == "print('patched')\n"
    state = json.loads((checkout / ".git" / "rebuilt-source.json").read_text())
    assert state["patches"][0]["state"] == "already applied"
    s = inv("src.status", "--workdir", str(tmp_path / "wd"), "--json",
            env={"INVOKE_REBUILT_TORCH_REF": "v2.8.0"})
    assert s.returncode == 0, s.stderr
    row = [x for x in json.loads(s.stdout) if x["recipe"] == "torch"][0]
    assert row["ref"] == "v2.8.0" and row["commit"] == upstream["v1"] and row["dirty"] is True
    assert row["patches"] == ["0001-fix.patch"]
    table = inv("src.status", "--workdir", str(tmp_path / "wd"))
    assert "0001-fix.patch" in table.stdout and "(not fetched)" in table.stdout


def test_patch_that_does_not_apply_names_the_file(tmp_path, upstream):
    bad = _patch(tmp_path, "0002-bad.patch", "print('nothing like this')", "x")
    r = fetch(tmp_path, upstream, "v2.8.0", env={"REBUILT_PATCHES_DIR": str(tmp_path / "patches")})
    assert r.returncode == 2
    assert f"patch {bad} does not apply" in r.stderr and "Traceback" not in r.stderr


def test_one_short_git_helper_for_all_of_rebuilt(tmp_path):
    """Short git commands go through rebuilt.build.sources.git only: no module keeps its own runner of git."""
    import re

    from rebuilt.build import sources
    from rebuilt.errors import SourceError

    own = []
    for path in (ROOT / "rebuilt").rglob("*.py"):
        text = path.read_text()
        if path != ROOT / "rebuilt" / "build" / "sources.py":
            own += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in
                    re.finditer(r"^def _?git\(|(capture|subprocess\.\w+)\(\s*\[\s*\"git\"", text, re.M)]
    assert own == []
    repo = make_repo(tmp_path / "r", {"a.txt": "a\n"})
    with pytest.raises(SourceError, match=r"git rev-parse --verify no-such-ref in .* failed"):
        sources.git(repo, "rev-parse", "--verify", "no-such-ref", check=True)
    (repo / "a.txt").write_text("b\n")
    assert sources.git(repo, "diff", strip=False)[1].endswith("+b\n")  # as git wrote it: patches keep their last line
    assert sources.git(repo, "diff")[1].endswith("+b")
