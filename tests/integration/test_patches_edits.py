"""Your patches from your edits, in-process on real git checkouts: what a new patch holds (your edits, not
build outputs nor rebuilt's own edits), the reset back to the pinned commit, and patch-check's verdicts.

tests/integration/test_patches.py drives the same through the CLI; these call rebuilt.build.patches directly.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from rebuilt.build import patches, sources
from rebuilt.core import recipes as recipes_mod
from rebuilt.core.fs import sha256_file
from rebuilt.errors import ConfigError, SourceError
from tests.gitrepo import GIT_ENV, commit, git, make_repo

ROOT = Path(__file__).resolve().parents[2]
TOOL = "def answer():\n    return 41\n\n\nprint(answer())\n"


@pytest.fixture(autouse=True)
def fixture_recipes(monkeypatch):
    """The fixture recipe patched-tool beside the shipped ones; git identity for the test repositories."""
    monkeypatch.setattr(recipes_mod, "RECIPES_DIRS", [ROOT / "tests" / "fixtures" / "recipes", ROOT / "recipes"])
    monkeypatch.delenv("REBUILT_PATCHES_DIR", raising=False)
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)


def run(argv, cwd=None, check=True, shell=False, **kw) -> int:
    return subprocess.run(argv, cwd=cwd, check=check, capture_output=True).returncode


@pytest.fixture
def upstream(tmp_path):
    """v1.0; v1.1 holds the fix upstream; v1.2 rewrites the line the fix touches."""
    repo = make_repo(tmp_path / "upstream", {"tool.py": TOOL, "README": "tool\n", "requirements.txt": "numpy\n",
                                             "docs/guide.txt": "guide\n"})
    git(repo, "tag", "v1.0")
    (repo / "tool.py").write_text(TOOL.replace("41", "42"))
    commit(repo, "fix upstream")
    git(repo, "tag", "v1.1")
    (repo / "tool.py").write_text(TOOL.replace("return 41", "return int('40') + 3"))
    commit(repo, "rewrite")
    git(repo, "tag", "v1.2")
    return repo


@pytest.fixture
def settings(resolve, upstream):
    return resolve({"patched-tool.url": str(upstream)})


@pytest.fixture
def checkout(settings, upstream):
    dest = settings.workdir() / "src" / "patched_tool"
    sources.fetch(str(upstream), "v1.0", dest, False, run)
    return dest


def folder(settings) -> Path:
    return patches.patches_dir(settings) / "patched-tool"


def write_patch_file(settings, name: str, text: str) -> Path:
    path = folder(settings) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


README_PATCH = "--- a/README\n+++ b/README\n@@ -1 +1 @@\n-tool\n+tool (patched)\n"
FIX_PATCH = "--- a/tool.py\n+++ b/tool.py\n@@ -1,3 +1,3 @@\n def answer():\n-    return 41\n+    return 42\n \n"


def fresh_copy(upstream: Path, where: Path, ref: str = "v1.0") -> Path:
    subprocess.run(["git", "clone", "-q", str(upstream), str(where)], check=True, capture_output=True)
    git(where, "checkout", "-q", "--detach", ref)
    return where


def scratch_files(dest: Path) -> list[str]:
    return sorted(p.name for p in (dest / ".git").iterdir() if p.name.startswith("rebuilt-index-"))


# --------------------------------------------------------------------------- new


def test_a_new_patch_holds_your_edits_and_named_new_files_only(settings, checkout, upstream, tmp_path):
    (checkout / "tool.py").write_text(TOOL.replace("41", "42"))
    (checkout / "NEWS").write_text("answer fixed\n")
    (checkout / "build").mkdir()
    (checkout / "build" / "tool.so").write_bytes(b"\x7fELF" + bytes(32))
    (checkout / "notes.txt").write_text("scratch\n")

    made = patches.new(settings, "patched-tool", "Fix the answer", ["NEWS"])
    assert made.path == folder(settings) / "0001-fix-the-answer.patch" and made.path.is_file()
    assert made.files == ["NEWS", "tool.py"]
    assert sorted(made.edits.left_out) == ["build/tool.so", "notes.txt"]
    assert made.sha256 == sha256_file(made.path)
    assert scratch_files(checkout) == []  # the scratch indexes are gone
    assert git(checkout, "status", "--porcelain", "--untracked-files=no") == "M tool.py"  # checkout as it was

    fresh = fresh_copy(upstream, tmp_path / "fresh")
    git(fresh, "apply", str(made.path))
    assert (fresh / "tool.py").read_text() == TOOL.replace("41", "42")
    assert (fresh / "NEWS").read_text() == "answer fixed\n"
    assert not (fresh / "notes.txt").exists() and not (fresh / "build").exists()


def test_the_patch_has_five_lines_of_context(settings, checkout):
    lines = [f"line {i}\n" for i in range(1, 21)]
    (checkout / "long.txt").write_text("".join(lines))
    git(checkout, "add", "long.txt")
    git(checkout, "commit", "-q", "-m", "long file")
    lines[9] = "line ten, edited\n"
    (checkout / "long.txt").write_text("".join(lines))
    made = patches.new(settings, "patched-tool", "ten")
    text = made.path.read_text()
    assert "@@ -5,11 +5,11 @@" in text and "\n line 5\n" in text and "\n line 15\n" in text
    assert "\n line 4\n" not in text and "\n line 16\n" not in text
    assert "index " in text and len(text.split("index ")[1].split("..")[0]) == 40  # full object names


def test_a_file_marked_intent_to_add_is_yours_without_add(settings, checkout):
    (checkout / "extra.py").write_text("x = 1\n")
    git(checkout, "add", "-N", "extra.py")
    made = patches.new(settings, "patched-tool", "extra")
    assert made.files == ["extra.py"] and made.edits.left_out == []
    assert "+x = 1" in made.path.read_text()


def test_an_ignored_file_named_with_add_counts(settings, checkout):
    (checkout / ".git" / "info" / "exclude").write_text("*.cfg\n")
    (checkout / "site.cfg").write_text("[x]\n")
    made = patches.new(settings, "patched-tool", "cfg", ["site.cfg"])
    assert made.files == ["site.cfg"]


def test_a_named_folder_takes_the_files_under_it_not_its_namesakes(settings, checkout):
    (checkout / "data").mkdir()
    (checkout / "data" / "a.txt").write_text("a\n")
    (checkout / "data" / "b.txt").write_text("b\n")
    (checkout / "database.txt").write_text("not in data/\n")
    made = patches.new(settings, "patched-tool", "data", ["data/"])
    assert made.files == ["data/a.txt", "data/b.txt"]
    assert made.edits.left_out == ["database.txt"]


def test_a_deleted_file_is_an_edit(settings, checkout):
    (checkout / "docs" / "guide.txt").unlink()
    made = patches.new(settings, "patched-tool", "no guide")
    assert made.files == ["docs/guide.txt"] and "deleted file mode" in made.path.read_text()


def test_no_edits_of_yours_is_refused_and_says_how_many_files_were_left_out(settings, checkout):
    with pytest.raises(ConfigError) as err:
        patches.new(settings, "patched-tool", "nothing")
    assert str(err.value) == f"{checkout} has no edits of yours to turn into a patch"
    assert err.value.hint == ("edit files in the checkout first; a new file counts when named with --add PATH "
                              "(or marked with `git add -N PATH`); rebuilt's own edits are not counted")
    (checkout / "out.o").write_bytes(b"\0")
    (checkout / "a.so").write_bytes(b"\0")
    with pytest.raises(ConfigError) as err:
        patches.new(settings, "patched-tool", "nothing")
    assert str(err.value) == (f"{checkout} has no edits of yours to turn into a patch "
                              "(2 untracked file(s) left out, e.g. a.so)")
    assert not folder(settings).exists() or not list(folder(settings).iterdir())


def test_rebuilts_own_edits_are_not_yours(settings, checkout):
    """A requirement line rebuilt dropped is recorded as its edit: not in your patch."""
    (checkout / "requirements.txt").write_text("")
    sources.record_edits(checkout, ["requirements.txt"])
    with pytest.raises(ConfigError, match="no edits of yours"):
        patches.new(settings, "patched-tool", "nothing")
    (checkout / "README").write_text("mine\n")
    made = patches.new(settings, "patched-tool", "readme")
    assert made.files == ["README"] and "requirements" not in made.path.read_text()


def test_a_new_file_that_a_patch_created_is_neither_yours_nor_left_out(settings, checkout):
    news = write_patch_file(settings, "0001-news.patch", "--- /dev/null\n+++ b/NEWS\n@@ -0,0 +1 @@\n+news\n")
    sources.apply_patches(checkout, [str(news)], run, "patched-tool")
    assert (checkout / "NEWS").read_text() == "news\n"
    (checkout / "tool.py").write_text(TOOL.replace("41", "42"))
    (checkout / "notes.txt").write_text("scratch\n")
    made = patches.new(settings, "patched-tool", "fix")
    assert made.files == ["tool.py"] and made.edits.left_out == ["notes.txt"]


def test_a_named_file_whose_name_starts_with_a_dash(settings, checkout):
    (checkout / "-notes.txt").write_text("mine\n")
    made = patches.new(settings, "patched-tool", "notes", ["-notes.txt"])
    assert made.files == ["-notes.txt"]


def test_a_second_patch_holds_only_what_changed_since_the_applied_ones(settings, checkout, upstream, tmp_path):
    first = write_patch_file(settings, "0001-readme.patch", README_PATCH)
    sources.apply_patches(checkout, [str(first)], run, "patched-tool")
    assert (checkout / "README").read_text() == "tool (patched)\n"
    with pytest.raises(ConfigError, match="no edits of yours"):
        patches.new(settings, "patched-tool", "nothing")  # the applied patch is not an edit of yours
    (checkout / "tool.py").write_text(TOOL.replace("41", "42"))
    made = patches.new(settings, "patched-tool", "fix")
    assert made.path.name == "0002-fix.patch" and made.files == ["tool.py"]
    assert "README" not in made.path.read_text()
    fresh = fresh_copy(upstream, tmp_path / "fresh")  # 0001 then 0002 apply on the pinned ref
    git(fresh, "apply", str(first))
    git(fresh, "apply", str(made.path))
    assert (fresh / "tool.py").read_text() == TOOL.replace("41", "42")


def test_applied_patches_are_those_recorded_whose_files_exist(settings, checkout):
    assert patches.applied_patches(checkout) == []
    one = write_patch_file(settings, "0001-readme.patch", README_PATCH)
    two = write_patch_file(settings, "0002-fix.patch", FIX_PATCH)
    sources.apply_patches(checkout, [str(one), str(two)], run, "patched-tool")
    assert patches.applied_patches(checkout) == [one, two]
    one.unlink()  # a patch file removed since: not applied by the next build either
    assert patches.applied_patches(checkout) == [two]


def test_a_patch_that_would_not_reproduce_your_edits_is_not_written(settings, checkout, monkeypatch):
    (checkout / "tool.py").write_text(TOOL.replace("41", "42"))
    monkeypatch.setattr(patches.Scratch, "applies", lambda self, patch, reverse=False: False)
    with pytest.raises(SourceError, match="does not reproduce them, so it was not written") as err:
        patches.new(settings, "patched-tool", "fix")
    assert err.value.hint == "commit your edits in the checkout instead, and report this with the files you changed"
    assert list(folder(settings).iterdir()) == []
    assert scratch_files(checkout) == []


def test_scratch_indexes_leave_the_checkouts_index_alone(checkout):
    git(checkout, "add", "-N", "README")  # something in the real index
    before = (checkout / ".git" / "index").read_bytes()
    with patches.Scratch(checkout) as s:
        s.read("HEAD")
        (checkout / "README").write_text("changed\n")
        s.must("add", "README")
        assert s.tree() != git(checkout, "rev-parse", "HEAD^{tree}")
        assert os.path.exists(s.index)
    assert (checkout / ".git" / "index").read_bytes() == before
    assert scratch_files(checkout) == []


def test_scratch_failures_name_the_git_command(checkout):
    with patches.Scratch(checkout) as s:
        with pytest.raises(SourceError, match="git read-tree no-such-ref failed in"):
            s.read("no-such-ref")
        s.read("HEAD")
        with pytest.raises(SourceError, match=r"git add -- missing\.txt \(scratch index\) failed in"):
            s.must("add", "--", "missing.txt")
        bad = checkout / "bad.patch"
        bad.write_text(FIX_PATCH.replace("return 41", "return 7"))
        with pytest.raises(SourceError, match=f"patch {bad} does not apply"):
            s.apply(bad)
        s.must("update-index", "--add", "--cacheinfo", f"100644,{'1' * 40},ghost.txt")  # an object git lacks
        with pytest.raises(SourceError, match=f"git write-tree failed in {checkout}: "):
            s.tree()


# --------------------------------------------------------------------------- restore


def test_restore_resets_to_the_pinned_commit_with_every_patch_applied(settings, checkout):
    head = git(checkout, "rev-parse", "HEAD")
    (checkout / "tool.py").write_text(TOOL.replace("41", "42"))
    (checkout / "NEWS").write_text("news\n")
    (checkout / "untracked.log").write_text("keep me\n")
    made = patches.new(settings, "patched-tool", "fix", ["NEWS"])
    applied = patches.restore(settings, "patched-tool", run, ["NEWS"])
    assert [(a["patch"], a["state"]) for a in applied] == [(made.path.name, "applied")]
    assert git(checkout, "rev-parse", "HEAD") == head
    assert (checkout / "tool.py").read_text() == TOOL.replace("41", "42")
    assert (checkout / "NEWS").read_text() == "news\n"  # re-created by the patch
    assert (checkout / "untracked.log").read_text() == "keep me\n"  # not touched
    assert sources.users_changes(checkout) == []  # everything there is rebuilt's now
    assert [p["patch"] for p in sources.read_state(checkout)["patches"]] == [made.path.name]


def test_restore_removes_an_intent_to_add_file_before_the_patch_re_creates_it(settings, checkout, upstream):
    """Afterwards the checkout is as a build leaves it: the patch's new files untracked, not in git's index."""
    (checkout / "extra.py").write_text("x = 1\n")
    (checkout / "-dash.txt").write_text("a name like an option\n")
    git(checkout, "add", "-N", "--", "extra.py", "-dash.txt")
    made = patches.new(settings, "patched-tool", "extra")
    applied = patches.restore(settings, "patched-tool", run)
    assert [a["state"] for a in applied] == ["applied"]
    assert (checkout / "extra.py").read_text() == "x = 1\n"
    assert sources.users_changes(checkout) == []
    built = settings.workdir() / "built"
    sources.fetch(str(upstream), "v1.0", built, False, run)
    sources.apply_patches(built, [str(made.path)], run, "patched-tool")
    assert git(checkout, "status", "--porcelain") == git(built, "status", "--porcelain")
    assert git(checkout, "ls-files", "--", "extra.py", "-dash.txt") == ""


def test_restore_stops_on_a_patch_that_no_longer_applies_naming_the_check(settings, checkout):
    write_patch_file(settings, "0001-stale.patch", FIX_PATCH.replace("return 41", "return 7"))
    with pytest.raises(SourceError, match="0001-stale.patch does not apply") as err:
        patches.restore(settings, "patched-tool", run)
    assert err.value.hint.startswith("inv src.patch-check patched-tool shows every patch's state")


def test_restore_twice_re_creates_files_that_patches_made_earlier(settings, checkout):
    (checkout / "NEWS").write_text("news\n")
    patches.new(settings, "patched-tool", "news", ["NEWS"])
    patches.restore(settings, "patched-tool", run, ["NEWS"])
    (checkout / "README").write_text("readme edited\n")
    patches.new(settings, "patched-tool", "readme")
    applied = patches.restore(settings, "patched-tool", run)
    assert [a["state"] for a in applied] == ["applied", "applied"]
    assert (checkout / "NEWS").read_text() == "news\n" and (checkout / "README").read_text() == "readme edited\n"


def test_restore_refuses_when_the_patches_do_not_hold_your_edits(settings, checkout):
    for i in range(7):
        (checkout / f"f{i}.txt").write_text(f"{i}\n")
        git(checkout, "add", "-N", f"f{i}.txt")
    (checkout / "tool.py").write_text("mine\n")
    with pytest.raises(SourceError) as err:
        patches.restore(settings, "patched-tool", run)
    assert str(err.value) == (f"{checkout}: the patches of patched-tool do not hold all of your edits "
                              "(f0.txt, f1.txt, f2.txt, f3.txt, f4.txt), so the checkout was not reset")
    assert err.value.hint == ("keep them with inv src.patch-new patched-tool --name NAME (--add PATH for new files), "
                              "or commit them in the checkout")
    assert (checkout / "tool.py").read_text() == "mine\n" and (checkout / "f6.txt").read_text() == "6\n"


def test_restore_refuses_when_a_patch_is_turned_off(settings, checkout, resolve, upstream):
    """The message names your edits only, not a file rebuilt itself changed (a dropped requirement line)."""
    (checkout / "requirements.txt").write_text("")
    sources.record_edits(checkout, ["requirements.txt"])
    (checkout / "tool.py").write_text(TOOL.replace("41", "44"))
    made = patches.new(settings, "patched-tool", "answer")
    off = resolve({"patched-tool.url": str(upstream), "patched-tool.patches_skip": [made.path.name]})
    with pytest.raises(SourceError, match=r"do not hold all of your edits \(tool.py\)"):
        patches.restore(off, "patched-tool", run)
    assert (checkout / "tool.py").read_text() == TOOL.replace("41", "44")


def test_restore_of_a_checkout_without_a_commit_says_so(settings):
    dest = settings.workdir() / "src" / "patched_tool"
    dest.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(dest)], check=True)
    with pytest.raises(SourceError, match=f"{dest} has no HEAD"):
        patches.restore(settings, "patched-tool", run)


# --------------------------------------------------------------------------- check


def test_check_gives_each_patch_its_verdict_in_order(settings, checkout, resolve, upstream):
    write_patch_file(settings, "0001-fix.patch", FIX_PATCH)
    write_patch_file(settings, "0002-readme.patch", README_PATCH)
    # 0003 needs 0002 applied first: later patches see the earlier ones
    write_patch_file(settings, "0003-readme-again.patch",
                     "--- a/README\n+++ b/README\n@@ -1 +1 @@\n-tool (patched)\n+tool (patched twice)\n")
    write_patch_file(settings, "0004-off.patch", README_PATCH)
    (folder(settings) / "notes.txt").write_text("not a patch\n")
    s = resolve({"patched-tool.url": str(upstream), "patched-tool.patches_skip": ["0004-off.patch"]})

    def verdicts(ref):
        found = patches.check(s, "patched-tool", sources.resolve(checkout, ref, run))
        return [(v.patch, v.state, v.detail, v.hunks) for v in found]

    assert verdicts("v1.0") == [("0001-fix.patch", "applies", "", []), ("0002-readme.patch", "applies", "", []),
                                ("0003-readme-again.patch", "applies", "", []),
                                ("0004-off.patch", "skipped", "turned off in settings", [])]
    assert verdicts("v1.1")[0] == ("0001-fix.patch", "already upstream", "reverse-applies cleanly: drop it", [])
    [fix, *rest] = verdicts("v1.2")
    assert fix[:2] == ("0001-fix.patch", "conflicts")
    assert "patch failed: tool.py:1" in fix[2] and fix[3] == ["tool.py: @@ -1,3 +1,3 @@"]
    assert [r[1] for r in rest] == ["applies", "applies", "skipped"]
    assert git(checkout, "status", "--porcelain") == "" and scratch_files(checkout) == []


def test_check_without_patches_is_empty(settings, checkout, upstream):
    assert patches.check(settings, "patched-tool", sources.resolve(checkout, "v1.0", run)) == []


def test_a_conflict_lists_the_hunks_of_the_failing_files_only(checkout, tmp_path):
    patch = tmp_path / "two.patch"
    patch.write_text(
        "--- a/README\n+++ b/README\n@@ -1 +1 @@\n-tool\n+tool (patched)\n"
        "--- tool.py\n+++ tool.py\n@@ -1,2 +1,2 @@\n def answer():\n-    return 99\n+    return 42\n"
        "@@ -4,2 +4,2 @@\n \n-print(answer())\n+print(answer() + 0)\n")
    with patches.Scratch(checkout) as s:
        s.read("HEAD")
        detail, hunks = patches.conflicting_hunks(checkout, s, patch)
    assert "patch failed: tool.py:1" in detail
    assert hunks == ["tool.py: @@ -1,2 +1,2 @@", "tool.py: @@ -4,2 +4,2 @@"]


# --------------------------------------------------------------------------- the patch file


def test_a_binary_edit_becomes_a_patch_that_gives_the_same_bytes(settings, checkout, upstream, tmp_path):
    (checkout / "logo.bin").write_bytes(bytes(range(256)) * 4)
    git(checkout, "add", "logo.bin")
    git(checkout, "commit", "-q", "-m", "logo")
    edited = bytes(reversed(range(256))) * 4 + b"\0tail"
    (checkout / "logo.bin").write_bytes(edited)
    made = patches.new(settings, "patched-tool", "logo")
    assert "GIT binary patch" in made.path.read_text()
    fresh = fresh_copy(upstream, tmp_path / "fresh")
    (fresh / "logo.bin").write_bytes(bytes(range(256)) * 4)
    git(fresh, "apply", str(made.path))
    assert (fresh / "logo.bin").read_bytes() == edited


def test_a_renamed_file_is_a_deletion_and_a_new_file(settings, checkout):
    git(checkout, "mv", "README", "README.md")
    made = patches.new(settings, "patched-tool", "rename")
    assert made.files == ["README", "README.md"]
    text = made.path.read_text()
    assert "rename from" not in text and "deleted file mode" in text and "new file mode" in text
    patches.restore(settings, "patched-tool", run)  # the reset keeps the rename: README stays gone
    assert not (checkout / "README").exists() and (checkout / "README.md").read_text() == "tool\n"


def test_the_users_git_diff_settings_do_not_change_the_patch(settings, checkout):
    """Colours and an external diff program configured in git would otherwise end up in (or break) the patch."""
    git(checkout, "config", "color.diff", "always")
    git(checkout, "config", "diff.external", "false")
    (checkout / "tool.py").write_text(TOOL.replace("41", "42"))
    made = patches.new(settings, "patched-tool", "fix")
    text = made.path.read_text()
    assert "\x1b[" not in text and "+    return 42\n" in text


def test_a_stale_lock_of_a_scratch_index_is_removed_too(checkout):
    with patches.Scratch(checkout) as s:
        s.read("HEAD")
        Path(s.index + ".lock").write_text("")  # what a git killed while writing leaves
    assert scratch_files(checkout) == []


def test_a_conflicting_patch_that_is_not_utf8_is_still_shown(settings, checkout):
    patch = write_patch_file(settings, "0001-latin1.patch", "")
    patch.write_bytes(b"--- a/tool.py\n+++ b/tool.py\n@@ -1,3 +1,3 @@\n def answer():\n-    return 99\n"
                      b"+    return '\xe9t\xe9'\n \n")
    [verdict] = patches.check(settings, "patched-tool", git(checkout, "rev-parse", "HEAD"))
    assert verdict.state == "conflicts" and verdict.hunks == ["tool.py: @@ -1,3 +1,3 @@"]
