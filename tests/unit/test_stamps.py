"""The no-op check's decisions (rebuilt/build/features/stamps.py), with fakes for git, pip and the machine.

A wrong "up to date" leaves the user running a stale binary, so every input and every reason to
rebuild has a test here; the git side (tree_state) is tested on real repositories in
tests/integration/test_stamps_tree.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from rebuilt.build import guard
from rebuilt.build.features import stamps

TOOLCHAIN = {"gcc": "gcc 12.3", "g++": "g++ 12.3", "cmake": "cmake 3.29", "ninja": "1.11"}


def _machine(**changes):
    fields = {"tools": dict(TOOLCHAIN), "nvcc_version": "12.9", "cuda_home": "/usr/local/cuda-12.9",
              "python": SimpleNamespace(version="3.11.9")}
    tools = changes.pop("tools", {})
    fields["tools"].update(tools)
    fields.update(changes)
    return SimpleNamespace(**fields)


def _torch(version="2.8.0", record="r1"):
    return {"torch": guard.DistState(version=version, record=record, requires=())}


@pytest.fixture
def rp(tmp_path):
    recipe = tmp_path / "sgl-kernel.toml"
    recipe.write_text("[source]\n")
    return SimpleNamespace(recipe=SimpleNamespace(name="sgl-kernel", path=recipe), inputs={"steps": [["a", "b"]]},
                           source_dir=None)


@pytest.fixture
def settings():
    return SimpleNamespace(python=lambda: "/env/bin/python", stack=SimpleNamespace(name="sglang-0.5.4"))


def _inputs(monkeypatch, rp, settings, machine=None, torch=None):
    monkeypatch.setattr(stamps.guard, "snapshot", lambda python, dists: _torch() if torch is None else torch)
    return stamps.inputs(rp, settings, machine or _machine())


@pytest.mark.parametrize("change, name", [
    ({"tools": {"gcc": "gcc 13.1"}}, "toolchain.gcc"), ({"tools": {"g++": "g++ 13.1"}}, "toolchain.g++"),
    ({"tools": {"cmake": "cmake 3.30"}}, "toolchain.cmake"), ({"tools": {"ninja": "1.12"}}, "toolchain.ninja"),
    ({"nvcc_version": "13.0"}, "toolchain.nvcc"), ({"cuda_home": "/usr/local/cuda-13.0"}, "toolchain.cuda_home"),
])
def test_the_toolchain_is_an_input(monkeypatch, rp, settings, change, name):
    before = _inputs(monkeypatch, rp, settings)
    after = _inputs(monkeypatch, rp, settings, machine=_machine(**change))
    assert stamps.changed(before, after) == [name]


@pytest.mark.parametrize("torch", [_torch(version="2.8.1"), _torch(record="r2"), {}])
def test_the_installed_torch_version_and_record_are_inputs(monkeypatch, rp, settings, torch):
    before = _inputs(monkeypatch, rp, settings)
    assert before["torch"] == ["2.8.0", "r1"]
    assert stamps.changed(before, _inputs(monkeypatch, rp, settings, torch=torch)) == ["torch"]


def test_the_source_ref_is_an_input(monkeypatch, rp, settings, tmp_path):
    (tmp_path / "src" / ".git").mkdir(parents=True)
    rp.source_dir = str(tmp_path / "src")
    monkeypatch.setattr(stamps, "tree_state", lambda src: {"head": "abc", "changes": None, "changed_paths": 0})
    refs = iter(["v0.5.4", "v0.5.5-rc"])
    monkeypatch.setattr(stamps.sources, "read_state", lambda src: {"ref": next(refs)})
    before, after = _inputs(monkeypatch, rp, settings), _inputs(monkeypatch, rp, settings)
    assert before["source"]["ref"] == "v0.5.4"
    assert stamps.changed(before, after) == ["source.ref"]


def test_equal_inputs_compare_equal_after_a_round_trip_through_the_stamp(monkeypatch, rp, settings):
    rp.inputs = {"steps": [("a", ("b", "c"))]}  # tuples, as the plan makes them
    now = _inputs(monkeypatch, rp, settings)
    assert stamps.changed(json.loads(json.dumps(now)), now) == []


# --------------------------------------------------------------------------- up_to_date / after_recipe


class Console:
    def __init__(self):
        self.lines = []

    def say(self, text):
        self.lines.append(text)


@pytest.fixture
def hook(tmp_path, settings, monkeypatch):
    """A Stamps hook whose inputs never change, pip and the target interpreter faked."""
    h = stamps.Stamps(settings, tmp_path / "wd", Console(), SimpleNamespace(explain=True, force=False))
    monkeypatch.setattr(h, "_inputs", lambda rp: {"plan": 1})
    h.installs = []
    monkeypatch.setattr(stamps.runner, "capture", lambda argv, **kw: h.installs.append(argv))
    h.have = {"sgl-kernel": "0.3.16"}
    monkeypatch.setattr(stamps, "_installed", lambda python, dists: {d: v for d, v in h.have.items() if d in dists})
    return h


def _wheel(tmp_path, data=b"wheel-bytes"):
    path = tmp_path / "sgl_kernel-0.3.16-cp39-abi3-linux_x86_64.whl"
    path.write_bytes(data)
    return {"path": str(path), "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _stamp(hook, artifacts, installed=None):
    hook.folder.mkdir(parents=True, exist_ok=True)
    (hook.folder / "sgl-kernel.json").write_text(json.dumps({
        "run_id": "run-1", "inputs": {"plan": 1}, "artifacts": artifacts,
        "installed": {"sgl-kernel": "0.3.16"} if installed is None else installed}))


def test_unchanged_inputs_and_artifacts_are_up_to_date(hook, rp, tmp_path):
    _stamp(hook, [_wheel(tmp_path)])
    assert hook.up_to_date(rp) == "inputs unchanged since run-1" and hook.installs == []


@pytest.mark.parametrize("damage", ["missing", "resized"])
def test_a_missing_or_resized_artifact_rebuilds(hook, rp, tmp_path, damage):
    wheel = _wheel(tmp_path)
    _stamp(hook, [wheel])
    if damage == "missing":
        Path(wheel["path"]).unlink()
    else:
        Path(wheel["path"]).write_bytes(b"wheel-bytes and more")
    assert hook.up_to_date(rp) is None
    assert any("artifact gone" in line for line in hook.console.lines)


def test_a_reused_wheel_is_installed_when_the_package_is_absent(hook, rp, tmp_path):
    wheel = _wheel(tmp_path)
    _stamp(hook, [wheel])
    hook.have = {}
    assert hook.up_to_date(rp) == "reused the wheel of run-1"
    assert hook.installs and hook.installs[0][-1] == wheel["path"] and "--no-deps" in hook.installs[0]


def test_a_reused_wheel_with_other_bytes_of_the_same_size_rebuilds(hook, rp, tmp_path):
    wheel = _wheel(tmp_path)
    _stamp(hook, [wheel])
    Path(wheel["path"]).write_bytes(b"wheel-BYTES")  # same size: only the sha256 tells
    hook.have = {}
    assert hook.up_to_date(rp) is None and hook.installs == []
    assert any("changed since it was built (sha256)" in line for line in hook.console.lines)


@pytest.mark.parametrize("have", [{}, {"sgl-kernel": "0.3.15"}])
def test_a_stamp_without_wheels_is_not_up_to_date_when_the_package_is_not_installed(hook, rp, have):
    _stamp(hook, [])
    hook.have = have
    assert hook.up_to_date(rp) is None and hook.installs == []
    assert any("sgl-kernel is not installed in the target" in line for line in hook.console.lines)


def test_changed_inputs_rebuild_and_say_which(hook, rp, tmp_path, monkeypatch):
    _stamp(hook, [_wheel(tmp_path)])
    monkeypatch.setattr(hook, "_inputs", lambda rp: {"plan": 2})
    assert hook.up_to_date(rp) is None
    assert hook.console.lines == ["sgl-kernel: rebuilding, changed since the last build: plan"]


def test_without_a_stamp_it_builds(hook, rp):
    assert hook.up_to_date(rp) is None


@pytest.mark.parametrize("status", ["failed", "interrupted", "skipped"])
def test_only_a_successful_build_is_stamped(hook, rp, tmp_path, status):
    manifest = {"run_id": "run-2", "artifacts": [_wheel(tmp_path)]}
    hook.after_recipe(rp, status, manifest)
    assert not (hook.folder / "sgl-kernel.json").exists()
    hook.after_recipe(rp, "done", manifest)
    stamp = json.loads((hook.folder / "sgl-kernel.json").read_text())
    assert stamp["run_id"] == "run-2" and stamp["installed"] == {"sgl-kernel": "0.3.16"}
    assert stamp["inputs"] == {"plan": 1}
