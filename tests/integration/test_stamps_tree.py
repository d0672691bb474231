"""The no-op check's view of a source tree (stamps.tree_state) on real git checkouts.

Every edit a build would compile must change the fingerprint, a second edit of an already
modified file included; build outputs must not.
"""

from __future__ import annotations

import os

from rebuilt.build.features import stamps
from tests.gitrepo import git, make_repo


def _repo(tmp_path):
    return make_repo(tmp_path / "src", {"csrc/a.cc": "int a;\n", "setup.py": "x = 1\n"})


def test_a_clean_tree_is_its_commit(tmp_path):
    repo = _repo(tmp_path)
    state = stamps.tree_state(str(repo))
    assert state == {"head": git(repo, "rev-parse", "HEAD"), "changes": None, "changed_paths": 0}


def test_every_edit_of_an_already_modified_file_changes_the_fingerprint(tmp_path):
    repo = _repo(tmp_path)
    src = repo / "csrc" / "a.cc"
    src.write_text("int a = 1;\n")
    first = stamps.tree_state(str(repo))
    src.write_text("int a = 2;\n")  # same path, same status line: only the diff content differs
    second = stamps.tree_state(str(repo))
    assert first["changes"] and second["changes"] and first["changes"] != second["changes"]
    assert first["head"] == second["head"] and first["changed_paths"] == second["changed_paths"] == 1


def test_untracked_source_files_are_inputs_and_build_outputs_are_not(tmp_path):
    repo = _repo(tmp_path)
    for out in ("build/lib/x.so", "dist/x.whl", "x.egg-info/PKG-INFO", "csrc/__pycache__/a.pyc"):
        (repo / out).parent.mkdir(parents=True, exist_ok=True)
        (repo / out).write_text("output\n")
    assert stamps.tree_state(str(repo))["changes"] is None
    new = repo / "csrc" / "b.cu"
    new.write_text("__global__ void k() {}\n")
    added = stamps.tree_state(str(repo))
    assert added["changes"] and added["changed_paths"] == 1
    new.write_text("__global__ void k() { return; }\n")  # another size
    assert stamps.tree_state(str(repo))["changes"] != added["changes"]
    st = new.stat()
    os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # same size, touched later
    assert stamps.tree_state(str(repo))["changes"] not in (None, added["changes"])


def test_a_new_commit_changes_the_head(tmp_path):
    repo = _repo(tmp_path)
    before = stamps.tree_state(str(repo))
    (repo / "setup.py").write_text("x = 2\n")
    git(repo, "commit", "-qam", "next")
    after = stamps.tree_state(str(repo))
    assert after["head"] != before["head"] and after["changes"] is None


def test_not_a_checkout_has_no_head(tmp_path):
    assert stamps.tree_state(str(tmp_path)) == {"head": None}


def test_a_second_edit_of_a_file_with_spaces_in_its_name_is_seen(tmp_path):
    repo = make_repo(tmp_path / "src", {"csrc/my kernel.cu": "int a;\n", "setup.py": "x = 1\n"})
    src = repo / "csrc" / "my kernel.cu"
    src.write_text("int a = 1;\n")
    first = stamps.tree_state(str(repo))
    src.write_text("int a = 2;\n")
    assert stamps.tree_state(str(repo))["changes"] != first["changes"]


def test_files_in_a_new_untracked_folder_are_inputs(tmp_path):
    repo = _repo(tmp_path)
    (repo / "csrc" / "new").mkdir()
    new = repo / "csrc" / "new" / "k.cu"
    new.write_text("a\n")
    first = stamps.tree_state(str(repo))
    new.write_text("a longer file\n")
    assert first["changes"] and stamps.tree_state(str(repo))["changes"] != first["changes"]
