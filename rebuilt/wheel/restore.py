"""``torch.restore``: reinstall a verified wheel with --no-deps --force-reinstall, then verify the result."""

from __future__ import annotations

from pathlib import Path

from packaging.version import Version

from rebuilt import runner
from rebuilt.errors import StepFailed
from rebuilt.wheel import verify
from rebuilt.wheel.installed import query

_HASHES = r"""
import base64, hashlib, json, sys
from pathlib import Path
site, names = sys.argv[1], json.loads(sys.stdin.read())
out = {}
for n in names:
    p = Path(site) / n
    h = hashlib.sha256()
    try:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        out[n] = "sha256=" + base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
    except OSError:
        out[n] = None
print(json.dumps(out))
"""


def installed_matches(python: str, info: verify.WheelInfo) -> list[str]:
    """Files of the wheel whose installed copy differs (empty: version and every file match)."""
    import json

    inst = query(python, info.name)
    if Version(inst.version) != Version(info.version):
        return [f"version {inst.version} installed, wheel has {info.version}"]
    names = [n for n, (h, _) in info.record.items() if h and not n.startswith(info.dist_info + "/")
             and "/scripts/" not in n]
    proc = runner.capture([python, "-c", _HASHES, inst.site], input=json.dumps(names), timeout=600)
    got = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {}
    return [n for n in names if got.get(n) != info.record[n][0]]


def restore(python: str, wheel: Path | str) -> verify.WheelInfo:
    """Verify ``wheel``, install it, and verify version and file hashes afterwards."""
    info = verify.check(wheel)
    proc = runner.capture([python, "-m", "pip", "install", "--no-deps", "--force-reinstall", "--no-index",
                           str(wheel)], timeout=1800)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise StepFailed(f"pip could not install {wheel}:\n{tail}")
    bad = installed_matches(python, info)
    if bad:
        raise StepFailed(f"after installing {wheel}, {len(bad)} file(s) differ, e.g. {bad[0]}")
    return info

