"""File-system helpers: atomic writes, cache-dir tags, hashing."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This directory is a cache made by rebuilt; backup tools may skip it.\n"
)


@contextlib.contextmanager
def atomic_path(final: Path | str, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it onto ``final`` only on success."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_text(path: Path | str, text: str) -> Path:
    """Write text atomically (temp file + rename)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: Path | str, data: object) -> Path:
    """Write JSON atomically, sorted and indented for diffs."""
    return write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def mark_cachedir(folder: Path | str) -> Path:
    """Create ``folder`` and a CACHEDIR.TAG in it (idempotent)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tag = folder / "CACHEDIR.TAG"
    if not tag.exists():
        write_text(tag, CACHEDIR_TAG)
    return folder


def sha256_file(path: Path | str, bufsize: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(bufsize):
            h.update(chunk)
    return h.hexdigest()


def record_hash(digest: bytes) -> str:
    """A wheel RECORD hash field (``sha256=<urlsafe b64, no padding>``)."""
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
