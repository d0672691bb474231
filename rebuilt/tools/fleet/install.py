"""On one host: install shipped wheels into the target interpreter through the guard, then prove them.

Run there as ``python -m rebuilt.tools.fleet.install --python PY --log FILE WHEEL...`` (fleet.build does).
The guard as in a build: the protected distributions (torch, torchvision, torchaudio, triton) are
pinned through ``PIP_CONSTRAINT`` to what is installed, pip runs ``--no-deps --no-index`` (nothing else
can come in), and they are compared after the install; a wheel of a protected distribution itself is
refused (exit 4), so a host's custom torch is never replaced by a fleet install.
The proof: every file the wheel's RECORD lists is installed with the same sha256 (the installed RECORD,
which pip writes from the files it installed), and the wheel file has the sha256 it had where it was built.
Prints one JSON line: a row per wheel.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path

from rebuilt.build import guard
from rebuilt.core import fs, runner

SKIP = ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")
_INSTALLED_RECORD = """
import importlib.metadata as m, json, sys
out = {}
for name in json.loads(sys.argv[1]):
    try:
        d = m.distribution(name)
    except m.PackageNotFoundError:
        continue
    out[name] = {"version": d.version, "record": d.read_text("RECORD") or ""}
print(json.dumps(out))
"""


def wheel_record(path: Path) -> tuple[str, str, dict[str, str]]:
    """(name, version, {file: 'sha256=...'}) of a wheel, from its METADATA and RECORD."""
    with zipfile.ZipFile(path) as zf:
        info = next(n.split("/")[0] for n in zf.namelist() if n.split("/")[0].endswith(".dist-info"))
        meta = zf.read(f"{info}/METADATA").decode()
        record = zf.read(f"{info}/RECORD").decode()
    fields = dict(line.split(": ", 1) for line in meta.splitlines() if ": " in line and not line.startswith(" "))
    return fields["Name"], fields["Version"], _hashes(record)


def _hashes(record: str) -> dict[str, str]:
    return {row[0]: row[1] for row in csv.reader(io.StringIO(record))
            if len(row) >= 2 and row[1] and row[0].rsplit("/", 1)[-1] not in SKIP}


def verify(python: str, wheels: list[Path]) -> list[dict]:
    metas = [(w, *wheel_record(w)) for w in wheels]
    proc = runner.capture([python, "-c", _INSTALLED_RECORD, json.dumps([m[1] for m in metas])], timeout=120)
    installed = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {}
    rows = []
    for wheel, name, version, want in metas:
        got = installed.get(name)
        have = _hashes(got["record"]) if got else {}
        bad = sorted(f for f, h in want.items() if have.get(f) != h)
        rows.append({"wheel": wheel.name, "dist": name, "version": version, "sha256": fs.sha256_file(wheel),
                     "installed": got["version"] if got else None, "files": len(want),
                     "mismatched": bad[:5], "result": "ok" if got and got["version"] == version and not bad
                     else "mismatch"})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rebuilt.tools.fleet.install", description=__doc__)
    ap.add_argument("--python", required=True, help="the target interpreter")
    ap.add_argument("--protected", default="torch,torchvision,torchaudio,triton", help="comma separated")
    ap.add_argument("--log", required=True, help="pip's output goes here")
    ap.add_argument("wheels", nargs="+", type=Path)
    args = ap.parse_args(argv)
    protected = [p for p in args.protected.split(",") if p]
    names = {guard.canonical(wheel_record(w)[0]): w for w in args.wheels}
    refused = sorted(set(names) & {guard.canonical(p) for p in protected})
    if refused:
        print(json.dumps({"error": f"refused: {', '.join(refused)} is protected on every host",
                          "todo": "install it there with inv torch.restore, or take it out of the stack"}))
        return 4
    before = guard.snapshot(args.python, protected)
    with tempfile.TemporaryDirectory(prefix="rebuilt-fleet-") as tmp:
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text(guard.constraints_text(before))
        env = {**os.environ, "PIP_CONSTRAINT": str(constraints)}
        proc = runner.capture([args.python, "-m", "pip", "install", "--no-deps", "--force-reinstall", "--no-index",
                               "--disable-pip-version-check", *map(str, args.wheels)], env=env, timeout=None)
    Path(args.log).write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        print(json.dumps({"error": f"pip exited {proc.returncode}", "todo": f"see {args.log}"}))
        return 1
    changed = guard.diff(before, guard.snapshot(args.python, protected))
    if changed:
        print(json.dumps({"error": f"the guard stopped the install: {'; '.join(changed)}",
                          "todo": "restore it there with inv torch.restore"}))
        return 4
    rows = verify(args.python, args.wheels)
    print(json.dumps({"rows": rows}))
    return 0 if all(r["result"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
