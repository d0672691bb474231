"""``torch.restore``: reinstall a verified wheel with --no-deps --force-reinstall, then verify the result.

pip runs in its own session with its output in a file: the terminal's Ctrl-C does not
reach it, a killed rebuilt does not break it, and an interrupt is honoured once it has
finished. pip itself moves the old files aside first and puts them back when the
install fails (pip's ``~orch`` stash and rollback), so a restore that cannot finish
leaves the previous torch in place.
"""

from __future__ import annotations

from pathlib import Path

from packaging.version import Version

from rebuilt.build.wheel import verify
from rebuilt.build.wheel.installed import query
from rebuilt.core import runner, signals
from rebuilt.errors import StepFailed

_HASHES = r"""
import base64, hashlib, json, sys
from pathlib import Path
site, names = sys.argv[1], json.loads(sys.stdin.read())
out = {}
for n, algo in names:
    p = Path(site) / n
    h = hashlib.new(algo)
    try:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        out[n] = algo + "=" + base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
    except OSError:
        out[n] = None
print(json.dumps(out))
"""


def installed_matches(python: str, info: verify.WheelInfo, inst=None) -> list[str]:
    """Files of the wheel whose installed copy differs (empty: version and every file match).

    ``inst``: what ``query`` already said of the installed distribution (else it is asked here)."""
    import json

    inst = inst or query(python, info.name)
    if Version(inst.version) != Version(info.version):
        return [f"version {inst.version} installed, wheel has {info.version}"]
    names = [n for n, (h, _) in info.record.items() if h and not n.startswith(info.dist_info + "/")
             and "/scripts/" not in n]
    pairs = [(n, info.record[n][0].partition("=")[0]) for n in names]
    proc = runner.capture([python, "-c", _HASHES, inst.site], input=json.dumps(pairs), timeout=600)
    got = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {}
    return [n for n in names if got.get(n) != info.record[n][0]]


# pip moves what it uninstalls aside to "~" + (i-1 of these) + name[i:] beside the original
# (AdjacentTempDirectory in pip/_internal/utils/temp_dir.py) and deletes it when the install is
# committed; a pip stopped in between (Ctrl-C to a build step's pip) leaves it in site-packages.
_PIP_STASH_CHARS = set("-~.=%0123456789")


def is_pip_stash(entry: str, name: str) -> bool:
    """Is ``entry`` a name pip gives its stash of ``name`` (``~orch`` for ``torch``)?"""
    if len(entry) != len(name) or not entry.startswith("~") or entry == name:
        return False
    i = next(k for k in range(1, len(name) + 1) if entry[k:] == name[k:])
    return set(entry[1:i]) <= _PIP_STASH_CHARS


def remove_pip_stash(site: str | Path, info: verify.WheelInfo) -> list[str]:
    """Delete pip's stash of the wheel's top-level folders left in ``site``; returns what was removed."""
    import shutil

    tops = {n.split("/", 1)[0] for n in info.record if not n.startswith("../") and "/" in n}
    tops.discard(info.dist_info.replace(".dist-info", ".data"))
    removed = []
    for entry in sorted(Path(site).iterdir()) if Path(site).is_dir() else []:
        if entry.name.startswith("~") and any(is_pip_stash(entry.name, t) for t in tops):
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
            removed.append(entry.name)
    return removed


def remove_stray_metadata(inst, info: verify.WheelInfo) -> list[str]:
    """Delete the wheel's distribution's other metadata folders from the site-packages ``inst`` is in.

    A site-packages folder holds one version of a distribution. After the wheel was installed there,
    any other ``.dist-info`` of its name is what a pip stopped halfway left: one without a readable
    Name (``inst.broken``: pip ignores it, ``importlib.metadata`` may return it first), or one of the
    version that pip was installing. A folder whose version cannot be read is left alone."""
    import shutil

    from packaging.utils import canonicalize_name

    site, broken = Path(inst.site), {Path(b) for b in inst.broken}
    removed = []
    for folder in sorted(site.glob("*.dist-info")) if site.is_dir() else []:
        name, _, version = folder.name[: -len(".dist-info")].partition("-")
        if folder.name == info.dist_info or canonicalize_name(name) != canonicalize_name(info.name) \
                or not folder.is_dir() or folder.is_symlink():
            continue
        if folder in broken or _other(version, info.version):
            shutil.rmtree(folder)
            removed.append(folder.name)
    return removed


def _other(version: str, wanted: str) -> bool:
    """Is ``version`` (from a folder name) another version than ``wanted``? Unreadable: not ours to delete."""
    from packaging.version import InvalidVersion

    try:
        return Version(version) != Version(wanted)
    except InvalidVersion:
        return False


def restore(python: str, wheel: Path | str, *, say=None) -> verify.WheelInfo:
    """Verify ``wheel``, install it (shielded from interrupts), and verify version and file hashes afterwards."""
    import os
    import tempfile

    info = verify.check(wheel)
    fd, log = tempfile.mkstemp(prefix="rebuilt-restore-", suffix=".log")
    os.close(fd)
    if say:
        say(f"reinstalling {info.name} {info.version} from {wheel} (pip log: {log}); Ctrl-C waits for it")
    with signals.deferred_signals("the restore finishes first (stopping pip halfway would leave no torch)"):
        rc = runner.shielded([python, "-m", "pip", "install", "--no-deps", "--force-reinstall", "--no-index",
                              "--disable-pip-version-check", str(wheel)], log=Path(log))
        if rc != 0:
            tail = runner.tail(Path(log), 20).rstrip()
            raise StepFailed(f"pip could not install {wheel} (exit {rc}); pip puts the previous files back when "
                             f"an install fails:\n{tail}\n--- full log: {log}")
        os.unlink(log)
        inst = query(python, info.name)
        left = remove_pip_stash(inst.site, info) + remove_stray_metadata(inst, info)
        if left:
            if say:
                say(f"removed what a stopped pip had left in site-packages: {', '.join(left)}")
            inst = query(python, info.name)
        bad = installed_matches(python, info, inst)
        if bad:
            raise StepFailed(f"after installing {wheel}, {len(bad)} file(s) differ, e.g. {bad[0]}")
    return info
