"""The bundle file: a tar (uncompressed: git bundles and wheels are compressed already) whose first
member is ``manifest.json`` (format, what was bundled, sha256 and size of every other member).

Reading refuses what could write outside the target folder (absolute paths, ``..``, links, devices)
and any member whose bytes do not match the manifest: exit 2 naming the member.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path, PurePosixPath

from rebuilt.core import shape
from rebuilt.core.fs import atomic_path, sha256_file
from rebuilt.errors import InputError
from rebuilt.tools.bundle import shapes

FORMAT = "rebuilt-bundle"
VERSION = 1
MANIFEST = "manifest.json"


def write(path: Path | str, manifest: dict, members: dict[str, Path]) -> dict:
    """Write ``members`` (name in the tar -> file) after a manifest that lists their sha256 and size."""
    manifest = dict(manifest, format=FORMAT, version=VERSION,
                    members={name: {"sha256": sha256_file(src), "size": Path(src).stat().st_size}
                             for name, src in sorted(members.items())})
    data = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    with atomic_path(path, mode=0o644) as tmp:  # a file to carry to another host
        # dereference: a member given as a link (a wheel cache may hold some) is carried as the file the manifest
        # hashed; a link member would be refused on unpacking
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT, dereference=True) as tar:
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
            for name, src in sorted(members.items()):
                tar.add(str(src), arcname=name, recursive=False)
    return manifest


def _safe_name(name: str, where: str) -> str:
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or not p.parts or name.startswith("/") or "\\" in name:
        raise InputError(f"{where}: member {name!r} would be written outside the target folder; refused")
    return str(p)


def read_manifest(path: Path | str) -> dict:
    """The manifest of a bundle file (the first member), checked for format and version."""
    path = Path(path)
    try:
        with tarfile.open(path, "r:") as tar:
            first = tar.next()
            if first is None or first.name != MANIFEST or not first.isfile():
                raise InputError(f"{path}: not a rebuilt bundle (its first member is not {MANIFEST})")
            manifest = json.loads(tar.extractfile(first).read())
    except (tarfile.TarError, OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable rebuilt bundle ({exc})") from None
    if isinstance(manifest, dict) and (manifest.get("format") != FORMAT or manifest.get("version") != VERSION):
        raise InputError(f"{path}: format {manifest.get('format')!r} version {manifest.get('version')!r}; "
                         f"this rebuilt reads {FORMAT} version {VERSION}")
    return shape.check(manifest, shapes.MANIFEST, f"{path} ({MANIFEST})", error=InputError,
                       hint="make the bundle again with inv src.bundle (of this rebuilt version)")


def extract(path: Path | str, dest: Path) -> dict:
    """Verify every member against the manifest while writing it under ``dest``; return the manifest.

    A truncated or damaged tar is one InputError (tarfile's own errors never reach the user).
    """
    path = Path(path)
    manifest = read_manifest(path)
    try:
        seen = _members(path, manifest.get("members", {}), dest)
    except (tarfile.TarError, EOFError) as exc:
        raise InputError(f"{path}: the bundle is truncated or damaged ({exc}); nothing was unpacked",
                         hint="copy the bundle again, or make a new one with inv src.bundle") from None
    missing = sorted(set(manifest.get("members", {})) - seen)
    if missing:
        raise InputError(f"{path}: member {missing[0]} is listed in the manifest but absent (truncated copy?)"
                         + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    return manifest


def _members(path: Path, expected: dict, dest: Path) -> set[str]:
    """Write each member under ``dest``, checked by name, kind, size and sha256; the names seen."""
    seen: set[str] = set()
    with tarfile.open(path, "r:") as tar:
        for number, info in enumerate(tar):
            if number == 0:
                continue  # the manifest, read by read_manifest
            name = _safe_name(info.name, str(path))
            if not info.isfile():
                raise InputError(f"{path}: member {name!r} is a link or special file; refused")
            if name in seen or name == MANIFEST:
                raise InputError(f"{path}: member {name!r} appears twice; refused (a bundle holds each file once)")
            if name not in expected:
                raise InputError(f"{path}: member {name!r} is not listed in the manifest; refused")
            want = expected[name]
            if info.size != want.get("size"):
                raise InputError(f"{path}: member {name} declares {info.size} bytes, the manifest says "
                                 f"{want.get('size')}; refused", hint="copy the bundle again, or make a new one")
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            h = hashlib.sha256()
            with tar.extractfile(info) as src, open(target, "wb") as out:
                while chunk := src.read(1 << 20):
                    h.update(chunk)
                    out.write(chunk)
            if h.hexdigest() != want.get("sha256"):
                raise InputError(f"{path}: member {name} is corrupted (sha256 {h.hexdigest()[:16]}..., the manifest "
                                 f"says {str(want.get('sha256'))[:16]}...); nothing was unpacked",
                                 hint="copy the bundle again, or make a new one with inv src.bundle")
            os.chmod(target, 0o644)
            seen.add(name)
    return seen
