"""Environments the tests make: exactly what they need, whatever interpreter runs the tests.

``make_venv`` creates a virtualenv with pip whose only view beyond itself is the site-packages of
the interpreter running the tests (a ``.pth`` file), which the test extra fills: torch 2.13.0
(CPU), uv, wheel, setuptools, scikit-build-core, ninja. It works the same when the tests run in
nox's own virtualenv (``nox -s tests``) or in any other interpreter; ``system_site_packages``
would instead expose the *base* interpreter, which holds none of those inside a virtualenv.
A package installed into the new environment (a torch a test replaces) shadows the parent's.
"""

from __future__ import annotations

import os
import sysconfig
import tempfile
import venv
from pathlib import Path


def parent_site() -> list[str]:
    paths = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    return list(dict.fromkeys(p for p in paths if os.path.isdir(p)))


def make_venv(path: Path, with_pip: bool = True) -> Path:
    """Create ``path`` as a virtualenv that sees this interpreter's packages and holds their tools; returns
    its python."""
    venv.EnvBuilder(system_site_packages=False, with_pip=with_pip, symlinks=True).create(path)
    py = path / "bin" / "python"
    site = next((path / "lib").glob("python3*/site-packages"))
    (site / "_rebuilt_tests_parent.pth").write_text("\n".join(parent_site()) + "\n")
    _link_scripts(path / "bin")
    return py


# The executables of the packages seen through the .pth, which an environment that installed them would
# hold in its own bin/ (sgl-kernel's Makefile runs `uv build` with the target's bin/ first on PATH).
SCRIPTS = ("uv", "uvx", "ninja", "cmake")


def _link_scripts(bin_dir: Path) -> None:
    """Link this interpreter's ``SCRIPTS`` into ``bin_dir``: found whatever PATH started the tests."""
    parent_bin = Path(sysconfig.get_paths()["scripts"])
    for name in SCRIPTS:
        if (parent_bin / name).is_file() and not (bin_dir / name).exists():
            (bin_dir / name).symlink_to(parent_bin / name)


_HOOK: list[str] = []


def pythonpath_env() -> dict[str, str]:
    """For environments a tool makes itself (nox's): PYTHONPATH names a folder whose sitecustomize.py
    appends this interpreter's site-packages *after* the environment's own, as the .pth of make_venv
    does (this interpreter's pip or torch never shadows what the environment installs itself)."""
    if not _HOOK:
        folder = tempfile.mkdtemp(prefix="rebuilt-tests-site-")
        Path(folder, "sitecustomize.py").write_text(
            "import site\n" + "".join(f"site.addsitedir({p!r})\n" for p in parent_site()))
        _HOOK.append(folder)
    return {"PYTHONPATH": _HOOK[0]}
