"""GPU health across hosts: the GPU health check on every GPU of every host, and the slow ones flagged.

On each host, every GPU that ``nvidia-smi`` lists is measured in turn (``CUDA_VISIBLE_DEVICES=<index>``,
one at a time, so the GPUs of a host do not share its PCIe and power budget while measured) by
``rebuilt/tools/bench/gpu_health.py`` (bf16 GEMM TFLOP/s, HBM copy GB/s) with the host's target
interpreter, whose torch must see CUDA. A GPU is flagged when a figure is below the fleet's median of
that figure by more than the threshold (a fraction): ``health_slower`` of the bench spec (``--spec``, else
setting ``bench.spec``), else setting ``fleet.health_slower`` (default 0.1); a host when the median of its
GPUs is.
"""

from __future__ import annotations

import json
import shlex
import statistics

from rebuilt.tools.fleet import remote, ship
from rebuilt.tools.fleet.run import Session, StepError

METRICS = (("tflops", "TFLOP/s"), ("gbps", "GB/s"))


def step(settings, archive, argv: list[str]):
    local, sha = archive

    def run(session: Session) -> list[dict]:
        place = remote.hello(session, settings)
        place.tree = ship.ensure(session, place.workdir, local, sha)
        r = session.sh("nvidia-smi --query-gpu=index,name --format=csv,noheader", timeout=60)
        gpus = [line.split(",", 1) for line in r.stdout.splitlines() if "," in line] if r.exited == 0 else []
        if not gpus or not all(index.strip().isdigit() for index, _ in gpus):
            raise StepError("failed", f"{session.host.name}: no GPU listed by nvidia-smi "
                            f"({(r.stderr or r.stdout).strip()[-200:] or 'empty'})",
                            "check the driver there (nvidia-smi), or leave the host out")
        q = shlex.quote
        script = f"{place.tree}/rebuilt/tools/bench/gpu_health.py"
        rows = []
        for index, name in gpus:
            r = session.sh(f"CUDA_VISIBLE_DEVICES={q(index.strip())} {q(place.python)} {q(script)} --json "
                           f"{shlex.join(argv)}")
            if r.exited not in (0, 1):
                raise StepError("failed", f"{session.host.name}: GPU {index.strip()}: gpu_health exited {r.exited}: "
                                f"{(r.stderr.strip().splitlines() or [''])[-1]}",
                                f"fleet.hosts.{session.host.name}.python must name an interpreter whose torch has CUDA")
            report = json.loads(r.stdout)
            rows.append({"gpu": index.strip(), "name": name.strip(), "tflops": report["matmul"]["tflops"],
                         "gbps": report["copy"]["gbps"], "harness_ok": report["harness_ok"]})
        return rows

    return run


def flags(by_host: dict[str, list[dict]], slower: float) -> tuple[dict, list[str]]:
    """(medians per metric, one line per GPU or host below the fleet's median by more than ``slower``)."""
    every = [row for rows in by_host.values() for row in rows]
    medians = {m: statistics.median(row[m] for row in every) for m, _ in METRICS}
    lines = []
    for host, rows in by_host.items():
        for m, unit in METRICS:
            floor = medians[m] * (1 - slower)
            host_median = statistics.median(row[m] for row in rows)
            if host_median < floor:
                lines.append(f"host {host}: {m} median {host_median:.1f} {unit}, {_below(host_median, medians[m])}")
            for row in rows:
                if row[m] < floor:
                    row.setdefault("flags", []).append(m)
                    lines.append(f"{host} GPU {row['gpu']} ({row['name']}): {row[m]:.1f} {unit}, "
                                 f"{_below(row[m], medians[m])}")
    return medians, lines


def _below(value: float, median: float) -> str:
    return f"{100 * (1 - value / median):.0f}% below the fleet's median ({median:.1f})"


def table(by_host: dict[str, list[dict]]) -> str:
    w = max([len(h) for h in by_host] + [4])
    lines = [f"{'host':<{w}}  gpu  {'name':<24}  {'TFLOP/s':>8}  {'GB/s':>7}  flag"]
    for host, rows in by_host.items():
        for row in rows:
            mark = ", ".join(row.get("flags", [])) + ("" if row["harness_ok"] else " harness<90%")
            lines.append(f"{host:<{w}}  {row['gpu']:>3}  {row['name'][:24]:<24}  {row['tflops']:>8.1f}  "
                         f"{row['gbps']:>7.0f}  {mark.strip() or '-'}")
    return "\n".join(lines)


def threshold(settings, spec: str | None) -> tuple[float, str]:
    """(the fraction, where it came from): the bench spec's ``health_slower``, else the setting."""
    from rebuilt.tools.bench import spec as spec_mod

    found = spec_mod.load(spec_mod.find(spec or settings["bench.spec"]))
    if found.health_slower is not None:
        return found.health_slower, f"health_slower of bench spec {found.path}"
    return float(settings["fleet.health_slower"]), f"setting fleet.health_slower, from {settings.source('fleet.health_slower')}"


def main(settings, hosts, argv: list[str], *, force: bool = False, as_json: bool = False, echo=print,
         spec: str | None = None) -> int:
    """Run, print, return 3 when a GPU or host is flagged (1 raised when a host did not finish)."""
    from rebuilt.tools.fleet import command

    slower, source = threshold(settings, spec)  # bad input before any host is asked
    archive = ship.archive(settings.workdir() / "fleet" / "ship")
    outcome = command.run("health", settings, hosts, step(settings, archive, argv), argv, force=force,
                          echo=(lambda text: None) if as_json else echo)
    by_host = outcome.values
    medians, lines = flags(by_host, slower) if by_host else ({}, [])
    if as_json:
        echo(json.dumps({"medians": medians, "threshold": slower, "threshold_from": source, "flagged": lines, "hosts": {
            r.host.name: {"status": r.status, "message": r.message, "gpus": r.value} for r in outcome.results}},
            indent=2))
    elif by_host:
        echo("")
        echo(table(by_host))
        echo("fleet medians: " + ", ".join(f"{medians[m]:.1f} {unit}" for m, unit in METRICS)
             + f"; flagged: more than {100 * slower:g}% below ({source})")
        for line in lines:
            echo("! " + line)
    command.raise_unfinished(outcome)
    return 3 if lines else 0
