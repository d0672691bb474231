"""The doctor on every host: rebuilt's own ``doctor --json`` run there, one table of checks x hosts.

A cell that differs from what most hosts found is marked ``*`` and spelled out under the table (the
node with another driver, GPU, nvcc or torch). Numbers that differ on every host by nature (free disk,
free memory, job counts) are compared by their status only, and each host's work dir is read as
``<workdir>`` so the paths in them do not count as differences.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from rebuilt.tools.fleet import remote, ship
from rebuilt.tools.fleet.run import Session, StepError

BY_STATUS = ("disk", "memory", "jobs ")
MARK = {"ok": "ok", "warn": "WARN", "fail": "FAIL"}


@dataclass
class HostChecks:
    rows: list[dict]
    workdir: str = ""
    cells: dict[str, dict] = field(default_factory=dict)  # check name (numbered when repeated) -> row

    def __post_init__(self):
        seen: Counter = Counter()
        for row in self.rows:
            seen[row["name"]] += 1
            key = row["name"] if seen[row["name"]] == 1 else f"{row['name']} #{seen[row['name']]}"
            self.cells[key] = row


def step(settings, argv: list[str], archive) -> callable:
    """The per-host step: find the place, ship rebuilt, run its doctor, parse the rows."""
    local, sha = archive
    args, secrets = remote.passed_settings(settings)

    def run(session: Session) -> HostChecks:
        place = remote.hello(session, settings)
        place.tree = ship.ensure(session, place.workdir, local, sha)
        full = ["doctor", "--json", "-w", place.workdir, "-p", place.python, *argv, *args]
        r = remote.rebuilt(session, place, full, secrets)
        if r.exited not in (0, 3):
            tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-5:])
            raise StepError("failed", f"{session.host.name}: doctor exited {r.exited}: {tail}",
                            "run it there by hand to see more: rebuilt doctor")
        try:
            rows = json.loads(r.stdout)
        except ValueError:
            raise StepError("failed", f"{session.host.name}: the doctor's output is not JSON: {r.stdout[:200]!r}",
                            "run it there by hand: rebuilt doctor --json") from None
        return HostChecks(rows, place.workdir)

    return run


def comparable(key: str, row: dict, workdir: str) -> str:
    if key.startswith(BY_STATUS):
        return row["status"]
    found = row["found"].replace(workdir, "<workdir>") if workdir else row["found"]
    return f"{row['status']}|{found}"


def differences(by_host: dict[str, HostChecks]) -> dict[str, dict[str, str]]:
    """check -> {host: its comparable value} for the checks where a host differs from the majority."""
    keys = list(dict.fromkeys(k for hc in by_host.values() for k in hc.cells))
    out: dict[str, dict[str, str]] = {}
    for key in keys:
        values = {h: comparable(key, hc.cells[key], hc.workdir) if key in hc.cells else "(absent)"
                  for h, hc in by_host.items()}
        majority, _ = Counter(values.values()).most_common(1)[0]
        odd = {h: v for h, v in values.items() if v != majority}
        if odd and len(by_host) > 1:
            out[key] = odd
    return out


def table(by_host: dict[str, HostChecks], diffs: dict[str, dict[str, str]]) -> str:
    hosts = list(by_host)
    keys = list(dict.fromkeys(k for hc in by_host.values() for k in hc.cells))
    w = max([len(k) for k in keys] + [5])
    cw = max([len(h) for h in hosts] + [6]) + 1
    lines = [(f"{'check':<{w}}  " + "  ".join(f"{h:<{cw}}" for h in hosts)).rstrip()]
    for key in keys:
        cells = []
        for h in hosts:
            row = by_host[h].cells.get(key)
            text = MARK[row["status"]] if row else "-"
            cells.append(f"{text + ('*' if h in diffs.get(key, {}) else ''):<{cw}}")
        lines.append(f"{key:<{w}}  " + "  ".join(cells).rstrip())
    return "\n".join(lines)


def details(by_host: dict[str, HostChecks], diffs: dict[str, dict[str, str]]) -> list[str]:
    """``* gpu: gamma: NVIDIA H100 ... (most hosts: NVIDIA H200 ...)`` for every marked cell."""
    out = []
    for key, odd in diffs.items():
        others = [h for h in by_host if h not in odd and key in by_host[h].cells]
        usual = by_host[others[0]].cells[key]["found"] if others else "(absent)"
        for h in odd:
            row = by_host[h].cells.get(key)
            out.append(f"* {key}: {h}: {row['found'] if row else '(absent)'}  (most hosts: {usual})")
    return out


def failures(by_host: dict[str, HostChecks]) -> list[str]:
    """``cuda: alpha, beta: <found>`` then ``-> <what to do>``, one entry per distinct failure."""
    grouped: dict[tuple, list[str]] = {}
    for h, hc in by_host.items():
        for key, row in hc.cells.items():
            if row["status"] == "fail":
                found = row["found"].replace(hc.workdir, "<workdir>") if hc.workdir else row["found"]
                grouped.setdefault((key, found, row["todo"]), []).append(h)
    return [f"{key}: {', '.join(hosts)}: {found}" + (f"\n    -> {todo}" if todo else "")
            for (key, found, todo), hosts in grouped.items()]


def main(settings, hosts, argv: list[str], *, force: bool = False, as_json: bool = False, echo=print) -> int:
    """Run, print the table (or JSON), return the exit status: 1 a host did not finish, 3 a check failed."""
    from rebuilt.tools.fleet import command

    archive = ship.archive(settings.workdir() / "fleet" / "ship")
    say = (lambda text: None) if as_json else echo
    outcome = command.run("doctor", settings, hosts, step(settings, argv, archive), argv, force=force,
                          encode=lambda hc: {"rows": hc.rows, "workdir": hc.workdir},
                          decode=lambda v: HostChecks(v["rows"], v["workdir"]), echo=say)
    by_host = outcome.values
    diffs = differences(by_host)
    if as_json:
        echo(json.dumps({r.host.name: {"status": r.status, "message": r.message, "todo": r.todo,
                                       "rows": r.value.rows if r.value else None,
                                       "differs": sorted(k for k, odd in diffs.items() if r.host.name in odd)}
                         for r in outcome.results}, indent=2))
    elif by_host:
        echo("")
        echo(table(by_host, diffs))
        for line in details(by_host, diffs):
            echo(line)
        fails = failures(by_host)
        if fails:
            echo("failed checks:")
            for line in fails:
                echo("  " + line)
    command.raise_unfinished(outcome)
    return 3 if failures(by_host) else 0
