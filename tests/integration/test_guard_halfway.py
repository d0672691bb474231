"""A pip stopped halfway through uninstalling a protected distribution: what the guard's snapshot sees.

pip moves a distribution's folders aside one by one ("~orch" beside "torch", scripts to a
temporary folder) before installing the new one; a Ctrl-C in between leaves the metadata
reading exactly as before. The snapshot runs in a real interpreter here, on a made-up
distribution laid out as pip installs one.
"""

from __future__ import annotations

import sys

import pytest

from rebuilt.build import guard

RECORD = ("pkg/__init__.py,sha256=a,1\npkg/sub/m.py,sha256=b,1\nfunc/__init__.py,sha256=c,1\n"
          "lone.py,sha256=d,1\n\"we,ird/x.py\",sha256=e,1\n../../../bin/tool,sha256=f,1\n"
          "pkg-1.0.dist-info/METADATA,,\npkg-1.0.dist-info/RECORD,,\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    """``tmp/lib/python3/site-packages`` holding pkg 1.0 (folders pkg, func, "we,ird", file lone.py, script bin/tool)."""
    site = tmp_path / "lib" / "python3" / "site-packages"
    meta = site / "pkg-1.0.dist-info"
    meta.mkdir(parents=True)
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n")
    (meta / "RECORD").write_text(RECORD)
    for name in ("pkg/__init__.py", "pkg/sub/m.py", "func/__init__.py", "lone.py", "we,ird/x.py"):
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text("")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "tool").write_text("#!/bin/sh\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    return site


def test_a_whole_distribution_has_nothing_missing_and_no_stash(site):
    state = guard.snapshot(sys.executable, ["pkg"])["pkg"]
    assert (state.version, state.path, state.missing, state.stash) == ("1.0", str(site), (), ())


def test_folders_moved_aside_are_missing_and_their_stash_is_seen(site):
    before = guard.snapshot(sys.executable, ["pkg"])
    (site / "func").rename(site / "~unc")  # pip's AdjacentTempDirectory name for "func"
    (site / "we,ird").rename(site / "~e,ird")
    (site / "~unrelated").mkdir()  # another distribution's stash: not this one's
    (site.parent.parent.parent / "bin" / "tool").unlink()  # a script pip moved to its temporary folder
    after = guard.snapshot(sys.executable, ["pkg"])
    state = after["pkg"]
    assert state.missing == ("../../../bin/tool", "func", "we,ird")
    assert state.stash == ("~e,ird", "~unc")
    assert (state.version, state.record) == (before["pkg"].version, before["pkg"].record)  # metadata unchanged
    assert guard.diff(before, after) == ["pkg"]
    assert guard.change_text("pkg", before["pkg"], state) == (
        "pkg 1.0: a pip stopped halfway (../../../bin/tool, func, we,ird missing and pip's stash ~e,ird, ~unc "
        "beside it)")


def test_an_empty_stash_folder_alone_is_a_change(site):
    before = guard.snapshot(sys.executable, ["pkg"])
    (site / "~kg-1.0.dist-info").mkdir()  # made by pip, which stopped before moving the metadata into it
    after = guard.snapshot(sys.executable, ["pkg"])
    assert after["pkg"].missing == () and after["pkg"].stash == ("~kg-1.0.dist-info",)
    assert guard.diff(before, after) == ["pkg"]
    assert guard.change_text("pkg", before["pkg"], after["pkg"]) == (
        "pkg 1.0: a pip stopped halfway (pip's stash ~kg-1.0.dist-info beside it)")


def test_leftovers_there_before_the_step_are_not_its_change(site):
    (site / "~kg").mkdir()
    before = guard.snapshot(sys.executable, ["pkg"])
    assert before["pkg"].stash == ("~kg",)
    assert guard.diff(before, guard.snapshot(sys.executable, ["pkg"])) == []
