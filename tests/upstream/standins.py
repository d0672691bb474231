"""Clearly named stand-ins for pinned requirements that the package index here does not have.

flashinfer-python 0.4.1 pins ``apache-tvm-ffi==0.1.0b15`` (a pre-release) as a build and a runtime
requirement; the index reachable from this machine has 0.1.0 and later, not 0.1.0b15. The stand-in is
the real ``apache-tvm-ffi 0.1.0`` wheel re-labelled ``0.1.0b15+standin.from.0.1.0``: PEP 440 lets that
local version satisfy ``==0.1.0b15``, the label says what it is in ``pip list`` and in every log, and
its files are the nearest real release's. Tests call ``tvm_ffi_findlinks()`` only after checking
that pip cannot find the real pin (``sdists.pip_has``), and say so.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.upstream.sdists import CACHE

PINNED = "apache-tvm-ffi==0.1.0b15"
NEAREST = "0.1.0"
LABEL = f"0.1.0b15+standin.from.{NEAREST}"


def _record(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def tvm_ffi_findlinks() -> Path:
    """A folder for PIP_FIND_LINKS holding the stand-in wheel (built once, cached)."""
    folder = CACHE / "wheels" / "standins"
    done = list(folder.glob(f"apache_tvm_ffi-{LABEL}-*.whl"))
    if done:
        return folder
    real_dir = CACHE / "wheels" / "real"
    real = list(real_dir.glob(f"apache_tvm_ffi-{NEAREST}-*.whl"))
    if not real:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", f"apache-tvm-ffi=={NEAREST}",
                        "-d", str(real_dir)], check=True)
        real = list(real_dir.glob(f"apache_tvm_ffi-{NEAREST}-*.whl"))
    src = real[0]
    old_info, new_info = f"apache_tvm_ffi-{NEAREST}.dist-info", f"apache_tvm_ffi-{LABEL}.dist-info"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / src.name.replace(f"-{NEAREST}-", f"-{LABEL}-")
    tmp = target.with_suffix(".part")
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
        records = []
        for item in zin.infolist():
            if item.filename.endswith("/") or item.filename == f"{old_info}/RECORD":
                continue
            data = zin.read(item)
            name = item.filename.replace(old_info + "/", new_info + "/", 1)
            if name == f"{new_info}/METADATA":
                data = data.replace(f"\nVersion: {NEAREST}\n".encode(), f"\nVersion: {LABEL}\n".encode(), 1)
            zout.writestr(name, data)
            records.append(_record(name, data))
        zout.writestr(f"{new_info}/RECORD", "\n".join(records) + f"\n{new_info}/RECORD,,\n")
    tmp.replace(target)
    return folder
