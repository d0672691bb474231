"""Check a wheel before it touches an environment: safe entries, RECORD hashes, name vs metadata.

Nothing is extracted; every problem is an InputError naming the wheel and the entry.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import stat
import zipfile
import zlib
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path, PurePosixPath

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from rebuilt.errors import InputError

DAMAGED = "the wheel was altered or damaged; do not install it (make a new backup: inv torch.backup)"


@dataclass(frozen=True)
class WheelInfo:
    path: Path
    name: str  # as METADATA says
    version: str  # as METADATA says, exactly
    dist_info: str
    record: dict[str, tuple[str, str]]  # archive name -> (hash, size)


def unsafe(name: str, info: zipfile.ZipInfo | None = None) -> str | None:
    """Why an archive entry could write outside the target, or None."""
    p = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or "\\" in name:
        return "an absolute path"
    if ".." in p.parts:
        return "a '..' component"
    if info is not None and stat.S_ISLNK(info.external_attr >> 16):
        return "a symbolic link"
    return None


def _hash_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, algo: str) -> str:
    h = hashlib.new(algo)
    with zf.open(info) as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()


def _check_hashes(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], record: dict, dist_info: str, where: str):
    for info in infos:
        if info.is_dir() or info.filename == f"{dist_info}/RECORD":
            continue
        want, size = record[info.filename]
        if not want:
            raise InputError(f"{where}: RECORD has no hash for {info.filename}", hint=DAMAGED)
        algo, _, digest = want.partition("=")
        if algo not in ("sha256", "sha384", "sha512"):
            raise InputError(f"{where}: RECORD uses {algo or 'no'} hash for {info.filename}; "
                             f"only sha256 or stronger is accepted", hint=DAMAGED)
        try:
            got = _hash_member(zf, info, algo)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise InputError(f"{where}: {info.filename} cannot be read ({exc})", hint=DAMAGED) from None
        if got != digest:
            raise InputError(f"{where}: {info.filename} does not match its RECORD hash", hint=DAMAGED)
        if size and (not size.isdigit() or int(size) != info.file_size):
            raise InputError(f"{where}: {info.filename} is {info.file_size} bytes, RECORD says {size}",
                             hint=DAMAGED)


def check(path: Path | str, *, hashes: bool = True) -> WheelInfo:
    """Validate ``path``; raises InputError naming the wheel and the problem. Nothing is extracted.

    ``hashes=False`` skips reading the members (the cheap check ``torch.check`` uses).
    """
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise InputError(f"{where}: no such file")
    try:
        name, version, _build, _tags = parse_wheel_filename(path.name)
    except (InvalidWheelFilename, InvalidVersion) as exc:
        raise InputError(f"{where}: not a wheel file name ({exc})") from None
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{where}: not a readable zip archive ({exc})",
                         hint="the file is damaged or incomplete; make a new backup") from None
    with zf:
        infos = zf.infolist()
        seen: set[str] = set()
        for info in infos:
            why = unsafe(info.filename, info)
            if why:
                raise InputError(f"{where}: entry {info.filename!r} is {why}; refusing to install it")
            if info.filename in seen:
                raise InputError(f"{where}: entry {info.filename!r} appears twice; refusing to install it")
            seen.add(info.filename)
        dist_infos = {n.split("/", 1)[0] for n in seen if n.split("/", 1)[0].endswith(".dist-info")}
        if len(dist_infos) != 1:
            raise InputError(f"{where}: expected one .dist-info folder, found {sorted(dist_infos) or 'none'}")
        dist_info = dist_infos.pop()
        try:
            meta = Parser().parsestr(zf.read(f"{dist_info}/METADATA").decode("utf-8"))
            record_text = zf.read(f"{dist_info}/RECORD").decode("utf-8")
            zf.getinfo(f"{dist_info}/WHEEL")
        except KeyError as exc:
            raise InputError(f"{where}: {exc.args[0]} is missing") from None
        except (zipfile.BadZipFile, zlib.error, UnicodeDecodeError) as exc:
            raise InputError(f"{where}: its metadata cannot be read ({exc})", hint=DAMAGED) from None
        meta_name, meta_version = meta.get("Name", ""), meta.get("Version", "")
        try:
            same_version = Version(meta_version) == version
        except InvalidVersion:
            same_version = False
        if canonicalize_name(meta_name) != name or not same_version:
            raise InputError(f"{where}: the file name says {name} {version} but METADATA says "
                             f"{meta_name or '(no name)'} {meta_version or '(no version)'}")
        record = {}
        for row in csv.reader(io.StringIO(record_text)):
            if row:
                if len(row) != 3:
                    raise InputError(f"{where}: RECORD line {','.join(row)!r} does not have 3 fields", hint=DAMAGED)
                record[row[0]] = (row[1], row[2])
        members = {i.filename for i in infos if not i.is_dir()}
        missing = sorted(members - set(record) - {f"{dist_info}/RECORD"})
        if missing:
            raise InputError(f"{where}: {missing[0]} is in the archive but not in RECORD", hint=DAMAGED)
        absent = sorted(n for n in record if n not in members)
        if absent:
            raise InputError(f"{where}: RECORD lists {absent[0]}, which is not in the archive", hint=DAMAGED)
        if hashes:
            _check_hashes(zf, infos, record, dist_info, where)
    return WheelInfo(path, meta_name, meta_version, dist_info, record)
