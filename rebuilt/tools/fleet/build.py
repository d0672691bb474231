"""fleet.build: build once here, ship the wheels to every host, install them there through the guard,
and prove that every host has exactly the files that were built.

The build is the ordinary one (no-op when up to date); the wheels are the artifacts its manifests list
(``collect`` steps: path and sha256). A component without a wheel (an editable install) cannot travel
and is named. On each host: rebuilt is shipped (``ship.py``), the wheels go to ``<workdir>/fleet/wheels``
(skipped when a file of that sha256 is there), ``rebuilt.tools.fleet.install`` installs and verifies
them, and its pip log comes back to ``<local workdir>/fleet/<run-id>/<host>/install.log``.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from rebuilt.build import logscan, manifest
from rebuilt.core import fs
from rebuilt.errors import ConfigError
from rebuilt.tools.fleet import remote, ship
from rebuilt.tools.fleet.run import Session, StepError


def wheels(settings, names: list[str], folder: Path | None = None) -> tuple[list[dict], list[str]]:
    """The wheels of the newest finished build of each recipe (path, sha256), and the recipes without one
    (the manifests here, or those a build host sent back)."""
    folder = folder or settings.workdir() / "manifests"
    found, missing = [], []
    for name in names:
        best = None
        for path in sorted(folder.glob(f"*-{name}.json")):
            data = manifest.read(path)
            if data.get("recipe") == name and data.get("status") == "done":
                best = data
        arts = [a for a in (best or {}).get("artifacts") or [] if a["path"].endswith(".whl")]
        if not arts:
            missing.append(name)
        for a in arts:
            if not Path(a["path"]).is_file():
                raise ConfigError(f"{a['path']} (built by {name}) is gone from the wheelhouse",
                                  hint=f"build it again: inv build.{name} --force")
            found.append({"recipe": name, "path": a["path"], "sha256": a["sha256"]})
    return found, missing


def step(settings, built: list[dict], archive) -> callable:
    local, sha = archive
    protected = ",".join(settings["protected"])

    def run(session: Session) -> list[dict]:
        place = remote.hello(session, settings)
        place.tree = ship.ensure(session, place.workdir, local, sha)
        remote_wheels = upload(session, place.workdir, built)
        log = f"{place.workdir}/fleet/run/{session.run_id}-install.log"
        q = shlex.quote
        r = session.sh(f"cd {q(place.workdir)} && PYTHONPATH={q(place.tree)}:{q(place.tree + '/_deps')} "
                       f"PYTHONDONTWRITEBYTECODE=1 {q(place.python)} -m rebuilt.tools.fleet.install "
                       f"--python {q(place.python)} --protected {q(protected)} --log {q(log)} "
                       f"{' '.join(map(q, remote_wheels))}")
        got = fs.private_dir(settings.workdir() / "fleet" / session.run_id / session.host.name) / "install.log"
        try:
            session.conn.get(log, str(got))
            session.sh(f"rm -f {q(log)}", timeout=30)
        except OSError:
            got = None
        try:
            answer = json.loads((r.stdout.strip().splitlines() or ["{}"])[-1])
        except ValueError:
            answer = {"error": (r.stderr or r.stdout).strip()[-300:]}
        if "rows" not in answer:
            errors = [f"{got.name}:{e.number}: {e.text}" for e in logscan.first_errors(got, limit=8)] \
                if got and got.stat().st_size else []
            if got and got.stat().st_size and not errors:
                errors = [f"{got.name}: {line}" for line in logscan.tail(got, 5)[0].splitlines()]
            raise StepError("failed", f"{session.host.name}: {answer.get('error', f'exit {r.exited}')}"
                            + "".join(f"\n    {e}" for e in errors),
                            (answer.get("todo") or "") + (f" (log: {got})" if got else ""))
        for row, w in zip(answer["rows"], built):
            row["recipe"] = w["recipe"]
            if row["sha256"] != w["sha256"]:
                row["result"] = "mismatch"
        return answer["rows"]

    return run


def upload(session: Session, workdir: str, built: list[dict]) -> list[str]:
    """Each wheel to ``<workdir>/fleet/wheels/<sha256>/<name>`` unless a file is there already."""
    q = shlex.quote
    targets = [f"{workdir}/fleet/wheels/{w['sha256'][:16]}/{Path(w['path']).name}" for w in built]
    r = session.sh("for f in " + " ".join(map(q, targets)) + "; do [ -f \"$f\" ] && echo \"$f\"; done; true",
                   timeout=30)
    have = set(r.stdout.split())
    for w, target in zip(built, targets):
        if target not in have:
            session.sh(f"mkdir -p {q(target.rsplit('/', 1)[0])}", timeout=30)
            session.conn.put(w["path"], target + ".part")
            session.sh(f"mv -f {q(target + '.part')} {q(target)}", timeout=30)
    return targets


def table(by_host: dict[str, list[dict]]) -> str:
    """hosts x components: version, sha256 (12), result."""
    comps = list(dict.fromkeys(r["dist"] for rows in by_host.values() for r in rows))
    w = max([len(h) for h in by_host] + [4])
    cells = {h: {r["dist"]: f"{r['installed'] or '-'} {r['sha256'][:12]} {r['result']}" for r in rows}
             for h, rows in by_host.items()}
    cw = max([len(c) for c in comps] + [len(v) for d in cells.values() for v in d.values()] + [8])
    lines = [(f"{'host':<{w}}  " + "  ".join(f"{c:<{cw}}" for c in comps)).rstrip()]
    for h in by_host:
        lines.append(f"{h:<{w}}  " + "  ".join(f"{cells[h].get(c, '-'):<{cw}}" for c in comps).rstrip())
    return "\n".join(lines)


def main(settings, hosts, names: list[str], *, build_first: bool = True, fail_fast: bool = False,
         force: bool = False, build_on=None, bundle: Path | None = None, echo=print) -> None:
    """Build (here, on ``build_on``, or not at all), ship, install, verify; the table; exit 1 when a host did not."""
    from rebuilt.build import builder
    from rebuilt.tools.fleet import buildon, command

    archive = ship.archive(settings.workdir() / "fleet" / "ship")
    folder = None
    if build_on is not None:
        echo(f"building {', '.join(names)} on {build_on.name}" + (f" from {bundle.name} (offline)" if bundle else ""))
        on = command.run("build-on", settings, [build_on], buildon.step(settings, names, bundle, archive),
                         names, force=True, echo=echo)
        command.raise_unfinished(on)
        folder = Path(next(iter(on.values[build_on.name].values()))).parent
        echo(f"built on {build_on.name}: manifests, logs and wheels in {folder.parent}; installing on "
             + ", ".join(h.name for h in hosts))
    elif build_first:
        builder.build(settings, names, builder.Options())
    built, missing = wheels(settings, names, folder)
    for name in missing:
        echo(f"{name}: no wheel in its last build (an editable install cannot travel): build it on each host")
    if not built:
        raise ConfigError(f"no wheel to ship: none of {', '.join(names)} left one in {settings.workdir() / 'wheels'}",
                          hint="build them first (inv build.<name>), in wheel mode where a recipe has one")
    argv = [f"{w['recipe']}={w['sha256']}" for w in built]
    outcome = command.run("build", settings, hosts, step(settings, built, archive), argv, force=force,
                          echo=echo, fail_fast=fail_fast)
    if outcome.values:
        echo("")
        echo(table(outcome.values))
    bad = [f"{h}: {r['dist']} {r['result']}" for h, rows in outcome.values.items() for r in rows if r["result"] != "ok"]
    command.raise_unfinished(outcome)
    if bad:
        from rebuilt.errors import StepFailed

        raise StepFailed("installed files differ from the wheels built: " + "; ".join(bad),
                         hint="run the same command with --force to install them again")
