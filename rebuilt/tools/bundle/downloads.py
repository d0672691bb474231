"""FetchContent dependencies declared by ``URL`` (an archive, e.g. mscclpp's nlohmann json.tar.xz):
downloaded once into ``<workdir>/cache/bundle-downloads``, checked against ``URL_HASH`` when the
declaration gives one, carried as a bundle member, and unpacked the way FetchContent does it
(an archive with a single top-level folder has that folder's contents as the source dir).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from rebuilt.core.fs import atomic_path
from rebuilt.core.secret import redact
from rebuilt.errors import InputError, SourceError

SUFFIXES = (".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".tar", ".zip")


def suffix(url: str) -> str:
    name = url.split("?", 1)[0].rsplit("/", 1)[-1].lower()
    return next((s for s in SUFFIXES if name.endswith(s)), "")


def cache_path(url: str, cache: Path) -> Path:
    """Where the archive at ``url`` is kept in ``cache`` (present or not)."""
    return cache / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}{suffix(url) or '.bin'}"


def fetch(url: str, url_hash: str, cache: Path, timeout: float = 300) -> Path:
    """The archive at ``url`` in ``cache`` (downloaded when absent), its hash checked.

    The download (redirects included) ends within ``timeout`` seconds, however slowly the server
    sends; the caller's proxy environment is honoured as git and pip honour it.
    """
    from rebuilt.core import net

    algo, _, want = url_hash.partition("=") if url_hash else ("SHA256", "", "")
    path = cache_path(url, cache)
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        try:
            with atomic_path(path, mode=0o644) as tmp, open(tmp, "wb") as f:
                r = net.request("GET", url, deadline=timeout, proxy=net.env_proxy(url), redirects=10, sink=f.write)
                if r.status != 200:
                    raise net.NetError(f"HTTP {r.status}")
        except net.NetError as exc:
            raise SourceError(f"cannot download {redact(url)}: {redact(exc.reason)}"[:300]) from None
    if want:
        h = hashlib.new(algo.lower())
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        if h.hexdigest().lower() != want.lower():
            path.unlink()
            raise SourceError(f"{redact(url)}: {algo} {h.hexdigest()} does not match URL_HASH {want}")
    return path


def _check(name: str, where: str) -> None:
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts:
        raise InputError(f"{where}: entry {name!r} would be written outside the target folder; refused")


def unpack(archive: Path, dest: Path) -> None:
    """Extract ``archive`` into ``dest`` (which must not exist), stripping a single top-level folder."""
    work = dest.with_name(dest.name + ".part")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for n in zf.namelist():
                _check(n, str(archive))
            zf.extractall(work)
    else:
        with tarfile.open(archive) as tar:
            tar.extractall(work, filter="data")  # refuses links out, absolute and escaping paths
    entries = list(work.iterdir())
    root = entries[0] if len(entries) == 1 and entries[0].is_dir() else work
    os.replace(root, dest)
    shutil.rmtree(work, ignore_errors=True)
