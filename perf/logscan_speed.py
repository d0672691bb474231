"""How long a failure report takes on a large build log: rebuilt.build.logscan.excerpt (first error lines above
the tail) against reading the same file line by line once (what printing only the tail cost before).

The log is made here: nvcc and c++ command lines, nvcc warnings, coloured compiler output (sgl-kernel builds
with --color=always), -Werror flags; the one real error sits 70 lines above a 30-line traceback at the end,
so the scan reads the whole file (its worst case). Prints both times, the ratio and the scan's peak memory.
Usage: python perf/logscan_speed.py [--mb 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rebuilt.build import logscan  # noqa: E402
from tests.unit.test_logscan import FATAL, traceback_frames  # noqa: E402

BUILD = "/w/src/sglang/sgl-kernel/build"
FILLER = [
    f"[{{i}}/9000] /usr/local/cuda/bin/nvcc -forward-unknown-to-host-compiler -DFLASHINFER_ENABLE_BF16 "
    f"-I/w/src/sglang/sgl-kernel/include -I{BUILD}/_deps/repo-cutlass-src/include -O3 -DNDEBUG -std=c++17 "
    f"-Xcompiler=-fPIC --expt-relaxed-constexpr -gencode=arch=compute_90a,code=sm_90a --threads=8 -Werror=return-type "
    f"-MD -MT CMakeFiles/common_ops.dir/csrc/gemm/kernel_{{i}}.cu.o "
    f"-o CMakeFiles/common_ops.dir/csrc/gemm/kernel_{{i}}.cu.o "
    f"-c /w/src/sglang/sgl-kernel/csrc/gemm/kernel_{{i}}.cu",
    "/w/src/sglang/sgl-kernel/csrc/gemm/kernel_{i}.cu(88): warning #177-D: variable \"tid\" was declared but never "
    "referenced",
    "\x1b[01m\x1b[K/w/src/sglang/sgl-kernel/csrc/gemm/kernel_{i}.cu:41:3:\x1b[m\x1b[K \x1b[01;35m\x1b[Kwarning: "
    "\x1b[m\x1b[Kunused variable 'x' [\x1b[01;35m\x1b[K-Wunused-variable\x1b[m\x1b[K]",
    "-- Build files have been written to: /w/src/sglang/sgl-kernel/build (error_handler.cpp, 0 errors)",
]


def make_log(path: Path, megabytes: int) -> None:
    target = megabytes * 1024 * 1024
    with open(path, "w") as f:
        size, i = 0, 0
        while size < target:
            line = FILLER[i % len(FILLER)].format(i=i) + "\n"
            f.write(line)
            size += len(line)
            i += 1
        f.write(f"FAILED: {BUILD}/csrc/deep_ep.o\n{FATAL}\n")
        f.write("".join(f"[{j}/9000] compiling other objects\n" for j in range(70)))
        f.write("\n".join(traceback_frames(30)) + "\n")


def line_by_line(path: Path) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return "".join(collections.deque(f, maxlen=30))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "build.log"
        make_log(log, args.mb)
        size = log.stat().st_size / 2**20
        scan, base = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            text, errors = logscan.excerpt(log)
            scan.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            line_by_line(log)
            base.append(time.perf_counter() - t0)
        assert [e.text for e in errors][:2] == [f"FAILED: {BUILD}/csrc/deep_ep.o", FATAL], errors
        tracemalloc.start()
        logscan.excerpt(log)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    s, b = statistics.median(scan), statistics.median(base)
    print(f"log: {size:.0f} MiB; errors found: {len(errors)} (first: {errors[1].text[:60]}...)")
    print(f"logscan.excerpt: {s:.2f} s ({size / s:.0f} MiB/s), peak Python memory {peak:.1f} MiB")
    print(f"read line by line for the tail only: {b:.2f} s")
    print(f"ratio excerpt / tail-only read: {s / b:.2f}x")


if __name__ == "__main__":
    main()
