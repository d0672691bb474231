"""Check a wheel before it touches an environment: safe entries, RECORD hashes, name vs metadata."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import stat
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path, PurePosixPath

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from rebuilt.errors import InputError


@dataclass(frozen=True)
class WheelInfo:
    path: Path
    name: str
    version: str  # as METADATA says, exactly
    dist_info: str
    record: dict[str, tuple[str, str]]  # archive name -> (hash, size)


def _unsafe(name: str, info: zipfile.ZipInfo) -> str | None:
    p = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or "\\" in name:
        return "an absolute path"
    if ".." in p.parts:
        return "a '..' component"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "a symbolic link"
    return None


def check(path: Path | str, *, hashes: bool = True) -> WheelInfo:
    """Validate ``path``; raises InputError naming the wheel and the problem. Nothing is extracted."""
    path = Path(path)
    where = str(path)
    try:
        name, version, _build, _tags = parse_wheel_filename(path.name)
    except InvalidWheelFilename as exc:
        raise InputError(f"{where}: not a wheel file name ({exc})") from None
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{where}: not a readable zip archive ({exc})",
                         hint="the file is damaged or incomplete; make a new backup") from None
    with zf:
        infos = zf.infolist()
        for info in infos:
            why = _unsafe(info.filename, info)
            if why:
                raise InputError(f"{where}: entry {info.filename!r} is {why}; refusing to install it")
        dist_infos = {n.split("/", 1)[0] for n in zf.namelist() if n.split("/", 1)[0].endswith(".dist-info")}
        if len(dist_infos) != 1:
            raise InputError(f"{where}: expected one .dist-info folder, found {sorted(dist_infos) or 'none'}")
        dist_info = dist_infos.pop()
        try:
            meta = Parser().parsestr(zf.read(f"{dist_info}/METADATA").decode("utf-8"))
            record_text = zf.read(f"{dist_info}/RECORD").decode("utf-8")
        except KeyError as exc:
            raise InputError(f"{where}: {exc.args[0]} is missing") from None
        meta_name, meta_version = meta.get("Name", ""), meta.get("Version", "")
        if canonicalize_name(meta_name) != name or Version(meta_version) != version:
            raise InputError(f"{where}: the file name says {name} {version} but METADATA says "
                             f"{meta_name} {meta_version}")
        record = {row[0]: (row[1], row[2]) for row in csv.reader(io.StringIO(record_text)) if row}
        members = {i.filename for i in infos if not i.is_dir()}
        missing = sorted(members - set(record) - {f"{dist_info}/RECORD"})
        if missing:
            raise InputError(f"{where}: {missing[0]} is in the archive but not in RECORD")
        absent = sorted(n for n in record if n not in members)
        if absent:
            raise InputError(f"{where}: RECORD lists {absent[0]}, which is not in the archive")
        if hashes:
            for info in infos:
                if info.is_dir() or info.filename == f"{dist_info}/RECORD":
                    continue
                want, size = record[info.filename]
                if not want:
                    raise InputError(f"{where}: RECORD has no hash for {info.filename}")
                algo, _, digest = want.partition("=")
                h = hashlib.new(algo)
                with zf.open(info) as f:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
                got = base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
                if got != digest or (size and int(size) != info.file_size):
                    raise InputError(f"{where}: {info.filename} does not match its RECORD hash/size",
                                     hint="the wheel was altered or damaged; do not install it")
    return WheelInfo(path, meta_name, meta_version, dist_info, record)
