"""How fast a command that cannot succeed stops: the pre-build checks and the bench's GPU check.

README.md and docs/DOCTOR.md promise that a build the checks would fail stops "in seconds", before
any step; docs/NOX.md says the same of ``nox -s h200_bench`` on a machine without a GPU. Each case
runs the stopped command and, as its baseline, the check alone, alternately, N times each, in this
process tree; the ratio of the medians (CPU time of the children: on a shared machine wall time swings
with the other load) is printed against the goal, the wall-clock medians beside it. Exit 1 when a
goal is missed: then something runs before the check that should not.

  inv build.sgl-kernel, failing checks   <= 1.5x  inv doctor --recipe sgl-kernel (the same checks)
  nox -s h200_bench, no GPU              <= 1.5x  nox -s h200_preflight (the GPU check alone)

The toolchain is a fake one on PATH (CUDA 12.4 with gcc 14, which the host-compiler check refuses);
nvidia-smi is kept off PATH. Usage: python perf/fail_fast.py [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INV = [sys.executable, "-m", "invoke"]
NOX = [sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py")]
FAKE = {"nvcc": "Cuda compilation tools, release 12.4, V12.4.131\n", "gcc": "gcc (GCC) 14.2.0\n",
        "g++": "g++ (GCC) 14.2.0\n", "cmake": "cmake version 3.31.6\n"}


def toolchain(tmp: Path) -> tuple[dict, Path]:
    """A PATH whose gcc/g++/cmake print real tools' version text, and a CUDA 12.4 home; no nvidia-smi."""
    bin_, cuda = tmp / "bin", tmp / "cuda-12.4"
    for folder, names in ((bin_, ("gcc", "g++", "cmake")), (cuda / "bin", ("nvcc",))):
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            (folder / name).write_text(f"#!/bin/sh\ncat <<'EOF'\n{FAKE[name]}EOF\n")
            (folder / name).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_REBUILT_", "REBUILT_"))}
    env["PATH"] = f"{bin_}:/usr/bin:/bin"
    return env, cuda


def once(argv: list[str], env: dict, expect_fail: bool) -> tuple[float, float]:
    """(CPU seconds of the children, wall seconds) of one run, which must end as expected."""
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    r = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    if (r.returncode != 0) != expect_fail:
        raise SystemExit(f"{' '.join(argv)}: exit {r.returncode}, expected {'a failure' if expect_fail else 0}:\n"
                         f"{r.stderr[-2000:]}")
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, wall


def cases(tmp: Path) -> list[tuple[str, list[str], list[str], dict, float]]:
    """(name, the stopped command, the check alone, environment, goal ratio)."""
    env, cuda = toolchain(tmp)
    sets = ["--set", f"cuda_home={cuda}", "--set", "cuda=12.4", "--set", "host_compiler=",
            "--workdir", str(tmp / "wd")]
    nox_env = {**env, "REBUILT_NOX_STACK": "fixture"}
    bench = ["--envdir", str(tmp / ".nox"), "-s", "h200_bench", "--", "--model-path", str(tmp),
             "--workdir", str(tmp / "wd-bench")]
    preflight = ["--envdir", str(tmp / ".nox"), "-s", "h200_preflight", "--", "--model-path", str(tmp),
                 "--workdir", str(tmp / "wd-bench")]
    return [("inv build.sgl-kernel, failing checks", [*INV, "build.sgl-kernel", *sets],
             [*INV, "doctor", "--recipe", "sgl-kernel", *sets], env, 1.5),
            ("nox -s h200_bench, no GPU", [*NOX, *bench], [*NOX, *preflight], nox_env, 1.5)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="runs of each side (medians are compared)")
    ap.add_argument("--quick", action="store_true", help="3 runs of each side")
    args = ap.parse_args()
    repeats = 3 if args.quick else args.repeats
    missed = 0
    with tempfile.TemporaryDirectory(prefix="rebuilt-fail-fast-") as tmp:
        print(f"{'case':40} {'ours cpu':>9} {'check cpu':>10} {'ratio':>6} {'goal':>5} {'ours wall':>10}")
        for name, ours, check, env, goal in cases(Path(tmp)):
            a, b = [], []
            for _ in range(repeats):
                a.append(once(ours, env, expect_fail=True))
                b.append(once(check, env, expect_fail=True))
            cpu_a, cpu_b = statistics.median(x[0] for x in a), statistics.median(x[0] for x in b)
            ratio = cpu_a / cpu_b
            ok = ratio <= goal
            missed += not ok
            print(f"{name:40} {cpu_a:8.2f}s {cpu_b:9.2f}s {ratio:5.2f}x {goal:4.1f}x "
                  f"{statistics.median(x[1] for x in a):9.2f}s {'ok' if ok else 'MISSED'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
