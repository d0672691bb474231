"""File-system helpers: atomic writes, JSON written and read back (checked against a shape), cache-dir tags, hashing."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This directory is a cache made by rebuilt; backup tools may skip it.\n"
)


PRIVATE_FILE = 0o600  # state, logs, manifests: they may hold settings, env and tool output
PRIVATE_DIR = 0o700


def private_dir(folder: Path | str) -> Path:
    """Create ``folder`` and any missing parent as 0700 (existing folders keep their mode)."""
    folder = Path(folder)
    missing = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for part in reversed(missing):
        try:
            part.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            pass
        else:
            os.chmod(part, PRIVATE_DIR)  # mkdir's mode is filtered by the umask
    if not folder.is_dir():
        folder.mkdir()  # raises FileExistsError / NotADirectoryError naming the path
    return folder


def open_private(path: Path | str, mode: str = "w", encoding: str | None = "utf-8"):
    """``open()`` for a file only its owner may read (0600 from the start, no window)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    if "+" in mode:
        flags = (flags & ~os.O_WRONLY & ~os.O_TRUNC) | os.O_RDWR
    fd = os.open(path, flags, PRIVATE_FILE)
    return os.fdopen(fd, mode, encoding=None if "b" in mode else encoding)


@contextlib.contextmanager
def atomic_path(final: Path | str, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it onto ``final`` only on success.

    The file gets ``mode``; by default the mode of the file it replaces, else 0600.
    """
    final = Path(final)
    if final.exists() and not final.is_file():  # never rename over a folder, a device or a fifo
        from rebuilt.errors import InputError

        raise InputError(f"{final}: not a regular file; refusing to replace it", hint="give a file path")
    private_dir(final.parent)
    if mode is None:
        try:
            mode = final.stat().st_mode & 0o7777
        except OSError:
            mode = PRIVATE_FILE
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


def write_text(path: Path | str, text: str, mode: int = PRIVATE_FILE, durable: bool = False) -> Path:
    """Write text atomically (temp file + rename), 0600 unless ``mode`` says otherwise.

    ``durable``: on disk (fsync) before the rename, for a record that must survive a power loss.
    """
    with atomic_path(path, mode) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
    return Path(path)


def write_json(path: Path | str, data: object, mode: int = PRIVATE_FILE, durable: bool = False) -> Path:
    """Write JSON atomically, sorted and indented for diffs (0600); a secret setting is written redacted."""
    return write_text(path, json.dumps(_shown(data), indent=2, sort_keys=True, default=str) + "\n", mode, durable)


def read_json(path: Path | str, shape=None, *, missing: object = ..., what: str = "file", hint: str | None = None):
    """The JSON in ``path``, checked against ``shape`` (``rebuilt.core.shape``) before anyone uses it.

    ``missing``: returned when the file does not exist (without it, a missing file is an error too).
    Unreadable bytes, malformed JSON, a wrong type or a missing key: InputError (exit 2) naming the
    file, the line of a syntax error or the key, and ``hint`` (what to do about it).
    """
    from rebuilt.core import shape as shape_mod
    from rebuilt.errors import InputError

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing is not ...:
            return missing
        raise InputError(f"{path}: the {what} does not exist", hint=hint) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read {what}: {getattr(exc, 'strerror', None) or exc}", hint=hint) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})", hint=hint) from None
    except RecursionError:
        raise InputError(f"{path}: nested too deeply", hint=hint) from None
    return data if shape is None else shape_mod.check(data, shape, str(path), error=InputError, hint=hint)


def _shown(obj: object) -> object:
    """``obj`` with every Secret (which json cannot write) replaced by its redacted text."""
    from rebuilt.core.secret import Secret

    if isinstance(obj, Secret):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _shown(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_shown(v) for v in obj]
    return obj


def mark_cachedir(folder: Path | str) -> Path:
    """Create ``folder`` (0700) and a CACHEDIR.TAG in it (idempotent)."""
    folder = private_dir(folder)
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
