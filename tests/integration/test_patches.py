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

    r = ok(cli("src.patch-new", "patched-tool", "--name", "fix answer", "--add", "NEWS"))  # a new file: named
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


def test_a_binary_edit_becomes_a_patch_that_applies_and_the_edit_is_never_lost(tmp_path, cli):
    ok(cli("src.fetch", "--recipe", "patched-tool"))
    checkout = tmp_path / "wd" / "src" / "patched_tool"
    (checkout / "logo.bin").write_bytes(bytes(range(256)) * 8)
    git(checkout, "add", "-N", "logo.bin")  # intent-to-add: a new file of yours
    ok(cli("src.patch-new", "patched-tool", "--name", "logo"))
    edited = bytes(reversed(range(256))) * 8 + b"\0tail"
    (checkout / "logo.bin").write_bytes(edited)  # now a binary edit of a file the checkout holds

    r = ok(cli("src.patch-new", "patched-tool", "--name", "new logo"))
    patch = tmp_path / "patches" / "patched-tool" / "0002-new-logo.patch"
    assert "GIT binary patch" in patch.read_text() and "logo.bin" in r.stdout
    assert (checkout / "logo.bin").read_bytes() == edited  # re-applied from the patch: the edit is still there
    assert git(checkout, "apply", "--check", "--reverse", str(patch)) == ""
    ok(cli("src.fetch", "--recipe", "patched-tool", wd="fresh"))  # a fresh work dir gets the same bytes
    assert (tmp_path / "fresh" / "src" / "patched_tool" / "logo.bin").read_bytes() == edited


def test_the_checkout_is_not_reset_when_the_patches_would_not_give_your_edits_back(tmp_path, cli):
    ok(cli("src.fetch", "--recipe", "patched-tool"))
    checkout = tmp_path / "wd" / "src" / "patched_tool"
    mine = (checkout / "tool.py").read_text().replace("return 41", "return 44")
    (checkout / "tool.py").write_text(mine)
    # the new patch is turned off in settings: re-applying the patches would drop the edit, so nothing is reset
    r = cli("src.patch-new", "patched-tool", "--name", "answer", "--set", "patched-tool.patches_skip=0001-answer.patch")
    assert r.returncode == 2 and "do not hold all of your edits (tool.py)" in r.stderr, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert (checkout / "tool.py").read_text() == mine


def test_a_patch_holds_your_edits_not_build_outputs_and_a_fresh_build_has_them(tmp_path, cli):
    ok(build(cli))  # the fixture has no .gitignore: its build leaves build/tool.py untracked in the checkout
    checkout = tmp_path / "wd" / "src" / "patched_tool"
    (checkout / "build" / "tool.so").write_bytes(b"\x7fELF" + bytes(64))
    assert (checkout / "build" / "tool.py").exists()
    (checkout / "tool.py").write_text((checkout / "tool.py").read_text().replace("return 41", "return 44"))
    (checkout / "notes.txt").write_text("a scratch file, not for the patch\n")

    r = ok(cli("src.patch-new", "patched-tool", "--name", "answer"))
    patch = tmp_path / "patches" / "patched-tool" / "0001-answer.patch"
    assert git(checkout, "apply", "--numstat", "--reverse", str(patch)).split() == ["1", "1", "tool.py"]
    assert "left out 3 untracked file(s)" in r.stdout and "--add PATH" in r.stdout, r.stdout
    assert (checkout / "notes.txt").exists() and (checkout / "build" / "tool.so").exists()  # not touched

    ok(build(cli, wd="fresh"))
    assert "return 44" in (tmp_path / "fresh" / "src" / "patched_tool" / "build" / "tool.py").read_text()


def test_an_add_path_outside_the_checkout_is_refused(tmp_path, cli):
    ok(cli("src.fetch", "--recipe", "patched-tool"))
    (tmp_path / "wd" / "src" / "patched_tool" / "README").write_text("edited\n")
    r = cli("src.patch-new", "patched-tool", "--name", "x", "--add", str(tmp_path / "elsewhere.txt"))
    assert r.returncode == 2 and "--add" in r.stderr and "inside the checkout" in r.stderr, r.stderr
    assert not (tmp_path / "patches" / "patched-tool").exists() or not list((tmp_path / "patches").rglob("*.patch"))


def test_patches_belong_to_the_project_not_to_an_installed_rebuilt(tmp_path, upstream):
    """`rebuilt` run in a project folder (no REBUILT_PATCHES_DIR): patches go to <project>/patches; config says so."""
    project = tmp_path / "project"
    project.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_REBUILT_", "REBUILT_"))}
    env.update(GIT_ENV, REBUILT_RECIPES_DIR=RECIPES, INVOKE_REBUILT_PATCHED_TOOL_URL=str(upstream))

    def rebuilt(*args):
        return subprocess.run([sys.executable, "-m", "rebuilt.cli", *args, "--workdir", str(tmp_path / "wd")],
                              cwd=project, env=env, capture_output=True, text=True, timeout=300)

    ok(rebuilt("src.fetch", "--recipe", "patched-tool"))
    checkout = tmp_path / "wd" / "src" / "patched_tool"
    (checkout / "README").write_text("edited\n")
    before = set((ROOT / "patches").rglob("*.patch"))
    ok(rebuilt("src.patch-new", "patched-tool", "--name", "readme"))
    assert (project / "patches" / "patched-tool" / "0001-readme.patch").is_file()
    assert set((ROOT / "patches").rglob("*.patch")) == before  # nothing written beside rebuilt's own files
    shown = subprocess.run([sys.executable, "-m", "rebuilt.cli", "config"], cwd=project, env=env,
                           capture_output=True, text=True, timeout=300)
    assert f"patches {project / 'patches'} " in shown.stdout, shown.stdout[:500]
