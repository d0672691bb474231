"""Tiny wheels written by the tests (a local package index for pip): name, version, Requires-Dist, one module."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def wheel_of_files(folder: Path, name: str, version: str, files: dict[str, str | bytes], requires=(),
                   algo: str = "sha256", extra=()) -> Path:
    """``<name>-<version>-py3-none-any.whl`` holding ``files``, a RECORD hashed with ``algo`` (a weak one for
    the tests that must see it refused), and ``extra`` (path, data) members left out of RECORD (broken wheels)."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    members = {arc: data.encode() if isinstance(data, str) else data for arc, data in files.items()}
    members[f"{info}/METADATA"] = ("Metadata-Version: 2.1\n" f"Name: {name}\nVersion: {version}\n"
                                   + "".join(f"Requires-Dist: {r}\n" for r in requires) + "\n").encode()
    members[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n\n"
    record = []
    for arc, data in members.items():
        digest = base64.urlsafe_b64encode(hashlib.new(algo, data).digest()).rstrip(b"=").decode()
        record.append(f"{arc},{algo}={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for arc, data in members.items():
            zf.writestr(arc, data)
        zf.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
        for arc, data in extra or ():
            zf.writestr(arc, data)
    return path


def make_wheel(folder: Path, name: str, version: str, requires: list[str] = (), module: str | None = None,
               code: str = "") -> Path:
    """``<name>-<version>-py3-none-any.whl`` in ``folder``; ``module`` (default: the name) holds ``code``."""
    module = module or name.replace("-", "_")
    return wheel_of_files(folder, name, version, {f"{module}/__init__.py": code or f"__version__ = {version!r}\n",
                                                  f"{name.replace('-', '_')}-{version}.dist-info/top_level.txt":
                                                  f"{module}\n"}, requires)
