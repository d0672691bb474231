"""Requirements split by normalised name (not substring), and pip's 'Collecting' lines read for the culprit."""

from __future__ import annotations

import zipfile

import pytest

from rebuilt.build import guard
from rebuilt.build.features.protect import culprit
from rebuilt.errors import ConfigError, InputError


def test_split_by_normalised_name_not_substring():
    reqs = ["torch==2.8.0", "TorchAudio == 2.8.0", "torchvision", "torchao==0.9.0", "pytorch-triton-rocm",
            "xformers==0.0.28.post3; platform_system == 'Linux'", "Triton>=3"]
    kept, dropped = guard.split_requirements(reqs, {"torch", "torchaudio", "torchvision", "triton"})
    assert dropped == ["torch==2.8.0", "TorchAudio == 2.8.0", "torchvision", "Triton>=3"]
    assert kept == ["torchao==0.9.0", "pytorch-triton-rocm", "xformers==0.0.28.post3; platform_system == 'Linux'"]


def test_invalid_requirement_is_named():
    with pytest.raises(ConfigError, match="invalid requirement 'torch=>2'"):
        guard.split_requirements(["torch=>2"], {"torch"})


def test_project_requirements_from_pyproject_and_wheel(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["torch==2.8.0", "packaging"]\n')
    assert guard.project_requirements(tmp_path) == ["torch==2.8.0", "packaging"]
    whl = tmp_path / "x-1.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr("x-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: x\nVersion: 1.0\n"
                    "Requires-Dist: torch==2.5.1\nRequires-Dist: pytest; extra == 'test'\n\n")
    assert guard.project_requirements(whl) == ["torch==2.5.1"]
    with pytest.raises(InputError, match="not a wheel"):
        guard.project_requirements(tmp_path / "nothing-here")


def test_constraints_and_diff():
    a = {"torch": guard.DistState("2.8.0a0+git5228986", "r1")}
    assert guard.constraints_text(a).splitlines()[-1] == "torch==2.8.0a0+git5228986"
    assert guard.diff(a, a) == []
    assert guard.diff(a, {"torch": guard.DistState("2.5.1", "r2")}) == ["torch"]
    assert guard.diff(a, {"torch": guard.DistState("2.8.0a0+git5228986", "r3")}) == ["torch"]  # files changed
    assert guard.diff(a, {}) == ["torch"]


def test_culprit_from_pip_log(tmp_path):
    log = tmp_path / "step.log"
    log.write_text("Processing ./dist/foo-1.0.whl\nCollecting torch==2.5.1 (from foo==1.0)\n  Downloading ...\n")
    assert culprit(log, "torch") == "foo==1.0"
    assert culprit(log, "triton") is None
