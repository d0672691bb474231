"""fleet.build --build-on HOST: the build runs on one host of the cluster (its compilers, CUDA and torch,
not this machine's), and what it made comes back here before it is shipped to every host.

On the build host: rebuilt is shipped as for any fleet command, optionally an ``src.bundle`` file made here
(for a build host without network: it is uploaded, ``src.unbundle`` unpacks it there and each build runs
``--offline``), then ``build.<recipe>`` runs there for each component, in the order given. Its manifests,
the step logs they name and the wheels they list come back to
``<local workdir>/fleet/<run-id>/<host>/`` (``manifests/``, ``logs/``, ``wheels/``), each wheel checked
against the sha256 its manifest recorded; the ordinary ship-install-verify then takes those wheels to
every host (the build host included), so every host is proven to hold exactly what was built there.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path, PurePosixPath

from rebuilt.build import logscan
from rebuilt.core import fs
from rebuilt.tools.fleet import remote, ship
from rebuilt.tools.fleet.run import Session, StepError


def step(settings, names: list[str], bundle: Path | None, archive):
    """The remote build on one host; its value: {recipe: manifest path here}."""
    args, secrets = remote.passed_settings(settings)

    def run(session: Session) -> dict:
        place = remote.hello(session, settings)
        place.tree = ship.ensure(session, place.workdir, *archive)
        here = fs.private_dir(settings.workdir() / "fleet" / session.run_id / session.host.name)
        offline = []
        if bundle:
            target = f"{place.workdir}/fleet/bundles/{_sha(bundle)[:16]}-{bundle.name}"
            session.sh(f"mkdir -p {shlex.quote(target.rsplit('/', 1)[0])}", timeout=30)
            session.conn.put(str(bundle), target + ".part")
            session.sh(f"mv -f {shlex.quote(target + '.part')} {shlex.quote(target)}", timeout=30)
            _must(session, here, "src.unbundle", remote.rebuilt(
                session, place, ["src.unbundle", target, "-w", place.workdir, *args], secrets))
            offline = ["--offline"]
        out = {}
        for name in names:
            r = remote.rebuilt(session, place, [f"build.{name}", *offline, "-w", place.workdir, *args], secrets)
            _must(session, here, f"build.{name}", r)
            out[name] = str(_bring_back(session, place.workdir, name, here))
        return out

    return run


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _must(session: Session, here: Path, what: str, r) -> None:
    """A remote rebuilt command that failed: its output kept here, its first error lines in the message."""
    log = here / f"{what}.log"
    fs.write_text(log, r.stdout + r.stderr)
    if r.exited == 0:
        return
    errors = [f"{e.text}" for e in logscan.first_errors(log, limit=6)] or \
        logscan.tail(log, 6)[0].splitlines()
    raise StepError("failed", f"{session.host.name}: {what} exited {r.exited}" + "".join(f"\n    {e}" for e in errors),
                    f"its output: {log}; the build host's own logs are named there")


def _bring_back(session: Session, workdir: str, name: str, here: Path) -> Path:
    """The newest finished manifest of ``name`` on the host, its step logs and its wheels, copied here."""
    sftp = session.conn.sftp()
    folder = f"{workdir}/manifests"
    candidates = sorted(f for f in sftp.listdir(folder) if f.endswith(f"-{name}.json"))
    data, chosen = None, None
    for fname in reversed(candidates):
        with sftp.open(f"{folder}/{fname}") as f:
            d = json.loads(f.read().decode())
        if d.get("recipe") == name and d.get("status") == "done":
            data, chosen = d, fname
            break
    if data is None:
        raise StepError("failed", f"{session.host.name}: build.{name} left no finished manifest in {folder}",
                        "look at the build's output above")
    for s in data.get("steps") or []:
        if s.get("log"):
            try:
                sftp.get(s["log"], str(fs.private_dir(here / "logs") / PurePosixPath(s["log"]).name))
            except OSError:
                pass  # a step without output has no log
    for a in data.get("artifacts") or []:
        if a["path"].endswith(".whl"):
            local = fs.private_dir(here / "wheels") / PurePosixPath(a["path"]).name
            sftp.get(a["path"], str(local))
            if _sha(local) != a["sha256"]:
                raise StepError("failed", f"{session.host.name}: {local.name} changed on its way here "
                                f"(sha256 differs from the manifest)", "run the same command again")
            a["path"] = str(local)  # where the ship step finds it
    path = fs.private_dir(here / "manifests") / chosen
    fs.write_text(path, json.dumps(data, indent=1))
    return path
