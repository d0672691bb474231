"""A fleet command from end to end: hosts, run id, resume, the parallel run, each host's ending named.

Each host's line is printed as soon as the host ends (``alpha  ok  2.1s``, or what went wrong and what
to do), so a dead host is named within seconds of being detectable while the others go on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from rebuilt.core import fs
from rebuilt.core.secret import redact
from rebuilt.core.text import fmt_seconds
from rebuilt.errors import Interrupted, StepFailed
from rebuilt.tools.fleet import resume as resume_mod
from rebuilt.tools.fleet.run import HostResult, run_all


@dataclass
class Outcome:
    run_id: str
    results: list[HostResult]

    @property
    def values(self) -> dict:
        return {r.host.name: r.value for r in self.results if r.status in ("ok", "kept")}

    @property
    def unfinished(self) -> list[HostResult]:
        return [r for r in self.results if not r.finished]


def run(task: str, settings, hosts, step, argv: list[str], *, force: bool = False,
        encode: Callable = lambda v: v, decode: Callable = lambda v: v, echo=print, fail_fast: bool = False) -> Outcome:
    """``step`` on every host not finished by an interrupted earlier run of the same command."""
    workdir = settings.workdir()
    run_id = resume_mod.new_run_id()
    journal = resume_mod.Resume(workdir, task, resume_mod.fingerprint(task, argv, hosts), force)
    kept = [h for h in hosts if h.name in journal.kept]
    todo = [h for h in hosts if h.name not in journal.kept]
    for h in kept:
        echo(f"{h.name:<12} kept     finished in run {journal.kept[h.name]['run']} (--force runs it again)")

    def on_result(res: HostResult) -> None:
        folder = journal.host_dir(run_id, res.host.name)
        data = {"host": res.host.name, "destination": res.host.destination, "status": res.status,
                "message": res.message, "todo": res.todo, "seconds": round(res.seconds, 2)}
        if res.status == "ok":
            data["value"] = encode(res.value)
            journal.record(res.host.name, run_id, data["value"])
        fs.write_text(folder / f"{task}.json", redact(json.dumps(data, indent=1)))
        line = f"{res.host.name:<12} {res.status:<8} {fmt_seconds(res.seconds)}"
        echo(line if res.status == "ok" else f"{line}  {res.message}" + (f"\n    -> {res.todo}" if res.todo else ""))

    try:
        results = run_all(todo, step, connect_timeout=float(settings["fleet.connect_timeout"]),
                          timeout=float(settings["fleet.timeout"]), run_id=run_id, on_result=on_result,
                          fail_fast=fail_fast)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: every host's processes of run {run_id} were stopped",
                          hint=f"the same command again runs only the hosts that did not finish "
                               f"(results so far: {workdir / 'fleet' / run_id})") from None
    by_name = {r.host.name: r for r in results}
    for h in kept:
        by_name[h.name] = HostResult(h, "kept", decode(journal.kept[h.name]["value"]))
    outcome = Outcome(run_id, [by_name[h.name] for h in hosts])
    if not outcome.unfinished:
        journal.complete()
    return outcome


def raise_unfinished(outcome: Outcome) -> None:
    """Exit 1 naming the hosts that did not finish (after the table of those that did)."""
    bad = outcome.unfinished
    if bad:
        names = ", ".join(f"{r.host.name} ({r.status})" for r in bad)
        raise StepFailed(f"{len(bad)} host(s) did not finish: {names}",
                         hint="fix what each line above says, then run the same command again: "
                              "only these hosts run again")
