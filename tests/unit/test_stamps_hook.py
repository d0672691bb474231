"""The no-op check as the builder uses it (stamps.Stamps): the stamp it writes after a build, the
decision it takes before the next one, and what ``--explain --dry-run`` says a real build would do.

The target interpreter is faked at ``guard.snapshot`` (what rebuilt asks it: the installed versions),
the machine is a fake probe; the inputs are computed for real from the recipe file, the plan and
those fakes, so a stamp written by ``after_recipe`` is read back by ``up_to_date`` as in a build.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from rebuilt.build import guard
from rebuilt.build.features import stamps
from rebuilt.errors import InputError
from tests.unit.test_stamps import Console

PYTHON = "/env/bin/python"


def _machine(nvcc="12.9"):
    return SimpleNamespace(tools={"gcc": "gcc 12.3", "g++": "g++ 12.3", "cmake": "cmake 3.29", "ninja": "1.11"},
                           nvcc_version=nvcc, cuda_home="/usr/local/cuda", python=SimpleNamespace(version="3.11.9"))


class Target:
    """The target environment: what ``guard.snapshot`` reports for ``PYTHON`` (nothing for any other)."""

    def __init__(self):
        self.dists = {"torch": ("2.8.0", "r1"), "sgl-kernel": ("0.3.16", "k1")}
        self.asked = []

    def snapshot(self, python, dists):
        self.asked.append((python, list(dists)))
        if python != PYTHON:
            return {}
        return {d: guard.DistState(version=v, record=r, requires=()) for d, (v, r) in self.dists.items() if d in dists}


@pytest.fixture
def target(monkeypatch):
    t = Target()
    monkeypatch.setattr(stamps.guard, "snapshot", t.snapshot)
    return t


@pytest.fixture
def installs(monkeypatch):
    done = []

    def capture(argv, **kw):
        done.append(argv)
        return SimpleNamespace(returncode=0, stdout="", stderr="")

    monkeypatch.setattr(stamps.runner, "capture", capture)
    return done


@pytest.fixture
def settings():
    return SimpleNamespace(python=lambda: PYTHON, stack=SimpleNamespace(name="sglang-0.5.4"))


@pytest.fixture
def rp(tmp_path):
    recipe = tmp_path / "sgl-kernel.toml"
    recipe.write_text("[source]\n")
    return SimpleNamespace(recipe=SimpleNamespace(name="sgl-kernel", path=recipe),
                           inputs={"recipe": "sgl-kernel", "steps": [["build", "make", []]]}, source_dir=None)


def _hook(settings, tmp_path, *, explain=True, force=False, machine="given"):
    return stamps.Stamps(settings, tmp_path / "wd", Console(), SimpleNamespace(explain=explain, force=force),
                         machine=_machine() if machine == "given" else machine)


@pytest.fixture
def hook(settings, tmp_path, target, installs):
    return _hook(settings, tmp_path)


def _wheel(tmp_path, name="sgl_kernel-0.3.16-cp39-abi3-linux_x86_64.whl", data=b"wheel-bytes"):
    path = tmp_path / "wheelhouse" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return {"path": str(path), "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _built(hook, rp, artifacts, run_id="run-1"):
    """A successful build of ``rp`` that made ``artifacts``: its stamp is written."""
    hook.after_recipe(rp, "done", {"run_id": run_id, "artifacts": artifacts})


# --------------------------------------------------------------------------- the stamp a build writes


def test_a_successful_build_writes_its_stamp_under_the_workdir_state(hook, rp, tmp_path):
    wheel = _wheel(tmp_path)
    _built(hook, rp, [wheel])
    stamp = json.loads((tmp_path / "wd" / "state" / "stamps" / "sgl-kernel.json").read_text())
    assert stamp["run_id"] == "run-1" and stamp["artifacts"] == [wheel]
    assert stamp["installed"] == {"sgl-kernel": "0.3.16"}
    assert stamp["inputs"]["stack"] == "sglang-0.5.4" and stamp["inputs"]["toolchain"]["nvcc"] == "12.9"


def test_the_stamp_records_only_wheels_as_installed_packages_as_the_target_has_them(hook, rp, tmp_path, target):
    """A non-wheel artifact named like an installed package (torch-...) is not a package this build installed."""
    target.dists["torch"] = ("2.8.0", "r1")
    _built(hook, rp, [_wheel(tmp_path), {"path": str(tmp_path / "torch-2.8.0-backup.tar"), "size": 1},
                      {"path": str(tmp_path / "libsgl.so"), "size": 1}])
    stamp = stamps.read_stamp(hook.folder / "sgl-kernel.json")
    assert stamp["installed"] == {"sgl-kernel": "0.3.16"}
    assert all(python == PYTHON for python, _ in target.asked)


def test_a_wheel_that_the_target_does_not_have_is_not_recorded_as_installed(hook, rp, tmp_path, target):
    del target.dists["sgl-kernel"]
    _built(hook, rp, [_wheel(tmp_path)])
    assert stamps.read_stamp(hook.folder / "sgl-kernel.json")["installed"] == {}


# --------------------------------------------------------------------------- the next build's decision


def test_a_build_right_after_the_stamped_one_is_up_to_date(hook, rp, tmp_path, installs):
    _built(hook, rp, [_wheel(tmp_path)])
    assert hook.up_to_date(rp) == "inputs unchanged since run-1"
    assert installs == [] and hook.console.lines == []


def test_without_a_stamp_it_builds_and_explain_says_why(hook, rp):
    assert hook.up_to_date(rp) is None
    assert hook.console.lines == ["sgl-kernel: no earlier successful build to compare with"]


def test_without_explain_a_rebuild_says_nothing(settings, rp, tmp_path, target, installs):
    hook = _hook(settings, tmp_path, explain=False)
    assert hook.up_to_date(rp) is None
    _built(hook, rp, [_wheel(tmp_path)])
    rp.recipe.path.write_text("[source]\n# edited\n")
    assert hook.up_to_date(rp) is None
    assert hook.console.lines == []


@pytest.mark.parametrize("edit, names", [
    ("recipe", "recipe"), ("plan", "plan"), ("stack", "stack"), ("python", "python, torch"), ("nvcc", "toolchain.nvcc"),
    ("torch", "torch"), ("plan+stack", "plan, stack"),
])
def test_every_changed_input_rebuilds_and_is_named(hook, rp, settings, target, edit, names):
    _built(hook, rp, [])
    if edit == "recipe":
        rp.recipe.path.write_text("[source]\n# edited\n")
    if "plan" in edit:
        rp.inputs = {"recipe": "sgl-kernel", "steps": [["build", "make -B", []]]}
    if "stack" in edit:
        settings.stack = SimpleNamespace(name="aiak")
    if edit == "python":
        settings.python = lambda: "/other/bin/python"
    if edit == "nvcc":
        hook.machine = _machine(nvcc="13.0")
    if edit == "torch":
        target.dists["torch"] = ("2.8.0", "r2")
    assert hook.up_to_date(rp) is None
    assert hook.console.lines == [f"sgl-kernel: rebuilding, changed since the last build: {names}"]


def test_a_wheel_removed_from_the_wheelhouse_rebuilds_naming_the_first_one_gone(hook, rp, tmp_path):
    kept, gone = _wheel(tmp_path), _wheel(tmp_path, "other-1.0-py3-none-any.whl")
    _built(hook, rp, [kept, gone])
    Path(gone["path"]).unlink()
    assert hook.up_to_date(rp) is None
    assert hook.console.lines == [f"sgl-kernel: rebuilding, artifact gone: {gone['path']}"]


def test_an_absent_package_is_reinstalled_from_the_stamped_wheel_into_the_target(hook, rp, tmp_path, target, installs):
    wheel = _wheel(tmp_path)
    _built(hook, rp, [wheel])
    del target.dists["sgl-kernel"]  # a fresh environment
    assert hook.up_to_date(rp) == "reused the wheel of run-1"
    assert installs == [[PYTHON, "-m", "pip", "install", "--no-deps", "--force-reinstall", "--no-index",
                         wheel["path"]]]
    assert hook.console.lines == [f"sgl-kernel: reused {wheel['path']} (inputs unchanged)"]


def test_two_stamped_wheels_are_both_reinstalled(hook, rp, tmp_path, target, installs):
    target.dists["flashinfer-python"] = ("0.4.1", "f1")
    first, second = _wheel(tmp_path), _wheel(tmp_path, "flashinfer_python-0.4.1-py3-none-any.whl")
    _built(hook, rp, [first, second])
    target.dists = {"torch": target.dists["torch"]}
    assert hook.up_to_date(rp) == "reused the wheels of run-1"
    assert [argv[-1] for argv in installs] == [first["path"], second["path"]]


def test_a_package_at_another_version_is_reinstalled_too(hook, rp, tmp_path, target, installs):
    wheel = _wheel(tmp_path)
    _built(hook, rp, [wheel])
    target.dists["sgl-kernel"] = ("0.3.15", "k0")
    assert hook.up_to_date(rp) == "reused the wheel of run-1"
    assert [argv[-1] for argv in installs] == [wheel["path"]]


def test_a_stamp_written_without_artifacts_or_installed_packages_is_still_read(hook, rp):
    """Both keys are optional in a stamp: without them there is nothing to check or reinstall."""
    _built(hook, rp, [])
    path = hook.folder / "sgl-kernel.json"
    stamp = json.loads(path.read_text())
    path.write_text(json.dumps({"run_id": "run-0", "inputs": stamp["inputs"]}))
    assert hook.up_to_date(rp) == "inputs unchanged since run-0"
    assert hook.explain_dry(rp) == "sgl-kernel: up to date (inputs unchanged since run-0): a real build skips it"


@pytest.mark.parametrize("content", [b'{"run_id": "run-1", "inputs": 3}', b'{"run_id": "run-1"}',
                                     b'{"run_id": "run-1", "inputs": {}, "artifacts": [{"size": 1}]}'])
def test_a_damaged_stamp_is_an_input_error_saying_what_to_do(hook, rp, content):
    hook.folder.mkdir(parents=True)
    (hook.folder / "sgl-kernel.json").write_bytes(content)
    with pytest.raises(InputError) as err:
        hook.up_to_date(rp)
    assert "sgl-kernel.json" in str(err.value)
    assert err.value.hint == "remove it: the next build of the recipe then runs in full and writes a new one"


def test_an_unreadable_stamp_names_it_a_build_stamp(hook, rp):
    hook.folder.mkdir(parents=True)
    (hook.folder / "sgl-kernel.json").write_bytes(b'{"run_id": "\xff"}')
    with pytest.raises(InputError, match="cannot read build stamp") as err:
        hook.up_to_date(rp)
    assert err.value.hint.startswith("remove it: the next build")


# --------------------------------------------------------------------------- the machine


def test_without_a_machine_from_the_plan_it_is_probed_once_when_a_build_asks(settings, rp, tmp_path, target,
                                                                               installs, monkeypatch):
    from rebuilt.build import builder

    probed = []
    monkeypatch.setattr(builder, "probe", lambda s: probed.append(s) or _machine(nvcc="12.8"))
    hook = _hook(settings, tmp_path, machine=None)
    assert probed == []
    _built(hook, rp, [])
    assert hook.up_to_date(rp) == "inputs unchanged since run-1"
    assert probed == [settings]
    assert stamps.read_stamp(hook.folder / "sgl-kernel.json")["inputs"]["toolchain"]["nvcc"] == "12.8"


def test_a_machine_from_the_plan_is_used_without_probing_again(settings, rp, tmp_path, target, installs, monkeypatch):
    from rebuilt.build import builder

    monkeypatch.setattr(builder, "probe", lambda s: pytest.fail("probed again although the plan gave its machine"))
    hook = _hook(settings, tmp_path, machine=_machine(nvcc="13.0"))
    _built(hook, rp, [])
    assert stamps.read_stamp(hook.folder / "sgl-kernel.json")["inputs"]["toolchain"]["nvcc"] == "13.0"


# --------------------------------------------------------------------------- --explain --dry-run


def test_explain_dry_with_force_says_it_rebuilds(settings, rp, tmp_path, target, installs):
    hook = _hook(settings, tmp_path, force=True)
    _built(hook, rp, [_wheel(tmp_path)])
    assert hook.explain_dry(rp) == "sgl-kernel: a real build rebuilds it (--force)"


def test_explain_dry_without_a_stamp(hook, rp):
    assert hook.explain_dry(rp) == "sgl-kernel: a real build builds it (no earlier successful build to compare with)"


def test_explain_dry_names_the_changed_inputs(hook, rp, settings):
    _built(hook, rp, [])
    rp.recipe.path.write_text("[source]\n# edited\n")
    settings.stack = SimpleNamespace(name="aiak")
    assert hook.explain_dry(rp) == "sgl-kernel: a real build rebuilds it, changed since the last build: recipe, stack"


def test_explain_dry_names_the_first_artifact_gone(hook, rp, tmp_path):
    kept, gone = _wheel(tmp_path), _wheel(tmp_path, "other-1.0-py3-none-any.whl")
    _built(hook, rp, [kept, gone])
    Path(gone["path"]).unlink()
    assert hook.explain_dry(rp) == f"sgl-kernel: a real build rebuilds it, artifact gone: {gone['path']}"


def test_explain_dry_when_the_package_is_not_installed_in_the_target(hook, rp, tmp_path, target, installs):
    _built(hook, rp, [_wheel(tmp_path)])
    target.dists["sgl-kernel"] = ("0.3.15", "k0")
    assert hook.explain_dry(rp) == (
        "sgl-kernel: inputs unchanged since run-1, but sgl-kernel is not installed in the target: a real build "
        "reinstalls the wheel it made (or rebuilds without one)")
    assert installs == []


def test_explain_dry_when_up_to_date_changes_nothing(hook, rp, tmp_path, installs):
    _built(hook, rp, [_wheel(tmp_path)])
    before = sorted(p.name for p in hook.folder.iterdir())
    assert hook.explain_dry(rp) == "sgl-kernel: up to date (inputs unchanged since run-1): a real build skips it"
    assert installs == [] and hook.console.lines == [] and sorted(p.name for p in hook.folder.iterdir()) == before
