"""Environments the tests make: exactly what they need, whatever interpreter runs the tests.

``make_venv`` creates a virtualenv with pip whose only view beyond itself is the site-packages of
the interpreter running the tests (a ``.pth`` file), which the test extra fills: torch 2.13.0
(CPU), uv, wheel, setuptools, scikit-build-core, ninja. It works the same when the tests run in
nox's own virtualenv (``nox -s tests``) or in any other interpreter; ``system_site_packages``
would instead expose the *base* interpreter, which holds none of those inside a virtualenv.
A package installed into the new environment (a torch a test replaces) shadows the parent's.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import os
import shutil
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
    venv.EnvBuilder(system_site_packages=False, with_pip=False, symlinks=True).create(path)
    py = path / "bin" / "python"
    site = next((path / "lib").glob("python3*/site-packages"))
    if with_pip:
        _copy_pip(site, path / "bin")
    (site / "_rebuilt_tests_parent.pth").write_text("\n".join(parent_site()) + "\n")
    _link_scripts(path / "bin")
    return py


_PIP_TEMPLATE: list[Path] = []


def _pip_template() -> Path:
    """A virtualenv made once per test process with ``ensurepip`` (what ``with_pip=True`` runs: about
    12 s on a loaded 2-core machine, for each of many environments)."""
    if not _PIP_TEMPLATE:
        root = Path(tempfile.mkdtemp(prefix="rebuilt-tests-pip-")) / "venv"
        venv.EnvBuilder(system_site_packages=False, with_pip=True, symlinks=True).create(root)
        atexit.register(shutil.rmtree, root.parent, True)
        _PIP_TEMPLATE.append(root)
    return _PIP_TEMPLATE[0]


def _copy_pip(site: Path, bin_dir: Path) -> None:
    """What ``ensurepip`` installs (pip, setuptools and their .pth), copied from the template, with the
    pip scripts' first line and their RECORD rows written for this environment."""
    template = _pip_template()
    tsite = next((template / "lib").glob("python3*/site-packages"))
    for entry in tsite.iterdir():
        (shutil.copytree if entry.is_dir() else shutil.copy2)(entry, site / entry.name)
    hashes = {}
    for script in (template / "bin").glob("pip*"):
        first, rest = script.read_bytes().split(b"\n", 1)  # "#!<template>/bin/python3.X"
        text = b"#!" + str(bin_dir / first.rsplit(b"/", 1)[1].decode()).encode() + b"\n" + rest
        (bin_dir / script.name).write_bytes(text)
        (bin_dir / script.name).chmod(0o755)
        digest = base64.urlsafe_b64encode(hashlib.sha256(text).digest()).rstrip(b"=").decode()
        hashes[f"../../../bin/{script.name}"] = f"sha256={digest},{len(text)}"
    for record in site.glob("pip-*.dist-info/RECORD"):
        rows = record.read_bytes().decode().splitlines(keepends=True)
        for i, row in enumerate(rows):
            name, _, rest = row.partition(",")
            if name in hashes:
                rows[i] = f"{name},{hashes[name]}{rest[len(rest.rstrip()):]}"
        record.write_bytes("".join(rows).encode())


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
