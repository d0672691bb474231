"""An installer stopped while writing a wheel's .dist-info leaves a folder without a readable Name.

importlib.metadata returns whichever folder of the name it lists first, so such a leftover beside the
real torch used to make every later look at torch fail (``'NoneType' object has no attribute 'lower'``).
The target interpreter here is a real venv with a hand-made site-packages: no pip needed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from rebuilt.build import guard
from rebuilt.build.wheel import installed, restore
from rebuilt.errors import InputError
from tests.envs import make_venv


def _site(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


@pytest.fixture
def venv(tmp_path):
    py = make_venv(tmp_path / "venv", with_pip=False)
    return py, _site(py)


def _info(site: Path, version: str = "1.0"):
    from rebuilt.build.wheel.verify import WheelInfo

    return WheelInfo(path=site / f"demo-{version}-py3-none-any.whl", name="demo", version=version,
                     dist_info=f"demo-{version}.dist-info", record={})


def _whole(site: Path, version: str) -> None:
    (site / "demo").mkdir(exist_ok=True)
    (site / "demo" / "__init__.py").write_text(f"__version__ = {version!r}\n")
    meta = site / f"demo-{version}.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: demo\nVersion: {version}\n")
    (meta / "RECORD").write_text(f"demo/__init__.py,,\ndemo-{version}.dist-info/METADATA,,\n")


def test_the_whole_distribution_is_found_and_the_half_written_one_named_then_removed(venv):
    py, site = venv
    _whole(site, "1.0")
    half = site / "demo-2.0.dist-info"
    half.mkdir()
    (half / "INSTALLER").write_text("pip\n")  # pip writes METADATA later; stopped before it

    inst = installed.query(str(py), "demo")
    assert (inst.version, inst.broken) == ("1.0", [str(half)])
    assert guard.snapshot(str(py), ["demo"])["demo"].version == "1.0"

    assert restore.remove_stray_metadata(inst, _info(site)) == ["demo-2.0.dist-info"]
    assert not half.exists() and (site / "demo-1.0.dist-info").is_dir()
    assert installed.query(str(py), "demo").broken == []


def test_only_a_half_written_folder_is_a_clear_error_not_a_traceback(venv):
    py, site = venv
    (site / "demo-2.0.dist-info").mkdir()
    with pytest.raises(InputError) as err:
        installed.query(str(py), "demo")
    assert "half-written" in err.value.render() and "demo-2.0.dist-info" in str(err.value)
    assert guard.snapshot(str(py), ["demo"]) == {}


def test_a_half_written_folder_outside_the_site_of_the_whole_one_is_left_alone(venv, tmp_path):
    py, site = venv
    _whole(site, "1.0")
    inst = installed.query(str(py), "demo")
    other = tmp_path / "elsewhere" / "demo-3.0.dist-info"
    other.mkdir(parents=True)
    inst.broken = [str(other)]
    assert restore.remove_stray_metadata(inst, _info(site)) == [] and other.is_dir()


def test_another_versions_metadata_left_beside_the_restored_one_is_removed(venv):
    """pip stopped while installing 2.0 left a whole ``demo-2.0.dist-info``; the restore of 1.0 removes it."""
    py, site = venv
    _whole(site, "1.0")
    _whole(site, "2.0")
    info = _info(site)
    assert restore.remove_stray_metadata(installed.query(str(py), "demo"), info) == ["demo-2.0.dist-info"]
    assert (site / "demo-1.0.dist-info").is_dir() and installed.query(str(py), "demo").version == "1.0"
    odd = site / "Demo-not.a.version.dist-info"  # whole (it has a Name), but its folder's version is unreadable
    odd.mkdir()
    (odd / "METADATA").write_text("Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
    assert restore.remove_stray_metadata(installed.query(str(py), "demo"), info) == [] and odd.is_dir()  # not readable: not ours
