"""``torch.backup``: a real wheel of an installed distribution, fast, never half-written.

The file list comes from the distribution's RECORD; byte-code caches and
installer-only files are left out; RECORD is written anew with sha256 and sizes;
the WHEEL tags are the installed WHEEL's when they are true for these files and
this interpreter (``cp311-cp311-manylinux_2_28_x86_64``), else derived from the
interpreter and the extension modules found (``cp311-cp311-linux_x86_64``). The
version in the file name is exactly the installed one (``…nv25.06`` stays
``…nv25.06``; pip compares versions normalised, so it installs and the restored
METADATA reports the same string). The wheel is written under a temporary name
and renamed when complete.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import itertools
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rebuilt.build.wheel.installed import Installed, query
from rebuilt.build.wheel.zipwriter import ZipWriter, engine
from rebuilt.core.fs import atomic_path, mark_cachedir, record_hash
from rebuilt.errors import InputError

SKIP_NAMES = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}
# The deflate engine and level: rebuilt/build/wheel/zipwriter.engine (ISA-L when installed).
STALE_EMPTY_S = 60  # an empty unlocked .part younger than this may be a backup about to lock it


def escape_name(name: str) -> str:
    """Distribution name as a wheel file name component: runs of ``-_.`` become ``_``, lower case."""
    return re.sub(r"[-_.]+", "_", name).lower()


def escape_version(version: str) -> str:
    """The installed version, exactly (only a ``-``, never valid in PEP 440 anyway, becomes ``_``)."""
    return version.replace("-", "_")


def _is_extension(name: str, suffixes: list[str]) -> bool:
    return name.endswith(tuple(suffixes)) or name.endswith((".so", ".pyd", ".dylib")) or ".so." in name


def _consistent(tag: str, inst: Installed, derived_platform: str) -> bool:
    """Is a tag of the installed WHEEL true for these files on this interpreter?"""
    from packaging.tags import parse_tag

    family = derived_platform.split("_", 1)[0]
    arch = derived_platform[len("linux_"):] if family == "linux" else derived_platform.rsplit("_", 1)[-1]
    for t in parse_tag(tag):
        if t.platform == "any" or not t.platform.endswith(arch):
            return False
        if family == "linux" and not t.platform.startswith(("linux", "manylinux", "musllinux")):
            return False
        if family != "linux" and not t.platform.startswith(family):
            return False
        if t.interpreter != inst.py and t.abi != "abi3":
            return False
    return True


def wheel_tags(inst: Installed, files: list[str]) -> list[str]:
    """The tags to write: the original ones when true, else python-abi-platform from what is here."""
    exts = [f for f in files if _is_extension(f, inst.ext_suffixes)]
    original = [ln.split(":", 1)[1].strip() for ln in (inst.wheel or "").splitlines() if ln.startswith("Tag:")]
    if not exts:
        return original if original and all(t.endswith("-any") for t in original) else ["py3-none-any"]
    platform = re.sub(r"[-.]", "_", inst.platform)
    if original and all(_consistent(t, inst, platform) for t in original):
        return original
    versioned = [s for s in inst.ext_suffixes if s.startswith(".cpython")]
    if any(f.endswith(tuple(versioned)) for f in exts) or not any(".abi3." in f for f in exts):
        abi = inst.py  # a version-specific module, or libraries only: true for this interpreter
    else:
        abi = "abi3"
    return [f"{inst.py}-{abi}-{platform}"]


def file_tag(tags: list[str]) -> tuple[str, list[str]]:
    """(file-name tag, WHEEL tags): a compressed tag set when the tags are a full product, else the first."""
    parts = [t.split("-") for t in tags]
    sets = [sorted({p[i] for p in parts}) for i in range(3)]
    if {tuple(p) for p in parts} == set(itertools.product(*sets)):
        return "-".join(".".join(s) for s in sets), tags
    return tags[0], tags[:1]


def _members(inst: Installed) -> tuple[list[tuple[str, Path]], list[str], list[str]]:
    """(archive name, file on disk) for each RECORD entry worth keeping; plus missing and skipped entries."""
    site = Path(inst.site)
    dist_info = Path(inst.meta_dir).name
    data_dir = f"{dist_info[:-len('.dist-info')]}.data"
    scripts, data = Path(inst.scripts).resolve(), Path(inst.data).resolve()
    out, missing, skipped = [], [], []
    for row in csv.reader(io.StringIO(inst.record or "")):
        if not row or not row[0]:
            continue
        rel = row[0]
        if "__pycache__" in rel.split("/") or rel.endswith((".pyc", ".pyo")):
            continue
        if rel.startswith(dist_info + "/") and rel.split("/", 1)[1] in SKIP_NAMES:
            continue
        if ".." in Path(rel).parts or os.path.isabs(rel):
            path = Path(rel) if os.path.isabs(rel) else (site / rel).resolve()
            if path.parent == scripts:  # console scripts (pip regenerates entry-point wrappers anyway)
                arc = f"{data_dir}/scripts/{path.name}"
            elif path.is_relative_to(data):  # anything else under the prefix: the data scheme puts it back
                arc = f"{data_dir}/data/{path.relative_to(data).as_posix()}"
            else:
                skipped.append(rel)
                continue
        else:
            arc, path = rel, site / rel
        if path.is_file():
            out.append((arc, path))
        else:
            missing.append(rel)
    out.sort(key=lambda m: m[0].startswith(dist_info + "/"))  # .dist-info last, as the wheel spec advises
    return out, missing, skipped


def _refuse_editable(inst: Installed) -> None:
    if inst.editable:
        raise InputError(
            f"{inst.name} {inst.version} is an editable (pip install -e / setup.py develop) install "
            f"({inst.editable}): its files live in the source tree, not in site-packages, so no backup "
            f"of it can be made from the environment",
            hint="make a wheel instead: cd <its source tree> && python setup.py bdist_wheel "
                 "(or pip wheel --no-deps --no-build-isolation .), and keep dist/*.whl")
    if not inst.record or not inst.meta_dir or not inst.meta_dir.endswith(".dist-info"):
        raise InputError(f"{inst.name} {inst.version} has no RECORD (an egg or distutils install): "
                         f"its files are not listed anywhere",
                         hint="reinstall it from a wheel with pip, or build a wheel from its source "
                              "(python setup.py bdist_wheel)")


def clean_stale(folder: Path | str, dist: str | None = None) -> list[Path]:
    """Remove ``.part`` files of backups that were killed (no live writer holds their lock); returns them.

    A writer holds an exclusive flock on its ``.part`` file for as long as it writes, so a
    file whose lock can be taken belongs to a dead process. An empty one is left for
    STALE_EMPTY_S, the instant between its creation and its lock.
    """
    folder = Path(folder)
    pattern = f".{escape_name(dist)}-*.part" if dist else ".*.whl.*.part"
    removed = []
    for part in folder.glob(pattern) if folder.is_dir() else []:
        try:
            with open(part, "rb") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a backup is writing it now
                st = os.fstat(f.fileno())
                if st.st_size == 0 and time.time() - st.st_mtime < STALE_EMPTY_S:
                    continue
                part.unlink()
                removed.append(part)
        except OSError:
            pass
    return removed


def _warn(message: str) -> None:
    print(f"rebuilt: warning: {message}", file=sys.stderr)


def backup(python: str, dist: str, outdir: Path | str, *, fast: bool = False, workers: int | None = None,
           warn: Callable[[str], None] = _warn) -> Path:
    """Write ``<dist>-<version>-<tags>.whl`` of the installed ``dist`` into ``outdir``; returns its path."""
    inst = query(python, dist)
    _refuse_editable(inst)
    members, missing, skipped = _members(inst)
    if missing:
        warn(f"{len(missing)} file(s) listed in {inst.name}'s RECORD are missing and not in the backup, "
             f"e.g. {missing[0]}")
    if skipped:
        warn(f"{len(skipped)} file(s) outside the environment are not in the backup, e.g. {skipped[0]}")
    tag, tags = file_tag(wheel_tags(inst, [m[0] for m in members]))
    dist_info = Path(inst.meta_dir).name
    stem = escape_name(inst.name)
    folder = mark_cachedir(outdir)
    clean_stale(folder, inst.name)
    out = folder / f"{stem}-{escape_version(inst.version)}-{tag}.whl"
    workers = workers or max(1, len(os.sched_getaffinity(0)))
    wheel_text = "".join([f"Wheel-Version: 1.0\nGenerator: rebuilt backup\nRoot-Is-Purelib: "
                          f"{'true' if tag.endswith('-any') else 'false'}\n"] + [f"Tag: {t}\n" for t in tags])
    records = []
    with contextlib.ExitStack() as held, atomic_path(out) as tmp, open(tmp, "wb") as fh:
        # A lock on the .part, held until it is renamed: clean_stale leaves a live backup's file alone.
        fcntl.flock(held.enter_context(open(tmp, "rb")), fcntl.LOCK_EX)
        zw = ZipWriter(fh, engine(fast), workers=workers)
        try:
            for arc, path in members:
                if arc == f"{dist_info}/WHEEL":
                    continue
                with open(path, "rb") as src:
                    st = os.fstat(src.fileno())
                    digest, size = zw.add_file(arc, src, st.st_mtime, st.st_mode & 0o777)
                records.append((arc, record_hash(digest), str(size)))
            data = wheel_text.encode()
            zw.add_bytes(f"{dist_info}/WHEEL", data)
            records.append((f"{dist_info}/WHEEL", record_hash(hashlib.sha256(data).digest()), str(len(data))))
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerows(records)
            writer.writerow((f"{dist_info}/RECORD", "", ""))
            zw.add_bytes(f"{dist_info}/RECORD", buf.getvalue().encode())
        except BaseException:
            zw.abort()
            raise
        zw.close()
        fh.flush()
        os.fsync(fh.fileno())
    return out


def backups_of(folder: Path | str, dist: str) -> list[Path]:
    """Backup wheels of ``dist`` in ``folder``, newest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"{escape_name(dist)}-*.whl"), key=lambda p: p.stat().st_mtime, reverse=True)


def find_backup(folder: Path | str, dist: str, version: str) -> Path | None:
    """The newest backup of exactly ``dist==version`` (versions compared as pip compares them)."""
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
