"""``torch.backup``: a real wheel of an installed distribution, fast, never half-written.

The file list comes from the distribution's RECORD; byte-code caches and
installer-only files are left out; RECORD is written anew with sha256 and sizes;
the WHEEL tags are derived from the interpreter and the extension modules found
(``cp311-cp311-linux_x86_64``, or the original manylinux tag). The version in
the file name is exactly the installed one. The wheel is written under a
temporary name and renamed when complete.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

from rebuilt.errors import InputError
from rebuilt.util.fs import atomic_path, mark_cachedir, record_hash
from rebuilt.wheel.installed import Installed, query
from rebuilt.wheel.zipwriter import ZipWriter

SKIP_NAMES = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}


def escape(name: str) -> str:
    """Wheel file-name component: runs of non-alphanumerics (other than '.') become '_'."""
    return re.sub(r"[^\w\d.]+", "_", name, flags=re.UNICODE)


def wheel_tag(inst: Installed, files: list[str]) -> str:
    """python-abi-platform from the extension modules present (pure -> py3-none-any)."""
    exts = [f for f in files if f.endswith(".so") or ".so." in f or f.endswith(".pyd")]
    if not exts:
        return "py3-none-any"
    original = [ln.split(":", 1)[1].strip() for ln in (inst.wheel or "").splitlines() if ln.startswith("Tag:")]
    platform = inst.platform.replace("-", "_").replace(".", "_")
    for tag in original:  # keep a true, more precise platform tag (manylinux_2_28_x86_64) if the wheel had one
        py, abi, plat = tag.split("-")
        if plat.endswith(platform.split("_", 1)[-1]) and py == inst.py:
            platform = plat
            break
    versioned = [e for e in inst.ext_suffixes if e.startswith(".cpython")]
    abi = inst.py if any(v in f for f in exts for v in versioned) else "abi3" if any(".abi3." in f for f in exts) \
        else inst.py
    return f"{inst.py}-{abi}-{platform}"


def _members(inst: Installed) -> list[tuple[str, Path]]:
    """(archive name, file on disk) for each RECORD entry worth keeping."""
    site = Path(inst.site)
    dist_info = Path(inst.meta_dir).name
    data_dir = f"{dist_info[:-len('.dist-info')]}.data"
    out = []
    for row in csv.reader(io.StringIO(inst.record or "")):
        if not row or not row[0]:
            continue
        rel = row[0]
        if "__pycache__" in rel or rel.endswith(".pyc"):
            continue
        if rel.startswith(dist_info + "/") and rel.split("/", 1)[1] in SKIP_NAMES:
            continue
        path = (site / rel).resolve() if not os.path.isabs(rel) else Path(rel)
        if ".." in Path(rel).parts or os.path.isabs(rel):
            scripts = Path(inst.scripts).resolve()
            if path.parent == scripts:  # console scripts live outside site-packages
                out.append((f"{data_dir}/scripts/{path.name}", path))
            continue
        if path.is_file():
            out.append((rel, site / rel))
    return out


def backup(python: str, dist: str, outdir: Path | str, *, fast: bool = False, workers: int | None = None) -> Path:
    """Write ``<dist>-<version>-<tag>.whl`` of the installed ``dist`` into ``outdir``; returns its path."""
    inst = query(python, dist)
    if inst.editable:
        raise InputError(
            f"{inst.name} {inst.version} is an editable (setup.py develop) install from {inst.editable}: "
            f"its files live in the source tree, not in site-packages",
            hint=f"make a wheel instead: cd {inst.editable} && python setup.py bdist_wheel "
                 f"(or inv build.torch --set torch.mode=wheel)")
    if not inst.record or not inst.meta_dir or not inst.meta_dir.endswith(".dist-info"):
        raise InputError(f"{inst.name} {inst.version} has no RECORD; cannot know its files",
                         hint="reinstall it with pip from a wheel, or build a wheel from its source")
    members = _members(inst)
    tag = wheel_tag(inst, [m[0] for m in members])
    dist_info = Path(inst.meta_dir).name
    out = Path(mark_cachedir(outdir)) / f"{escape(inst.name)}-{inst.version.replace('-', '_')}-{tag}.whl"
    workers = workers or max(1, len(os.sched_getaffinity(0)))
    records = []
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        zw = ZipWriter(fh, level=1 if fast else 3, workers=workers)
        for arc, path in members:
            if arc == f"{dist_info}/WHEEL":
                continue
            with open(path, "rb") as src:
                digest, size = zw.add_file(arc, src, path.stat().st_mtime, path.stat().st_mode & 0o777)
            records.append((arc, record_hash(digest), str(size)))
        wheel_text = (f"Wheel-Version: 1.0\nGenerator: rebuilt backup\nRoot-Is-Purelib: "
                      f"{'true' if tag.startswith('py3') else 'false'}\nTag: {tag}\n")
        for arc, text in ((f"{dist_info}/WHEEL", wheel_text),):
            data = text.encode()
            zw.add_bytes(arc, data)
            import hashlib

            records.append((arc, record_hash(hashlib.sha256(data).digest()), str(len(data))))
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerows(records)
        writer.writerow((f"{dist_info}/RECORD", "", ""))
        zw.add_bytes(f"{dist_info}/RECORD", buf.getvalue().encode())
        zw.close()
        fh.flush()
        os.fsync(fh.fileno())
    return out


def backups_of(folder: Path | str, dist: str) -> list[Path]:
    """Backup wheels of ``dist`` in ``folder``, newest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"{escape(dist)}-*.whl"), key=lambda p: p.stat().st_mtime, reverse=True)


def find_backup(folder: Path | str, dist: str, version: str) -> Path | None:
    """The newest backup of exactly ``dist==version`` (versions compared normalised)."""
    from packaging.version import InvalidVersion, Version

    try:
        want = Version(version)
    except InvalidVersion:
        want = None
    for path in backups_of(folder, dist):
        found = path.name.split("-")[1]
        try:
            if (Version(found) == want) if want else found == version:
                return path
        except InvalidVersion:
            continue
    return None
