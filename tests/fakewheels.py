"""Tiny wheels written by the tests (a local package index for pip): name, version, Requires-Dist, one module."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def make_wheel(folder: Path, name: str, version: str, requires: list[str] = (), module: str | None = None,
               code: str = "") -> Path:
    """``<name>-<version>-py3-none-any.whl`` in ``folder``; ``module`` (default: the name) holds ``code``."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    module = module or dist
    files = {
        f"{module}/__init__.py": (code or f"__version__ = {version!r}\n").encode(),
        f"{info}/METADATA": ("Metadata-Version: 2.1\n"
                             f"Name: {name}\nVersion: {version}\n"
                             + "".join(f"Requires-Dist: {r}\n" for r in requires) + "\n").encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n\n",
        f"{info}/top_level.txt": f"{module}\n".encode(),
    }
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for arc, data in files.items():
            zf.writestr(arc, data)
        record = "\n".join(_record_line(a, d) for a, d in files.items()) + f"\n{info}/RECORD,,\n"
        zf.writestr(f"{info}/RECORD", record)
    return path
