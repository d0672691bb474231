"""The no-op check's view of a checkout with a submodule (stamps.tree_state), on real git repositories.

A build compiles the submodule's files too (pytorch's third_party, flashinfer's cutlass): moving the
submodule to another commit, and every edit inside it, must change the fingerprint, whatever the
checkout's own git settings say about submodules and diffs.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from rebuilt.build.features import stamps
from tests.gitrepo import GIT_ENV, commit, git, make_repo

SUB = "third_party/cutlass"


@pytest.fixture
def repo(tmp_path):
    """A checkout with a submodule at ``SUB`` whose upstream has three commits."""
    upstream = make_repo(tmp_path / "cutlass", {"include/gemm.h": "v1\n"})
    for n in (2, 3):
        (upstream / "include" / "gemm.h").write_text(f"v{n}\n")
        commit(upstream, f"v{n}")
    top = make_repo(tmp_path / "src", {"setup.py": "x = 1\n"})
    git(top, "submodule", "add", "-q", str(upstream), SUB)
    commit(top, "add the submodule")
    return top


def _state(repo):
    return stamps.tree_state(str(repo))


def _move(repo, ref):
    git(repo / SUB, "checkout", "-q", ref)


def test_a_clean_submodule_is_part_of_the_commit(repo):
    assert _state(repo) == {"head": git(repo, "rev-parse", "HEAD"), "changes": None, "changed_paths": 0}


def test_every_commit_the_submodule_is_moved_to_changes_the_fingerprint(repo):
    _move(repo, "HEAD~1")
    first = _state(repo)
    _move(repo, "HEAD~1")  # another commit: the same status line, only the submodule's commit differs
    second = _state(repo)
    assert first["changes"] and second["changes"] and first["changes"] != second["changes"]
    assert first["changed_paths"] == second["changed_paths"] == 1
    _move(repo, "main")
    assert _state(repo)["changes"] is None


def test_every_edit_inside_a_submodule_changes_the_fingerprint(repo):
    header = repo / SUB / "include" / "gemm.h"
    header.write_text("edited once\n")
    first = _state(repo)
    header.write_text("edited twice\n")
    second = _state(repo)
    assert first["changes"] and second["changes"] and first["changes"] != second["changes"]


def test_a_new_file_inside_a_submodule_is_an_input(repo):
    new = repo / SUB / "include" / "new.h"
    new.write_text("a\n")
    first = _state(repo)
    new.write_text("a longer header\n")
    assert first["changes"] and _state(repo)["changes"] != first["changes"]


def test_build_outputs_inside_a_submodule_are_not_inputs(repo):
    """The stamp is written after the build that made them: a later build that rewrites them is up to date."""
    (repo / SUB / "build").mkdir()
    (repo / SUB / "build" / "gemm.o").write_text("object\n")
    after_build = _state(repo)
    (repo / SUB / "build" / "gemm.o").write_text("another object\n")
    (repo / SUB / "build" / "gemm.d").write_text("deps\n")
    assert _state(repo) == after_build
    (repo / SUB / "include" / "gemm.h").write_text("edited\n")
    assert _state(repo)["changes"] != after_build["changes"]


def test_edits_in_a_submodule_are_seen_although_gitmodules_says_to_ignore_them(repo):
    """Upstreams set ``ignore = dirty`` or ``all`` in .gitmodules to keep their own `git status` quiet."""
    git(repo, "config", "-f", ".gitmodules", f"submodule.{SUB}.ignore", "all")
    commit(repo, "quiet submodule")
    header = repo / SUB / "include" / "gemm.h"
    header.write_text("edited once\n")
    first = _state(repo)
    header.write_text("edited twice\n")
    assert first["changes"] and _state(repo)["changes"] not in (None, first["changes"])
    header.write_text("v3\n")
    _move(repo, "HEAD~1")
    assert _state(repo)["changes"] is not None


def test_a_submodule_move_is_seen_with_an_external_diff_tool_configured(repo):
    """A user's ``diff.external`` (difftastic, a GUI) must not replace what is fingerprinted."""
    git(repo, "config", "diff.external", "true")
    _move(repo, "HEAD~1")
    first = _state(repo)
    _move(repo, "HEAD~1")
    assert first["changes"] != _state(repo)["changes"]


def test_a_submodule_whose_path_is_also_a_branch_name_is_still_read(repo):
    git(repo, "branch", SUB)
    _move(repo, "HEAD~1")
    first = _state(repo)
    _move(repo, "HEAD~1")
    assert first["changes"] != _state(repo)["changes"]


def test_a_staged_submodule_move_then_another_move_are_both_seen(repo):
    _move(repo, "HEAD~1")
    git(repo, "add", SUB)
    staged = _state(repo)
    _move(repo, "HEAD~1")
    moved = _state(repo)
    assert len({None, staged["changes"], moved["changes"]}) == 3


def test_a_conflicted_submodule_is_fingerprinted_by_the_commit_checked_out_in_it(repo):
    git(repo, "checkout", "-q", "-b", "other")
    _move(repo, "HEAD~1")
    commit(repo, "cutlass v2")
    git(repo, "checkout", "-q", "main")
    git(repo, "submodule", "update", "-q")
    _move(repo, "HEAD~2")
    commit(repo, "cutlass v1")
    rc = _merge(repo, "other")
    assert rc != 0  # the two branches moved the submodule to different commits
    seen = []
    for ref in ("main", "HEAD~1", "HEAD~1"):  # a third commit, then theirs, then ours
        _move(repo, ref)
        seen.append(_state(repo)["changes"])
    assert None not in seen and len(set(seen)) == 3


def _merge(repo, branch):
    """``git merge``'s exit status (1: it stopped on a conflict)."""
    return subprocess.run(["git", "-C", str(repo), "merge", "-q", branch], capture_output=True,
                          env={**os.environ, **GIT_ENV}).returncode
