"""What each host of a fleet run left behind here, and a rerun that redoes only the hosts that did not finish.

Every host's result goes to ``<workdir>/fleet/<run-id>/<host>/`` as soon as it is known. While some host
of a run did not finish (unreachable, lost, too slow, interrupted), ``<workdir>/fleet/<task>.resume.json``
remembers the hosts that did; the same command again (same flags, same hosts) keeps their results and
runs the others; ``--force`` runs every host. A run in which every host finished removes the file.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from pathlib import Path

from rebuilt.core import fs


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def fingerprint(task: str, argv: list[str], hosts) -> str:
    text = json.dumps([task, argv, sorted(h.destination + "|" + h.name for h in hosts)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Resume:
    def __init__(self, workdir: Path, task: str, fp: str, force: bool = False):
        self.folder = Path(workdir) / "fleet"
        self.path = self.folder / f"{task}.resume.json"
        self.fp = fp
        self.kept: dict[str, dict] = {}
        if not force and self.path.exists():
            try:
                data = json.loads(self.path.read_text())
            except (OSError, ValueError):
                data = {}
            if data.get("fingerprint") == fp:
                self.kept = data.get("done", {})

    def host_dir(self, run_id: str, host: str) -> Path:
        return fs.private_dir(self.folder / run_id / host.replace("/", "_"))

    def record(self, host: str, run_id: str, value) -> None:
        """A host finished: remember its result (written under its folder) for a rerun."""
        self.kept[host] = {"run": run_id, "value": value}
        fs.private_dir(self.folder)
        fs.write_text(self.path, json.dumps({"fingerprint": self.fp, "done": self.kept}, indent=1))

    def complete(self) -> None:
        self.path.unlink(missing_ok=True)
