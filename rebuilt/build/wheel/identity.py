"""``torch.check``: which torch is this, how was it installed, and does a backup match it."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from rebuilt.build.wheel import backup, verify
from rebuilt.build.wheel.installed import Installed, query

NGC_CONSTRAINTS = Path("/etc/pip/constraint.txt")


def how_installed(inst: Installed) -> str:
    """wheel from an index | NGC/container | source build | editable."""
    if inst.editable:
        return f"editable / setup.py develop from {inst.editable}"
    if re.search(r"\+.*nv\d", inst.version) or (NGC_CONSTRAINTS.exists() and
                                                 inst.name.lower() in NGC_CONSTRAINTS.read_text().lower()):
        return "NGC / container build"
    if "+git" in inst.version or re.search(r"a0\+[0-9a-f]{7,}$", inst.version):
        return "source build"
    if inst.direct_url:
        return "installed from a local file or URL"
    return f"wheel from a package index ({inst.installer or 'unknown installer'})"


def _record(text: str) -> dict[str, str]:
    return {row[0]: row[1] for row in csv.reader(io.StringIO(text)) if row and row[1]}


def backup_matches(inst: Installed, wheel: Path) -> tuple[bool, str]:
    """Same version and same file hashes (RECORD against RECORD: cheap, no file is re-read)."""
    info = verify.check(wheel, hashes=False)
    from packaging.version import Version

    if Version(info.version) != Version(inst.version):
        return False, f"backup is {info.version}, installed is {inst.version}"
    installed = {k: v for k, v in _record(inst.record or "").items() if "__pycache__" not in k}
    theirs = {k: v[0] for k, v in info.record.items() if v[0]}
    common = [k for k in theirs if k in installed and not k.startswith(info.dist_info)]
    differ = [k for k in common if theirs[k] != installed[k]]
    if differ:
        return False, f"{len(differ)} file(s) differ, e.g. {differ[0]}"
    return True, f"{len(common)} files match"


def report(python: str, dist: str, backups: Path) -> list[tuple[str, str]]:
    """(field, value) rows for ``inv torch.check``."""
    inst = query(python, dist)
    rows = [("distribution", f"{inst.name} {inst.version}"), ("path", inst.site), ("installed", how_installed(inst))]
    if dist.lower() == "torch":
        version_py = Path(inst.site) / "torch" / "version.py"
        cuda = None
        if version_py.exists():
            m = re.search(r"^cuda\s*(?::\s*\S+)?\s*=\s*['\"]?([^'\"\n]+)", version_py.read_text(), re.M)
            cuda = m.group(1) if m else None
        rows.append(("cuda", cuda if cuda and cuda != "None" else "none (CPU build)"))
    found = backup.find_backup(backups, dist, inst.version)
    if not found:
        rows.append(("backup", f"none for {inst.version} in {backups} (inv torch.backup)"))
    else:
        ok, why = backup_matches(inst, found)
        rows.append(("backup", f"{found} ({'matches' if ok else 'does NOT match'}: {why})"))
    return rows
