"""What an installed distribution is, asked of the target interpreter in one small script."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from rebuilt import runner
from rebuilt.errors import ConfigError, InputError

_PROBE = r"""
import json, sys, sysconfig, importlib.machinery
from importlib import metadata
name = sys.argv[1]
try:
    dist = metadata.distribution(name)
except metadata.PackageNotFoundError:
    print(json.dumps({"found": False})); raise SystemExit
meta_dir = str(dist._path) if hasattr(dist, "_path") else None
def text(n):
    try: return dist.read_text(n)
    except Exception: return None
print(json.dumps({
    "found": True, "name": dist.metadata["Name"], "version": dist.version, "meta_dir": meta_dir,
    "site": str(dist.locate_file("")), "record": text("RECORD"), "wheel": text("WHEEL"),
    "direct_url": text("direct_url.json"), "installer": (text("INSTALLER") or "").strip(),
    "ext_suffixes": importlib.machinery.EXTENSION_SUFFIXES, "platform": sysconfig.get_platform(),
    "py": "cp%d%d" % sys.version_info[:2], "scripts": sysconfig.get_paths()["scripts"],
    "data": sysconfig.get_paths()["data"],
}))
"""


@dataclass
class Installed:
    name: str
    version: str
    meta_dir: str
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

    @property
    def editable(self) -> str | None:
        """The source folder of an editable / ``setup.py develop`` install, else None."""
        if self.direct_url:
            try:
                info = json.loads(self.direct_url)
            except ValueError:
                info = {}
            if info.get("dir_info", {}).get("editable"):
                return info.get("url", "").removeprefix("file://") or "?"
        if self.meta_dir and self.meta_dir.endswith(".egg-info"):
            return self.meta_dir.rsplit("/", 1)[0]
        return None


def query(python: str, dist: str) -> Installed:
    """The installed ``dist`` in ``python``; InputError when it is not installed."""
    proc = runner.capture([python, "-c", _PROBE, dist], timeout=60)
    if proc.returncode != 0:
        raise ConfigError(f"cannot inspect {python}: {(proc.stderr or proc.stdout).strip()[-300:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    if not data.pop("found"):
        raise InputError(f"{dist} is not installed in {python}")
    return Installed(**data)
