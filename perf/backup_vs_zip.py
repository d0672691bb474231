"""Backup wheel of the installed torch vs `zip -r` of the same two folders, side by side in one run.

Prints both times, the time ratio (goal <= 0.20), both sizes and the size ratio (goal <= 1.05), and
the backup's peak memory; exits 1 when a goal is missed.
Usage: python perf/backup_vs_zip.py [--python PY] [--dist torch] [--fast]
"""

from __future__ import annotations

import argparse
import glob
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TIME_GOAL, SIZE_GOAL = 0.20, 1.05


def timed(argv, cwd=None) -> tuple[float, int]:
    """Wall seconds and the child's peak RSS (KiB) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    return seconds, max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--dist", default="torch")
    ap.add_argument("--fast", action="store_true", help="compare the --fast backup")
    args = ap.parse_args()
    if not shutil.which("zip"):
        sys.exit("zip is not installed (apt-get install zip)")
    site = subprocess.run([args.python, "-c", f"import {args.dist}, os; print(os.path.dirname(os.path.dirname("
                           f"{args.dist}.__file__)))"], capture_output=True, text=True, check=True).stdout.strip()
    folders = [args.dist] + [Path(p).name for p in glob.glob(os.path.join(site, f"{args.dist}-*.dist-info"))]
    size = sum(f.stat().st_size for d in folders for f in Path(site, d).rglob("*") if f.is_file())
    with tempfile.TemporaryDirectory() as tmp:
        # warm the page cache so neither side pays for the first read
        subprocess.run(["tar", "cf", "/dev/null", *folders], cwd=site, check=True)
        zip_s, _ = timed(["zip", "-r", "-q", os.path.join(tmp, "seed.whl"), *folders], cwd=site)
        zip_size = os.path.getsize(os.path.join(tmp, "seed.whl"))
        cmd = [sys.executable, "-m", "invoke", "torch.backup", "--dist", args.dist, "--python", args.python,
               "-o", os.path.join(tmp, "bk")] + (["--fast"] if args.fast else [])
        bk_s, rss = timed(cmd, cwd=ROOT)
        [wheel] = glob.glob(os.path.join(tmp, "bk", "*.whl"))
        bk_size = os.path.getsize(wheel)
    print(f"installed {args.dist}: {size / 1e6:.0f} MB in {', '.join(folders)} ({os.cpu_count()} CPUs)")
    print(f"zip -r (default level 6):   {zip_s:7.1f} s  {zip_size / 1e6:7.1f} MB")
    print(f"inv torch.backup{' --fast' if args.fast else '':7}:  {bk_s:7.1f} s  {bk_size / 1e6:7.1f} MB"
          f"  (peak RSS {rss / 1024:.0f} MiB)")
    from rebuilt.build.wheel.zipwriter import engine

    eng = engine(args.fast)
    print(f"deflate engine: {eng.name} level {eng.level}")
    time_ratio, size_ratio = bk_s / zip_s, bk_size / zip_size
    print(f"time ratio backup/zip: {time_ratio:.2f}  (goal <= {TIME_GOAL:.2f})")
    print(f"size ratio backup/zip: {size_ratio:.2f}  (goal <= {SIZE_GOAL:.2f})")
    if time_ratio > TIME_GOAL or size_ratio > SIZE_GOAL:
        print("goal missed")
        sys.exit(1)


if __name__ == "__main__":
    main()
