"""The machine probe's remembered answers, so that a dry run or a no-op build does not ask every tool again.

The probe runs the target interpreter once and about ten ``<tool> --version`` commands: together
most of the start-up time of ``inv build.stack --dry-run``. Their output can change only when
what produced it changes, so each answer is kept in ``<workdir>/state/probe.json`` (0600, written
atomically) together with a fingerprint of its producer, and reused only while the fingerprint
still matches:

- a tool: the path PATH resolves its name to, the file that path finally points to, and that
  file's size, mtime, ctime and inode (a new version installed over it, an alternatives switch, a
  different PATH: all change the key);
- the interpreter: the same for the interpreter given (and the link itself), the probe script, the
  working directory and the variables that shape ``sys.path`` (``PYTHONPATH``, ``PYTHONHOME``,
  ``PYTHONUSERBASE``, ``PYTHONNOUSERSITE``, ``HOME``); plus the fingerprint of every ``sys.path``
  entry, of the dist-info folder of each package the probe reports and of ``torch/version.py``,
  which an install, an upgrade, a removal or a rebuilt develop-mode torch all change.

What is never remembered: a failed answer (a tool that exists but timed out or failed, an
interpreter that did not answer), GPUs (memory in use changes), CPUs and memory. A damaged or
foreign file is ignored and replaced, never trusted; a work directory that does not exist yet is
not created by a dry run, and a file that cannot be written is only a missed speed-up.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from rebuilt.core.shape import INT, STR, MapOf, Obj, nullable, opt

FORMAT = 1
PYTHON_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE", "PYTHONNOUSERSITE", "PYTHONSAFEPATH", "HOME")

ENTRY = Obj({"key": STR, "out": nullable(STR), "watch": opt(MapOf(STR))}, closed=True)
SHAPE = Obj({"format": INT, "answers": MapOf(ENTRY)}, closed=True)


def fingerprint(path: str | os.PathLike | None) -> str:
    """``<final path>:<size>:<mtime_ns>:<ctime_ns>:<inode>`` of the file ``path`` leads to; ``-`` when absent."""
    if not path:
        return "-"
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return "-"
    return f"{os.path.realpath(path)}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"


def program_key(found: str | None) -> str:
    """The key of a program PATH resolved to ``found`` (None: not installed, itself a valid answer)."""
    return f"{found}>{fingerprint(found)}" if found else "absent"


def python_key(python: str, script: str) -> str:
    """The key of the interpreter probe (its ``watch`` list adds what only the answer can name)."""
    try:
        st = os.lstat(python)
        link = f"{st.st_ino}:{st.st_mtime_ns}"
    except (OSError, ValueError):
        link = "-"
    env = "|".join(f"{k}={os.environ.get(k, '')}" for k in PYTHON_ENV)
    digest = hashlib.sha256(script.encode()).hexdigest()[:16]
    try:
        cwd = os.getcwd()  # ``python -c`` puts it first on sys.path
    except OSError:
        cwd = "-"
    return f"{python}|{link}|{fingerprint(python)}|{cwd}|{env}|{digest}"


class Memo:
    """Answers read from ``path`` (None: remember nothing), checked against their keys on each use."""

    def __init__(self, path: Path | None):
        self.path = path
        self.answers: dict[str, dict] = self._load() if path else {}
        self.changed = False
        self._lock = threading.Lock()

    def _load(self) -> dict[str, dict]:
        from rebuilt.core.fs import read_json
        from rebuilt.errors import RebuiltError

        try:
            data = read_json(self.path, SHAPE, missing=None, what="machine probe record")
        except RebuiltError:  # damaged or of another shape: asked again and replaced
            return {}
        return data["answers"] if data and data["format"] == FORMAT else {}

    def get(self, name: str, key: str) -> tuple[bool, str | None]:
        """(True, answer) when ``name`` was answered under ``key`` and nothing it watches has changed."""
        with self._lock:
            entry = self.answers.get(name)
        if entry is None or entry["key"] != key:
            return False, None
        if any(fingerprint(p) != fp for p, fp in entry.get("watch", {}).items()):
            return False, None
        return True, entry["out"]

    def put(self, name: str, key: str, out: str | None, watch: list[str] | None = None) -> None:
        entry: dict = {"key": key, "out": out}
        if watch:
            entry["watch"] = {p: fingerprint(p) for p in dict.fromkeys(watch)}
        with self._lock:
            self.answers[name] = entry
            self.changed = True

    def save(self) -> None:
        """Write the answers when something new was learnt, into a work directory that already exists."""
        if not (self.changed and self.path and self.path.parent.parent.is_dir()):
            return
        from rebuilt.core.fs import write_json
        from rebuilt.errors import RebuiltError

        try:
            write_json(self.path, {"format": FORMAT, "answers": self.answers})
        except (OSError, RebuiltError):  # read-only or not ours: the next run asks again
            pass
