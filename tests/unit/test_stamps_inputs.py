"""What the no-op check compares (stamps.inputs) and how it names a difference (stamps.changed).

The names appear in ``--explain`` ("changed since the last build: source.changes, toolchain.gcc"),
so they are part of what users see.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from rebuilt.build import guard
from rebuilt.build.features import stamps
from rebuilt.core.secret import Secret


def _machine():
    return SimpleNamespace(tools={"gcc": "gcc 12.3", "g++": "g++ 12.3", "cmake": "cmake 3.29", "ninja": "1.11"},
                           nvcc_version="12.9", cuda_home="/usr/local/cuda", python=SimpleNamespace(version="3.11.9"))


@pytest.fixture
def settings():
    return SimpleNamespace(python=lambda: "/env/bin/python", stack=SimpleNamespace(name="sglang-0.5.4"))


def _rp(tmp_path, name="sgl-kernel", inputs=None, source_dir=None):
    recipe = tmp_path / f"{name}.toml"
    recipe.write_text("[source]\n")
    return SimpleNamespace(recipe=SimpleNamespace(name=name, path=recipe), inputs=inputs or {"steps": []},
                           source_dir=source_dir)


def _with_torch(monkeypatch, version):
    monkeypatch.setattr(stamps.guard, "snapshot", lambda python, dists: {
        "torch": guard.DistState(version=version, record="r", requires=())} if "torch" in dists else {})


def test_building_torch_itself_does_not_depend_on_the_installed_torch(monkeypatch, settings, tmp_path):
    """torch's own build replaces the installed torch: it is the output, not an input."""
    rp = _rp(tmp_path, "torch")
    _with_torch(monkeypatch, "2.8.0")
    before = stamps.inputs(rp, settings, _machine())
    _with_torch(monkeypatch, "2.8.0+custom")
    after = stamps.inputs(rp, settings, _machine())
    assert before["torch"] is None and stamps.changed(before, after) == []


def test_every_other_recipe_depends_on_the_installed_torch(monkeypatch, settings, tmp_path):
    rp = _rp(tmp_path, "torchvision")
    _with_torch(monkeypatch, "2.8.0")
    before = stamps.inputs(rp, settings, _machine())
    _with_torch(monkeypatch, "2.8.0+custom")
    assert stamps.changed(before, stamps.inputs(rp, settings, _machine())) == ["torch"]


def test_a_secret_option_in_the_plan_is_compared_redacted_and_never_stored_in_clear(monkeypatch, settings, tmp_path):
    token = "ghp_" + "s3cr3t" * 6
    url = Secret(f"https://{token}@git.example/sg.git")
    rp = _rp(tmp_path, inputs={"options": {"url": url}, "steps": []})
    _with_torch(monkeypatch, "2.8.0")
    now = stamps.inputs(rp, settings, _machine())
    assert now["plan"]["options"] == {"url": str(url)} and token not in repr(now)
    assert stamps.changed(now, stamps.inputs(rp, settings, _machine())) == []


def test_a_source_folder_that_is_not_a_checkout_has_no_tree_state(monkeypatch, settings, tmp_path):
    """No git is asked (this tier refuses processes): a plain folder's contents are not fingerprinted."""
    (tmp_path / "plain").mkdir()
    _with_torch(monkeypatch, "2.8.0")
    data = stamps.inputs(_rp(tmp_path, source_dir=str(tmp_path / "plain")), settings, _machine())
    assert "source" in data and data["source"] is None
    assert stamps.inputs(_rp(tmp_path), settings, _machine())["source"] is None


def test_an_input_that_an_older_stamp_lacks_counts_as_changed():
    old = {"plan": 1, "source": None}
    assert stamps.changed(old, {**old, "torch": ["2.8.0", "r"]}) == ["torch"]
    assert stamps.changed({**old, "torch": ["2.8.0", "r"]}, old) == ["torch"]


def test_a_checkout_that_became_a_plain_folder_is_a_changed_source():
    source = {"head": "abc", "changes": None, "changed_paths": 0, "ref": "v1"}
    assert stamps.changed({"source": source}, {"source": None}) == ["source"]
    assert stamps.changed({"source": None}, {"source": source}) == ["source"]


def test_a_changed_plan_is_named_plan_not_its_parts():
    old = {"plan": {"recipe": "sgl-kernel", "steps": [["build", "make", []]]}}
    new = {"plan": {"recipe": "sgl-kernel", "steps": [["build", "make -B", []]]}}
    assert stamps.changed(old, new) == ["plan"]


def test_source_and_toolchain_changes_are_named_by_their_part():
    old = {"source": {"head": "abc", "changes": "h1", "changed_paths": 1, "ref": "v1"},
           "toolchain": {"gcc": "12", "nvcc": "12.9"}}
    new = {"source": {"head": "abc", "changes": "h2", "changed_paths": 2, "ref": "v1"},
           "toolchain": {"gcc": "13", "nvcc": "12.9"}}
    assert stamps.changed(old, new) == ["source.changes", "toolchain.gcc"]
