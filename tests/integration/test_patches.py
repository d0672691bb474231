"""Local patches through the real CLI: patch-new from edits, a fresh build applies it, patch-check's three
verdicts, a conflicting ref stops the build naming the hunk, and rebuilt's own edits never block a ref switch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gitrepo import GIT_ENV, commit, git, make_repo

ROOT = Path(__file__).resolve().parents[2]
RECIPES = f"{ROOT / 'tests' / 'fixtures' / 'recipes'}{os.pathsep}{ROOT / 'recipes'}"


@pytest.fixture
def upstream(tmp_path):
    """v1.0, v1.1 (contains the fix upstream), v1.2 (rewrites the line the fix touches)."""
    repo = make_repo(tmp_path / "upstream", {
        "tool.py": "def answer():\n    return 41\n\n\nprint(answer())\n",
        "README": "tool\n", "requirements.txt": "numpy\ntorch==2.5.1\n"})
    git(repo, "tag", "v1.0")
    (repo / "tool.py").write_text("def answer():\n    return 42\n\n\nprint(answer())\n")
    commit(repo, "fix answer upstream")
    git(repo, "tag", "v1.1")
    (repo / "tool.py").write_text("def answer():\n    return int('40') + 3\n\n\nprint(answer())\n")
    commit(repo, "rewrite answer")
    git(repo, "tag", "v1.2")
    return repo


@pytest.fixture
def cli(tmp_path, upstream):
    env = {**os.environ, **GIT_ENV, "REBUILT_RECIPES_DIR": RECIPES, "REBUILT_PATCHES_DIR": str(tmp_path / "patches"),
           "INVOKE_REBUILT_PATCHED_TOOL_URL": str(upstream)}

    def run(*args: str, wd: str = "wd") -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "invoke", *args, "--workdir", str(tmp_path / wd)]
        return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)

    return run


def build(cli, *extra, wd="wd"):
    return cli("build.patched-tool", "--python", sys.executable, "--no-checks", *extra, wd=wd)


def ok(r):
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "Traceback" not in r.stdout + r.stderr
    return r


def test_patch_new_then_fresh_build_applies_it(tmp_path, cli):
    ok(cli("src.fetch", "--recipe", "patched-tool"))
    checkout = tmp_path / "wd" / "src" / "patched_tool"
    (checkout / "tool.py").write_text((checkout / "tool.py").read_text().replace("return 41", "return 42"))
    (checkout / "NEWS").write_text("answer fixed\n")

    r = ok(cli("src.patch-new", "patched-tool", "--name", "fix answer"))
    patch = tmp_path / "patches" / "patched-tool" / "0001-fix-answer.patch"
    assert patch.exists() and f"wrote {patch}" in r.stdout
    text = patch.read_text()
    assert "+    return 42" in text and "+answer fixed" in text and "requirements" not in text
    # the checkout is at its pinned ref with the patch applied: nothing of "yours" is left over
    status = json.loads(ok(cli("src.status", "--json", "--set", "patched-tool.ref=v1.0")).stdout)
    row = [x for x in status if x["recipe"] == "patched-tool"][0]
    assert row["users_changes"] == [] and row["patches"] == ["0001-fix-answer.patch"]
    assert "return 42" in (checkout / "tool.py").read_text()

    # a second edit becomes 0002, holding only the new edit
    (checkout / "README").write_text("tool, patched\n")
    ok(cli("src.patch-new", "patched-tool", "--name", "readme"))
    second = (tmp_path / "patches" / "patched-tool" / "0002-readme.patch").read_text()
    assert "README" in second and "tool.py" not in second

    # a fresh work dir: the build applies both, and the manifest records their sha256
    r = ok(build(cli, wd="fresh"))
    built = tmp_path / "fresh" / "src" / "patched_tool"
    assert "return 42" in (built / "build" / "tool.py").read_text() and (built / "NEWS").exists()
    manifest = json.loads(next((tmp_path / "fresh" / "manifests").glob("*-patched-tool.json")).read_text())
    assert set(manifest["source"]["patch_sha256"]) == {"0001-fix-answer.patch", "0002-readme.patch"}

    # unchanged: up to date; a changed patch is a changed input
    assert "up to date" in ok(build(cli, "--explain", wd="fresh")).stdout
    patch.write_text(text.replace("+answer fixed", "+answer fixed (again)"))
    r = build(cli, "--explain", wd="fresh")
    assert "up to date" not in r.stdout, r.stdout


def test_patch_check_verdicts_and_a_conflict_stops_the_build(tmp_path, cli):
    ok(cli("src.fetch", "--recipe", "patched-tool"))
    checkout = tmp_path / "wd" / "src" / "patched_tool"
    (checkout / "tool.py").write_text((checkout / "tool.py").read_text().replace("return 41", "return 42"))
    ok(cli("src.patch-new", "patched-tool", "--name", "fix"))

    assert "applies" in ok(cli("src.patch-check", "patched-tool")).stdout
    up = ok(cli("src.patch-check", "patched-tool", "--ref", "v1.1"))
    assert "already upstream" in up.stdout and "0001-fix.patch" in up.stdout
    bad = cli("src.patch-check", "patched-tool", "--ref", "v1.2")
    assert bad.returncode == 1 and "conflicts" in bad.stdout and "tool.py: @@" in bad.stdout, bad.stdout

    # the build on the conflicting ref stops before any build step, naming the patch and the hunk
    r = build(cli, "--ref", "v1.2")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "0001-fix.patch does not apply" in r.stderr and "patch failed: tool.py:1" in r.stderr
    assert "src.patch-check patched-tool" in r.stderr and "Traceback" not in r.stderr
    assert "patched-tool:build" not in r.stdout


def test_rebuilt_edits_are_undone_before_another_ref_but_yours_stop_it(tmp_path, cli):
    patches = tmp_path / "patches" / "patched-tool"
    patches.mkdir(parents=True)
    (patches / "0001-readme.patch").write_text(
        "--- a/README\n+++ b/README\n@@ -1 +1 @@\n-tool\n+tool (patched)\n")
    ok(build(cli))  # applies the patch and drops torch from requirements.txt: both rebuilt's edits
    checkout = tmp_path / "wd" / "src" / "patched_tool"
    assert "torch" not in (checkout / "requirements.txt").read_text()
    assert (checkout / "README").read_text() == "tool (patched)\n"

    ok(build(cli, "--ref", "v1.1"))  # bisecting: another ref in the same work dir just works
    assert git(checkout, "rev-parse", "HEAD") == git(tmp_path / "upstream", "rev-parse", "v1.1^{commit}")
    assert "return 42" in (checkout / "tool.py").read_text()

    (checkout / "tool.py").write_text("print('my experiment')\n")
    r = build(cli, "--ref", "v1.2")
    assert r.returncode == 2 and "uncommitted changes of yours (tool.py)" in r.stderr, r.stderr
    assert "src.patch-new" in r.stderr
    assert (checkout / "tool.py").read_text() == "print('my experiment')\n"  # never thrown away
