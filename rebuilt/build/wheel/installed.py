"""What an installed distribution is, asked of the target interpreter in one small script."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from rebuilt.core import runner
from rebuilt.errors import ConfigError, InputError

# Runs in the target interpreter (any Python >= 3.8): everything the backup, restore and check need,
# in one process start. Editable installs are recognised by direct_url.json (PEP 610/660), by a
# setup.py-develop `.egg-link`, or by setuptools' `__editable__` finder/pth files.
# A metadata folder without a readable Name is what an installer stopped halfway leaves (pip killed
# while writing the replacing wheel's .dist-info): importlib.metadata would still return it first.
WHOLE_DIST = r"""
def whole_dist(name):
    whole, broken = [], []
    for d in metadata.Distribution.discover(name=name):
        (whole if d.metadata.get("Name") else broken).append(d)
    return (whole[0] if whole else None), [str(getattr(d, "_path", "")) for d in broken]
"""

_PROBE = r"""
import glob, json, os, re, sys, sysconfig, importlib.machinery
from importlib import metadata
""" + WHOLE_DIST + r"""
name = sys.argv[1]
dist, broken = whole_dist(name)
if dist is None:
    print(json.dumps({"found": False, "broken": broken})); raise SystemExit
meta_dir = str(dist._path) if hasattr(dist, "_path") else None
def text(n):
    try: return dist.read_text(n)
    except Exception: return None
real = dist.metadata["Name"]
stems = {re.sub(r"[-_.]+", s, real.lower()) for s in ("-", "_", ".")} | {real}
editable_files = []
for entry in sys.path:
    if not entry or not os.path.isdir(entry):
        continue
    for stem in stems:
        editable_files += glob.glob(os.path.join(entry, glob.escape(stem) + ".egg-link"))
        editable_files += glob.glob(os.path.join(entry, "__editable__." + glob.escape(stem) + "-*.pth"))
        editable_files += glob.glob(os.path.join(entry, "__editable___" + glob.escape(stem) + "_*finder.py"))
print(json.dumps({
    "found": True, "name": real, "version": dist.version, "meta_dir": meta_dir,
    "site": str(dist.locate_file("")), "record": text("RECORD"), "wheel": text("WHEEL"),
    "direct_url": text("direct_url.json"), "installer": (text("INSTALLER") or "").strip(),
    "ext_suffixes": importlib.machinery.EXTENSION_SUFFIXES, "platform": sysconfig.get_platform(),
    "py": "cp%d%d" % sys.version_info[:2], "scripts": sysconfig.get_paths()["scripts"],
    "data": sysconfig.get_paths()["data"], "editable_files": sorted(set(editable_files)),
    "broken": broken,
}))
"""


@dataclass
class Installed:
    name: str
    version: str
    meta_dir: str | None
    site: str
    record: str | None
    wheel: str | None
    direct_url: str | None
    installer: str
    ext_suffixes: list = field(default_factory=list)
    platform: str = ""
    py: str = ""
    scripts: str = ""
    data: str = ""
    editable_files: list = field(default_factory=list)
    broken: list = field(default_factory=list)  # metadata folders of this name with no readable Name

    @property
    def editable(self) -> str | None:
        """Where an editable / ``setup.py develop`` install lives (its source folder), else None."""
        if self.direct_url:
            try:
                info = json.loads(self.direct_url)
            except ValueError:
                info = {}
            if info.get("dir_info", {}).get("editable"):
                return info.get("url", "").removeprefix("file://") or "?"
        egg_info = bool(self.meta_dir and self.meta_dir.endswith(".egg-info"))
        for path in self.editable_files:
            if path.endswith(".egg-link") and egg_info:  # a stale link beside a wheel install does not count
                try:
                    with open(path, encoding="utf-8") as fh:
                        return fh.readline().strip() or path
                except OSError:
                    return path
        finders = [p for p in self.editable_files if not p.endswith(".egg-link")]
        return finders[0] if finders else None


def query(python: str, dist: str) -> Installed:
    """The installed ``dist`` in ``python``; InputError when it is not installed."""
    proc = runner.capture([python, "-c", _PROBE, dist], timeout=60)
    if proc.returncode != 0:
        raise ConfigError(f"cannot inspect {python}: {(proc.stderr or proc.stdout).strip()[-300:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    if not data.pop("found"):
        if data.get("broken"):
            raise InputError(f"{dist} is not installed in {python}: only a half-written metadata folder is "
                             f"there ({data['broken'][0]})",
                             hint="an installer was stopped halfway: reinstall it (inv torch.restore for torch)")
        raise InputError(f"{dist} is not installed in {python}")
    return Installed(**data)
