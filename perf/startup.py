"""Start-up time of the commands users wait on, against an invoke tasks.py with one empty task.

Both sides run in this process tree, with this interpreter, alternately, N times each; the medians
and their ratio are printed against the goal, and the script exits 1 when a goal is missed. The
ratio is of CPU time (user + system of the child): on a shared machine wall time swings with the
other load far more than the difference measured; the wall-clock medians are printed beside it.

  inv --list                          <= 1.2x  `inv --list` of a tasks.py with one empty task
  rebuilt --list                      <= 1.2x  the same baseline
  inv --complete / rebuilt --complete <= 1.2x  `inv --complete -- inv ` of the one-task tasks.py
  inv build.stack --dry-run           <= 2.0x  running the one empty task

`--importtime` prints the modules `inv --list` imports beyond the baseline's, with their own
cost (``python -X importtime``), largest first.
Usage: python perf/startup.py [--repeats 15] [--quick] [--importtime] [--only dry-run]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EMPTY_TASKS = 'from invoke import task\n\n\n@task\ndef hello(c):\n    """Nothing."""\n'
INV = [sys.executable, "-m", "invoke"]
REBUILT = [sys.executable, "-m", "rebuilt.cli"]


def clean_env(workdir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_", "REBUILT_"))}
    return {**env, "REBUILT_PROJECT": str(workdir)}


def cases(base: Path, workdir: Path) -> list[tuple[str, list[str], Path, list[str], float]]:
    """(name, our command, its cwd, the baseline command in `base`, goal ratio)."""
    dry = [*INV, "build.stack", "--dry-run", "--python", sys.executable, "--workdir", str(workdir)]  # with the checks
    return [
        ("inv --list", [*INV, "--list"], ROOT, [*INV, "--list"], 1.2),
        ("rebuilt --list", [*REBUILT, "--list"], workdir, [*INV, "--list"], 1.2),
        ("inv --complete", [*INV, "--complete", "--", "inv", "build."], ROOT, [*INV, "--complete", "--", "inv", "h"], 1.2),
        ("rebuilt --complete", [*REBUILT, "--complete", "--", "rebuilt", "build.sgl-kernel", "--dr"], workdir,
         [*INV, "--complete", "--", "inv", "h"], 1.2),
        ("inv build.stack --dry-run", dry, ROOT, [*INV, "hello"], 2.0),
    ]


def once(argv: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one run."""
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    r = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed (exit {r.returncode}):\n{r.stderr[-2000:]}")
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, wall


def imports(argv: list[str], cwd: Path, env: dict) -> dict[str, int]:
    """Module -> its own import time in microseconds, from ``python -X importtime``."""
    r = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    found = re.findall(r"^import time:\s+(\d+) \|\s+\d+ \|( *)(\S+)$", r.stderr, re.MULTILINE)
    return {name: int(own) for own, _, name in found}


def importtime_table(base: Path, env: dict) -> None:
    ours = imports([*INV, "--list"], ROOT, env)
    theirs = imports([*INV, "--list"], base, env)
    extra = sorted(((us, m) for m, us in ours.items() if m not in theirs), reverse=True)
    print(f"modules `inv --list` imports beyond the one-task baseline: {len(extra)}, "
          f"{sum(us for us, _ in extra) / 1000:.1f} ms own time")
    print(f"{'module':40} {'own ms':>7}")
    for us, mod in extra:
        print(f"{mod:40} {us / 1000:7.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15, help="runs of each side (medians are compared)")
    ap.add_argument("--quick", action="store_true", help="5 runs of each side")
    ap.add_argument("--importtime", action="store_true", help="also list the imports beyond the baseline's")
    ap.add_argument("--only", default="", help="measure only the commands whose name contains this text "
                                               "(`--only dry-run`, `--only list`)")
    args = ap.parse_args()
    repeats = 5 if args.quick else args.repeats
    missed = 0
    with tempfile.TemporaryDirectory() as tmp:
        base, workdir = Path(tmp) / "one-task", Path(tmp) / "project"
        base.mkdir()
        workdir.mkdir()
        (base / "tasks.py").write_text(EMPTY_TASKS)
        env = clean_env(workdir)
        # an installed package has its bytecode compiled (pip does it); invoke itself never writes it
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "rebuilt")], stdout=subprocess.DEVNULL)
        print(f"{'command':28} {'ours cpu s':>10} {'base cpu s':>10} {'ratio':>6} {'goal':>6}       "
              f"(wall: ours, baseline)")
        for name, ours, cwd, baseline, goal in cases(base, workdir):
            if args.only not in name:
                continue
            once(ours, cwd, env), once(baseline, base, env)  # warm the file cache
            a, b = [], []
            for _ in range(repeats):
                a.append(once(ours, cwd, env))
                b.append(once(baseline, base, env))
            cpu_a, cpu_b = (statistics.median(t[0] for t in x) for x in (a, b))
            wall_a, wall_b = (statistics.median(t[1] for t in x) for x in (a, b))
            ratio = cpu_a / cpu_b
            ok = ratio <= goal
            missed += not ok
            print(f"{name:28} {cpu_a:10.3f} {cpu_b:10.3f} {ratio:5.2f}x <={goal:.1f}x {'ok' if ok else 'MISSED':6} "
                  f"({wall_a:.3f} s, {wall_b:.3f} s)")
        if args.importtime:
            importtime_table(base, env)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
