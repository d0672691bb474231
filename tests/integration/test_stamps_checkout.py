"""The no-op check on real checkouts in the states a build meets: several edited files, renames,
merge conflicts, links, binary files, unusual names, a repository without a commit, and the reuse of
a stamped wheel through a real (failing) target interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from rebuilt.build import sources
from rebuilt.build.features import stamps
from rebuilt.errors import StepFailed
from tests.gitrepo import GIT_ENV, commit, git, make_repo


def _state(repo):
    return stamps.tree_state(str(repo))


def _twice(repo, path, first, second):
    """The fingerprints after two different edits of ``path``."""
    path.write_bytes(first)
    one = _state(repo)["changes"]
    path.write_bytes(second)
    return one, _state(repo)["changes"]


def test_every_edit_of_each_of_several_modified_files_is_seen(tmp_path):
    repo = make_repo(tmp_path / "src", {"a.cc": "a\n", "b.cc": "b\n", "c.cc": "c\n"})
    (repo / "a.cc").write_text("a edited\n")
    for name in ("b.cc", "c.cc"):
        one, two = _twice(repo, repo / name, b"once\n", b"twice\n")
        assert one and two and one != two, name
    assert _state(repo)["changed_paths"] == 3


def test_every_edit_of_a_binary_file_is_seen(tmp_path):
    repo = make_repo(tmp_path / "src", {"setup.py": "x = 1\n"})
    (repo / "table.bin").write_bytes(bytes(range(256)))
    commit(repo, "binary")
    one, two = _twice(repo, repo / "table.bin", bytes(range(255, -1, -1)), b"\0" * 256)
    assert one and two and one != two


def test_a_renamed_file_and_its_later_edits_are_seen(tmp_path):
    """A staged rename lists the old path as an extra item: it is not read as an entry of its own."""
    repo = make_repo(tmp_path / "src", {"2d_conv.cu": "kernel\n" * 20, "setup.py": "x = 1\n", "b.cc": "b\n"})
    git(repo, "mv", "2d_conv.cu", "conv2d.cu")
    renamed = _state(repo)
    assert renamed["changes"] and renamed["changed_paths"] == 1
    (repo / "b.cc").write_text("b edited\n")
    one, two = _twice(repo, repo / "conv2d.cu", b"kernel\n" * 20 + b"once\n", b"kernel\n" * 20 + b"twice\n")
    assert one != two and _state(repo)["changed_paths"] == 2


def test_every_edit_of_a_file_left_in_conflict_is_seen(tmp_path):
    repo = make_repo(tmp_path / "src", {"a.cc": "base\n"})
    git(repo, "checkout", "-q", "-b", "other")
    (repo / "a.cc").write_text("theirs\n")
    commit(repo, "theirs")
    git(repo, "checkout", "-q", "main")
    (repo / "a.cc").write_text("ours\n")
    commit(repo, "ours")
    merge = subprocess.run(["git", "-C", str(repo), "merge", "-q", "other"], capture_output=True,
                           env={**os.environ, **GIT_ENV})
    assert merge.returncode == 1 and git(repo, "status", "--porcelain").startswith("UU")
    one, two = _twice(repo, repo / "a.cc", b"resolved once\n", b"resolved twice\n")
    assert one and two and one != two


def test_a_retargeted_link_is_seen(tmp_path):
    repo = make_repo(tmp_path / "src", {"v1.h": "1\n", "v2.h": "2\n", "v3.h": "3\n"})
    (repo / "current.h").symlink_to("v1.h")
    commit(repo, "link")
    (repo / "current.h").unlink()
    (repo / "current.h").symlink_to("v2.h")
    one = _state(repo)["changes"]
    (repo / "current.h").unlink()
    (repo / "current.h").symlink_to("v3.h")
    assert one and _state(repo)["changes"] not in (None, one)


def test_a_deleted_file_is_a_change(tmp_path):
    repo = make_repo(tmp_path / "src", {"a.cc": "a\n", "b.cc": "b\n"})
    (repo / "a.cc").unlink()
    assert _state(repo)["changes"] and _state(repo)["changed_paths"] == 1


def test_every_edit_of_a_file_whose_name_starts_with_a_space_is_seen(tmp_path):
    repo = make_repo(tmp_path / "src", {" lead.cu": "int a;\n", "setup.py": "x = 1\n"})
    one, two = _twice(repo, repo / " lead.cu", b"int a = 1;\n", b"int a = 2;\n")
    assert one and two and one != two


def test_a_tracked_file_inside_a_build_output_folder_is_not_an_input(tmp_path):
    repo = make_repo(tmp_path / "src", {"setup.py": "x = 1\n", "build/config.h": "committed\n"})
    (repo / "build" / "config.h").write_text("rewritten by the build\n")
    assert _state(repo)["changes"] is None


def test_build_outputs_beside_an_untracked_source_file_are_not_inputs(tmp_path):
    repo = make_repo(tmp_path / "src", {"setup.py": "x = 1\n"})
    (repo / "new.cu").write_text("kernel\n")
    (repo / "build").mkdir()
    (repo / "build" / "k.o").write_text("object\n")
    before = _state(repo)
    (repo / "build" / "k.o").write_text("a bigger object file\n")
    (repo / "dist").mkdir()
    (repo / "dist" / "x.whl").write_text("wheel\n")
    assert _state(repo) == before


@pytest.mark.parametrize("name", ["buildX", "build ", "dist.cu"])
def test_a_source_whose_name_only_resembles_a_build_output_folder_is_an_input(tmp_path, name):
    repo = make_repo(tmp_path / "src", {"setup.py": "x = 1\n", "csrc/a.cc": "a\n"})
    (repo / "csrc" / name).write_text("kernel\n")
    before = _state(repo)
    assert before["changes"] is not None and before["changed_paths"] == 1
    (repo / "csrc" / name).write_text("another kernel\n")
    assert _state(repo)["changes"] != before["changes"]


def test_build_outputs_inside_a_new_untracked_folder_are_not_inputs(tmp_path):
    """git lists a new folder as one path: what a build or an import writes inside it is left out too."""
    repo = make_repo(tmp_path / "src", {"setup.py": "x = 1\n"})
    pkg = repo / "python" / "newmod"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("x = 1\n")
    before = _state(repo)
    for out in ("__pycache__/__init__.cpython-311.pyc", "build/lib/k.so", "newmod.egg-info/PKG-INFO"):
        (pkg / out).parent.mkdir(parents=True, exist_ok=True)
        (pkg / out).write_text("output\n")
    assert _state(repo) == before
    (pkg / "__init__.py").write_text("x = 2 + 2\n")
    assert _state(repo)["changes"] != before["changes"]


def test_a_repository_without_a_commit_has_no_head(tmp_path):
    repo = tmp_path / "src"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "setup.py").write_text("x = 1\n")
    assert _state(repo) == {"head": None}


# --------------------------------------------------------------------------- the inputs of a real checkout


def test_the_inputs_of_a_checkout_are_its_commit_edits_and_the_ref_it_was_fetched_at(tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "src", {"setup.py": "x = 1\n"})
    (repo / ".git" / sources.STATE_FILE).write_text(json.dumps({"ref": "v0.5.4"}))
    monkeypatch.setattr(stamps.guard, "snapshot", lambda python, dists: {})
    recipe = tmp_path / "sglang.toml"
    recipe.write_text("[source]\n")
    rp = SimpleNamespace(recipe=SimpleNamespace(name="sglang", path=recipe), inputs={}, source_dir=str(repo))
    settings = SimpleNamespace(python=lambda: "/env/bin/python", stack=SimpleNamespace(name="s"))
    machine = SimpleNamespace(tools={}, nvcc_version=None, cuda_home=None, python=SimpleNamespace(version="3.11"))
    clean = stamps.inputs(rp, settings, machine)
    assert clean["source"] == {"head": git(repo, "rev-parse", "HEAD"), "changes": None, "changed_paths": 0,
                               "ref": "v0.5.4"}
    (repo / "setup.py").write_text("x = 2\n")
    assert stamps.changed(clean, stamps.inputs(rp, settings, machine)) == ["source.changes"]


# --------------------------------------------------------------------------- reusing a wheel through a real pip


def test_a_failed_reinstall_of_the_stamped_wheel_fails_instead_of_saying_reused(tmp_path, monkeypatch):
    """The target's pip is a real process here: a script standing in for python that records what it was
    asked and fails, as pip does when the wheel cannot be installed."""
    asked = tmp_path / "asked.txt"
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    python.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {asked}\necho 'ERROR: not a valid wheel' >&2\nexit 1\n")
    python.chmod(0o755)
    monkeypatch.setattr(stamps.guard, "snapshot", lambda py, dists: {})  # the package is absent
    wheel = tmp_path / "sgl_kernel-0.3.16-cp39-abi3-linux_x86_64.whl"
    wheel.write_bytes(b"wheel")
    settings = SimpleNamespace(python=lambda: str(python), stack=SimpleNamespace(name="s"))
    hook = stamps.Stamps(settings, tmp_path / "wd", SimpleNamespace(say=lambda text: None),
                         SimpleNamespace(explain=False, force=False), machine=object())
    monkeypatch.setattr(hook, "_inputs", lambda rp: {"plan": 1})
    hook.folder.mkdir(parents=True)
    (hook.folder / "sgl-kernel.json").write_text(json.dumps({
        "run_id": "run-1", "inputs": {"plan": 1}, "installed": {"sgl-kernel": "0.3.16"},
        "artifacts": [{"path": str(wheel), "size": 5, "sha256": None}]}))
    rp = SimpleNamespace(recipe=SimpleNamespace(name="sgl-kernel"))
    with pytest.raises(StepFailed):
        hook.up_to_date(rp)
    argv = asked.read_text().splitlines()
    assert argv[:3] == ["-m", "pip", "install"] and Path(argv[-1]) == wheel
