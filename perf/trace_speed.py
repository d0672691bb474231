"""Trace processing speed and memory: rebuilt's streaming path vs json.load → same algorithm → json.dump.

    python perf/trace_speed.py                 # 1 GB (uncompressed), the figures in docs/PERFORMANCE.md
    python perf/trace_speed.py --size-mb 100   # quick check
    python perf/trace_speed.py --size-mb 50 --verify   # also check both paths write the same JSON

Generates one kineto-shaped trace of --size-mb MB (for perfetto-fix) and a folder of
--ranks rank files of the same total size (for merge) under --workdir, then runs
each operation once per implementation, each in its own child process, and reports
wall time and the child's peak RSS. Generated files are deleted at the end unless
--keep. Each figure is printed against its goal (GOALS); the exit status is 1 when
one is missed (or --verify finds a difference), 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rebuilt.tools.trace import synth  # noqa: E402

# Each child prints its own peak RSS (VmHWM of its address space) as the last line.
# ru_maxrss from wait4 is not used: Linux carries the forking parent's high-water
# mark into the child across exec, so a big parent would inflate every figure.
HWM = """
def _hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print("VMHWM", int(line.split()[1]) * 1024)
"""
FAST_FIX = HWM + """
import sys
from rebuilt.tools.trace import perfetto_fix as f
f.fix_file(sys.argv[1], sys.argv[2]); _hwm()
"""
REF_FIX = HWM + """
import sys
from rebuilt.tools.trace import reference as r
r.fix(sys.argv[1], sys.argv[2]); _hwm()
"""
MERGE = HWM + """
import sys
from rebuilt.tools.trace import merge as m, reference as r
group = m.discover([sys.argv[1]])[0]
opts = m.Options(fix=sys.argv[4] == "fix")
if sys.argv[3] == "fast":
    m.merge_group(group, sys.argv[2], opts)
else:
    r.merge(group, sys.argv[2], opts)
_hwm()
"""
SAME = """
import sys
from rebuilt.tools.trace import reference as r
print("SAME", r.load(sys.argv[1]) == r.load(sys.argv[2]))
"""


# operation -> (least speed-up over json, most peak RSS as a share of the input or None)
GOALS = {"perfetto-fix": (6.0, 1.0), "merge": (6.0, None)}

# Kernel names with "},{" inside are legal and handled, but rare in real traces; the
# generated trace has one in WEIRD_EVERY kernels (the tests use one in three).
WEIRD_EVERY = 2000


def generate(workdir: Path, size: int, ranks: int, gz: bool) -> tuple[Path, Path]:
    ext = ".json.gz" if gz else ".json"
    single = workdir / f"single.trace{ext}"
    _write(single, synth.SynthSpec(target_bytes=size, seed=1, weird_every=WEIRD_EVERY), gz)
    folder = workdir / "ranks"
    folder.mkdir()
    for tp in range(ranks):
        spec = synth.SynthSpec(target_bytes=size // ranks, device=tp, cpu_pid=7000 + tp, seed=10 + tp,
                               weird_every=WEIRD_EVERY)
        _write(folder / f"1790000000.123-TP-{tp}-DECODE.trace{ext}", spec, gz)
    return single, folder


def _write(path: Path, spec: synth.SynthSpec, gz: bool) -> None:
    import gzip

    with (gzip.open(path, "wb", compresslevel=6) if gz else open(path, "wb")) as f:
        synth.write(f, spec)


def uncompressed_size(path: Path) -> int:
    from rebuilt.tools.trace import stream

    if path.is_dir():
        return sum(uncompressed_size(p) for p in path.iterdir())
    reader = stream.Reader(path)
    try:
        return sum(len(piece) for piece in iter(reader.read, b""))
    finally:
        reader.close()


def measure(code: str, *args: str) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one child running ``code``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=ROOT,
                          stdout=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}): {args}")
    return wall, int(proc.stdout.split("VMHWM")[-1])


def same_json(a: Path, b: Path) -> bool:
    proc = subprocess.run([sys.executable, "-c", SAME, str(a), str(b)], env={**os.environ, "PYTHONPATH": str(ROOT)},
                          stdout=subprocess.PIPE, text=True, check=True)
    return "SAME True" in proc.stdout


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=float, default=1000, help="uncompressed size of the trace (MB = 1e6 bytes)")
    ap.add_argument("--ranks", type=int, default=4, help="rank files the merge input is split into")
    ap.add_argument("--gz", action="store_true", help="inputs and outputs as .json.gz (level 6)")
    ap.add_argument("--workdir", default=None, help="where to generate (default: a temp folder under /tmp)")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--verify", action="store_true", help="check both paths wrote the same JSON (slow, RAM)")
    ap.add_argument("--skip-merge-fix", action="store_true", help="leave out the merge --fix case")
    ap.add_argument("--fix-only", action="store_true", help="only perfetto-fix (no rank files, no merge)")
    args = ap.parse_args(argv)

    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="trace_speed.", dir="/tmp"))
    workdir.mkdir(parents=True, exist_ok=True)
    ext = ".json.gz" if args.gz else ".json"
    try:
        t0 = time.perf_counter()
        single, folder = generate(workdir, int(args.size_mb * 1e6), 0 if args.fix_only else args.ranks, args.gz)
        size_single, size_ranks = uncompressed_size(single), uncompressed_size(folder)
        print(f"generated {size_single / 1e6:,.0f} MB trace and {args.ranks} rank files of "
              f"{size_ranks / 1e6:,.0f} MB in total ({ext}) in {time.perf_counter() - t0:.0f} s under {workdir}")
        cases = [("perfetto-fix", size_single,
                  (FAST_FIX, str(single), str(workdir / f"fast.fix{ext}")),
                  (REF_FIX, str(single), str(workdir / f"ref.fix{ext}")))]
        for fix in ([] if args.fix_only else [False] if args.skip_merge_fix else [False, True]):
            tag = "fix" if fix else "plain"
            name = "merge --fix" if fix else "merge"
            cases.append((name, size_ranks,
                          (MERGE, str(folder), str(workdir / f"fast.merge.{tag}{ext}"), "fast", tag),
                          (MERGE, str(folder), str(workdir / f"ref.merge.{tag}{ext}"), "ref", tag)))
        rows = []
        for name, size, fast, ref in cases:
            ft, frss = measure(*fast)
            rt, rrss = measure(*ref)
            ok = same_json(Path(fast[2]), Path(ref[2])) if args.verify else None
            rows.append((name, size, ft, rt, frss, rrss, ok))
            for p in (fast[2], ref[2]):
                Path(p).unlink(missing_ok=True)
            print(f"  {name}: rebuilt {ft:.1f} s, json {rt:.1f} s", flush=True)
        print()
        print(f"{'operation':<14}{'input MB':>9}{'rebuilt s':>11}{'json s':>9}{'speed-up':>10}"
              f"{'rebuilt peak RSS':>18}{'json peak RSS':>15}" + ("  same JSON" if args.verify else ""))
        for name, size, ft, rt, frss, rrss, ok in rows:
            print(f"{name:<14}{size / 1e6:>9,.0f}{ft:>11.1f}{rt:>9.1f}{rt / ft:>9.1f}x"
                  f"{frss / 1e6:>10,.0f} MB {frss / size:>4.2f}x{rrss / 1e6:>9,.0f} MB {rrss / size:>4.1f}x"
                  + (f"  {ok}" if ok is not None else ""))
        print(json.dumps({"size_mb": args.size_mb, "gz": args.gz, "results": [
            {"op": n, "input_bytes": s, "rebuilt_s": round(f, 2), "json_s": round(r, 2),
             "speedup": round(r / f, 2), "rebuilt_peak_rss": fr, "rebuilt_rss_over_input": round(fr / s, 2),
             "json_peak_rss": rr, "same_json": ok} for n, s, f, r, fr, rr, ok in rows]}))
        missed = check_goals(rows)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if missed else 0


def check_goals(rows: list) -> int:
    """Print each figure against its goal; the number of goals missed."""
    missed = 0
    print()
    for name, size, ft, rt, frss, _rrss, ok in rows:
        speed, rss = GOALS.get(name, (None, None))
        checks = []
        if speed is not None:
            checks.append((f"speed-up {rt / ft:.1f}x, goal >= {speed:g}x", rt / ft >= speed))
        if rss is not None:
            checks.append((f"peak RSS {frss / size:.2f}x the input, goal <= {rss:g}x", frss / size <= rss))
        if ok is not None:
            checks.append(("same JSON as the reference", ok))
        for text, good in checks:
            print(f"{'ok  ' if good else 'MISS'} {name}: {text}")
            missed += not good
    return missed


if __name__ == "__main__":
    sys.exit(main())
