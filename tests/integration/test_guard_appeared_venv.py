"""The guard's look at a real target environment: a protected distribution a step brought in where there was
none is kept when it matches the installed torch and really uninstalled when it does not; the requirements of
an installed distribution come from its metadata.

The target is a real venv whose site-packages the test writes by hand (metadata only: the guard never imports
torch); torch there shadows the one the tests run with. pip is the test interpreter's, seen through the venv's
.pth file; it only ever removes what the test wrote into the venv.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from rebuilt.build import guard
from rebuilt.errors import InputError
from tests.envs import make_venv

PROTECTED = ["torch", "torchvision", "torchaudio", "triton"]


@pytest.fixture
def venv(tmp_path):
    py = make_venv(tmp_path / "venv", with_pip=False)
    out = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True)
    return str(py), Path(out.stdout.strip())


def _install(site: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """A distribution as pip leaves it: a package folder and a .dist-info with METADATA and RECORD."""
    folder = name.replace("-", "_")  # as pip names the folders
    pkg = site / f"{folder}_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    meta = site / f"{folder}-{version}.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                   + "".join(f"Requires-Dist: {r}\n" for r in requires))
    (meta / "INSTALLER").write_text("pip\n")
    (meta / "RECORD").write_text(f"{folder}_pkg/__init__.py,,\n{meta.name}/METADATA,,\n{meta.name}/INSTALLER,,\n"
                                 f"{meta.name}/RECORD,,\n")
    return meta


def test_a_triton_that_torch_does_not_name_is_removed_from_the_target(venv):
    py, site = venv
    _install(site, "torch", "2.8.0", ("triton==3.4.0; platform_system == 'Linux'", "filelock"))
    before = guard.snapshot(py, PROTECTED)
    assert set(before) == {"torch"}
    meta = _install(site, "triton", "3.3.1")  # what a step's requirement pulled in
    after = guard.snapshot(py, PROTECTED)
    assert guard.diff(before, after) == ["triton"] and not guard.appeared_matches("triton", before, after)

    said = guard.remove_appeared(py, "triton", after)
    assert said == ("it was not installed before and does not match torch (torch 2.8.0 requires triton==3.4.0: "
                    "wanted triton==3.4.0); uninstalled")
    assert not meta.exists() and not (site / "triton_pkg").exists()
    assert guard.snapshot(py, PROTECTED) == before


def test_the_triton_torch_names_is_kept(venv):
    py, site = venv
    _install(site, "torch", "2.8.0", ("triton==3.4.0; platform_system == 'Linux'",))
    before = guard.snapshot(py, PROTECTED)
    _install(site, "triton", "3.4.0")
    assert guard.appeared_matches("triton", before, guard.snapshot(py, PROTECTED))


def test_a_failed_uninstall_is_said_and_the_distribution_stays(venv, tmp_path):
    py, site = venv
    _install(site, "torch", "2.8.0")
    meta = _install(site, "torchvision", "0.22.0")
    (meta / "RECORD").unlink()  # pip cannot uninstall what it has no file list of
    after = guard.snapshot(py, PROTECTED)
    said = guard.remove_appeared(py, "torchvision", after)
    assert said.startswith("it was not installed before and does not match torch "
                           "(torchvision 0.23 pairs with torch 2.8: wanted torchvision==0.23.0); uninstalling it failed")
    assert said.endswith(": pip uninstall -y torchvision") and meta.is_dir()


def test_the_requirements_of_an_installed_distribution_are_its_base_ones(venv):
    py, site = venv
    _install(site, "flashinfer-python", "0.4.1", ("numpy", "torch>=2.8", "pytest; extra == 'test'", "einops"))
    _install(site, "bare", "1.0")
    assert guard.installed_requirements(py, "flashinfer-python") == ["numpy", "torch>=2.8", "einops"]
    assert guard.installed_requirements(py, "bare") == []


def test_a_distribution_that_is_not_installed_is_named(venv):
    py, _ = venv
    with pytest.raises(InputError) as err:
        guard.installed_requirements(py, "no-such-distribution-x")
    message = str(err.value)
    assert message.startswith(f"no-such-distribution-x is not installed in {py}: ")
    assert message.endswith("No package metadata was found for no-such-distribution-x")
