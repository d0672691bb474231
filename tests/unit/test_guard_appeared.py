"""A protected distribution a step brought in where there was none: kept when it matches torch, else removed
and explained; the requirements of an installed distribution; the messages users read when the guard cannot
go on. The target interpreter and pip are faked (tests/integration/test_guard_appeared_venv.py runs real ones).
"""

from __future__ import annotations

import subprocess

import pytest

from rebuilt.build import guard
from rebuilt.errors import ConfigError, InputError

TORCH = guard.DistState("2.8.0", "r", requires=("triton==3.4.0; platform_system == 'Linux'",))
CPU_TORCH = guard.DistState("2.13.0+cpu", "r")


def _answers(monkeypatch, rc=0, out="", err=""):
    """runner.capture faked: every command (pip, the target interpreter) answers rc/out/err; the argvs run are
    returned."""
    seen = []

    def capture(argv, **kw):
        seen.append(list(argv))
        return subprocess.CompletedProcess(argv, rc, out, err)

    monkeypatch.setattr(guard.runner, "capture", capture)
    return seen


# --- appeared_matches -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dist, version, ok", [
    ("triton", "3.4.0", True), ("triton", "3.3.1", False),
    ("torchvision", "0.23.0", True), ("torchvision", "0.22.0", False),
    ("torchaudio", "2.8.0", True), ("torchaudio", "2.7.0", False),
])
def test_an_appeared_companion_is_kept_only_at_the_version_matching_torch(dist, version, ok):
    before = {"torch": TORCH}
    after = {"torch": TORCH, dist: guard.DistState(version, "r2")}
    assert guard.appeared_matches(dist, before, after) is ok


def test_the_torch_after_the_step_decides_which_version_matches():
    """torch itself is in ``after``; an ``after`` without torch has nothing to match."""
    after = {"torch": CPU_TORCH, "torchvision": guard.DistState("0.28.0+cpu", "r2")}
    assert guard.appeared_matches("torchvision", {}, after) is True
    assert guard.appeared_matches("torchvision", {}, {"torchvision": guard.DistState("0.28.0+cpu", "r2")}) is False
    assert guard.appeared_matches("torchvision", {"torch": CPU_TORCH}, {**after, "torch": TORCH}) is False


def test_a_distribution_that_was_there_before_or_is_absent_after_did_not_appear():
    vision = guard.DistState("0.23.0", "r2")
    assert guard.appeared_matches("torchvision", {"torch": TORCH, "torchvision": vision},
                                  {"torch": TORCH, "torchvision": vision}) is False
    assert guard.appeared_matches("torchvision", {"torch": TORCH}, {"torch": TORCH}) is False
    assert guard.appeared_matches("torchvision", {"torch": TORCH, "torchvision": vision}, {"torch": TORCH}) is False


# --- remove_appeared --------------------------------------------------------------------------------------------

def test_an_appeared_mismatch_is_uninstalled_from_the_target_and_the_reason_given(monkeypatch):
    seen = _answers(monkeypatch, out="Successfully uninstalled triton-3.3.1")
    after = {"torch": TORCH, "triton": guard.DistState("3.3.1", "r2")}
    said = guard.remove_appeared("/envs/t/bin/python", "triton", after)
    assert said == ("it was not installed before and does not match torch (torch 2.8.0 requires triton==3.4.0: "
                    "wanted triton==3.4.0); uninstalled")
    assert seen == [["/envs/t/bin/python", "-m", "pip", "uninstall", "-y", "triton"]]


def test_an_appeared_companion_without_torch_says_so_and_a_failed_uninstall_is_reported(monkeypatch):
    seen = _answers(monkeypatch, rc=1, err="ERROR: Cannot uninstall torchvision 0.23.0, RECORD file not found.")
    said = guard.remove_appeared("/p", "torchvision", {"torchvision": guard.DistState("0.23.0", "r2")})
    assert said.startswith("it was not installed before and does not match torch "
                           "(torch is not installed, so no version is known to match); uninstalling it failed (")
    assert "RECORD file not found" in said and said.endswith("pip uninstall -y torchvision")
    assert seen == [["/p", "-m", "pip", "uninstall", "-y", "torchvision"]]


# --- installed_requirements ---------------------------------------------------------------------------------------

def test_installed_requirements_are_the_base_ones_from_the_interpreters_last_line(monkeypatch):
    seen = _answers(monkeypatch, out='a warning first\n["numpy>=1.26", "pytest; extra == \'test\'", "einops"]\n')
    assert guard.installed_requirements("/envs/t/bin/python", "flashinfer-python") == ["numpy>=1.26", "einops"]
    assert seen[0][0] == "/envs/t/bin/python" and seen[0][-1] == "flashinfer-python"  # asked of the target


def test_a_distribution_without_requirements_has_none(monkeypatch):
    _answers(monkeypatch, out="[]\n")
    assert guard.installed_requirements("/p", "six") == []


def test_a_distribution_that_is_not_installed_is_named_with_the_interpreters_error(monkeypatch):
    _answers(monkeypatch, rc=1, err="importlib.metadata.PackageNotFoundError: No package metadata was found for nope\n")
    with pytest.raises(InputError) as err:
        guard.installed_requirements("/envs/t/bin/python", "nope")
    assert str(err.value) == ("nope is not installed in /envs/t/bin/python: "
                              "importlib.metadata.PackageNotFoundError: No package metadata was found for nope")


# --- what users read ------------------------------------------------------------------------------------------------

def test_an_interpreter_that_cannot_be_inspected_gets_the_whole_hint(monkeypatch):
    _answers(monkeypatch, rc=1, err="Segmentation fault")
    with pytest.raises(ConfigError) as err:
        guard.snapshot("/envs/t/bin/python", ["torch"])
    assert err.value.render() == (
        "cannot inspect the target interpreter /envs/t/bin/python: Segmentation fault\n"
        "  -> give --python (or the python setting) a working Python 3 interpreter of the target environment")


def test_a_folder_that_is_neither_a_project_nor_a_wheel_is_told_to_build_a_wheel(tmp_path):
    with pytest.raises(InputError) as err:
        guard.project_requirements(tmp_path)
    assert err.value.render() == (f"{tmp_path}: no pyproject.toml with [project].dependencies and not a wheel\n"
                                  "  -> build a wheel (setup.py bdist_wheel) and install it through the guard")


def test_without_torch_no_companion_version_is_known():
    assert guard.companion_pin("torchvision", None) == (None, "torch is not installed, so no version is known to match")


def test_the_triton_reason_names_torchs_requirement_without_its_marker():
    assert guard.companion_pin("triton", TORCH) == ("3.4.0", "torch 2.8.0 requires triton==3.4.0")
    plain = guard.DistState("2.8.0", "r", requires=("triton==3.4.0",))
    assert guard.companion_pin("triton", plain) == ("3.4.0", "torch 2.8.0 requires triton==3.4.0")


@pytest.mark.parametrize("version, vision, audio", [("2.8", "0.23.0", "2.8.0"), ("2.9+cu126", "0.24.0+cu126",
                                                                               "2.9.0+cu126")])
def test_a_torch_version_of_two_parts_pairs_with_patch_release_zero(version, vision, audio):
    torch = guard.DistState(version, "r")
    assert guard.companion_pin("torchvision", torch)[0] == vision
    assert guard.companion_pin("torchaudio", torch)[0] == audio
