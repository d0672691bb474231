"""GPU health microbenchmark: bf16 GEMM TFLOP/s and device-to-device copy GB/s.

Run with the TARGET interpreter (the one with the custom torch), from anywhere:

    {python} -m rebuilt.tools.bench.gpu_health --json        # with rebuilt importable
    {python} /path/to/rebuilt/bench/gpu_health.py --json

It imports only torch and the standard library (and torch only inside ``main``, so the
pure functions below import anywhere). Both figures are timed with CUDA events after a
warm-up, as the median over repeats of a batch of iterations, on random data (never
zeros: some GPUs run zeros faster). The same run times a bare ``torch.matmul`` loop,
written out by hand, so the harness's own overhead can be seen: the harness must reach
90% of it, or the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable, Sequence
from typing import Any

# Dense (no sparsity) bf16 tensor-core TFLOP/s and HBM TB/s from NVIDIA's data sheets.
NOMINAL = {
    "H200": {"bf16_tflops": 989.4, "hbm_tbps": 4.8},
    "H100 NVL": {"bf16_tflops": 835.0, "hbm_tbps": 3.9},
    "H100 PCIe": {"bf16_tflops": 756.0, "hbm_tbps": 2.0},
    "H100": {"bf16_tflops": 989.4, "hbm_tbps": 3.35},  # SXM
}
HARNESS_MIN = 0.90


def nominal_for(name: str) -> dict[str, float] | None:
    """The data-sheet figures for a device name (``NVIDIA H200`` …), or None when unknown."""
    for key in ("H200", "H100 NVL", "H100 PCIe", "H100"):
        if key in name:
            return dict(NOMINAL[key], model=key)
    return None


def summarize(seconds: Sequence[float]) -> dict[str, Any]:
    """Median, min, max and relative spread of per-iteration times (seconds)."""
    if not seconds:
        raise ValueError("no timings")
    med = statistics.median(seconds)
    return {"median": med, "min": min(seconds), "max": max(seconds),
            "spread": (max(seconds) - min(seconds)) / med if med else 0.0, "repeats": list(seconds)}


def gemm_tflops(n: int, seconds: float) -> float:
    """TFLOP/s of an n×n×n matrix product (2·n³ flops)."""
    return 2.0 * n**3 / seconds / 1e12


def copy_gbps(nbytes: int, seconds: float) -> float:
    """GB/s of a device-to-device copy, counting bytes read plus bytes written."""
    return 2.0 * nbytes / seconds / 1e9


def fraction(value: float, reference: float | None) -> float | None:
    return value / reference if reference else None


def build_report(*, device: dict, n: int, gemm_s: Sequence[float], bare_s: Sequence[float],
                 copy_bytes: int, copy_s: Sequence[float]) -> dict[str, Any]:
    """The health report from raw timings (pure: unit-tested without a GPU)."""
    nominal = nominal_for(device.get("name", "")) or {}
    gemm, bare, copy = summarize(gemm_s), summarize(bare_s), summarize(copy_s)
    tflops = gemm_tflops(n, gemm["median"])
    bare_tflops = gemm_tflops(n, bare["median"])
    gbps = copy_gbps(copy_bytes, copy["median"])
    ratio = tflops / bare_tflops
    return {
        "device": device,
        "nominal": nominal or None,
        "matmul": {"n": n, "dtype": "bfloat16", "tflops": tflops, "seconds": gemm,
                   "fraction_of_nominal": fraction(tflops, nominal.get("bf16_tflops"))},
        "matmul_bare": {"tflops": bare_tflops, "seconds": bare},
        "harness_ratio": ratio,
        "harness_ok": ratio >= HARNESS_MIN,
        "copy": {"bytes": copy_bytes, "gbps": gbps, "seconds": copy,
                 "fraction_of_nominal": fraction(gbps, nominal.get("hbm_tbps", 0) * 1000)},
    }


def _pct(x: float | None) -> str:
    return f"{100 * x:.0f}% of nominal" if x is not None else "no nominal figure for this card"


def format_text(report: dict[str, Any]) -> str:
    d, mm, bare, cp = report["device"], report["matmul"], report["matmul_bare"], report["copy"]
    lines = [
        f"device  {d.get('name')} (sm {d.get('compute_capability')}, torch {d.get('torch')}, CUDA {d.get('cuda')})",
        f"matmul  bf16 {mm['n']}^3: {mm['tflops']:.1f} TFLOP/s ({_pct(mm['fraction_of_nominal'])}), "
        f"spread {100 * mm['seconds']['spread']:.1f}%",
        f"bare    torch.matmul loop: {bare['tflops']:.1f} TFLOP/s; harness reaches "
        f"{100 * report['harness_ratio']:.1f}% of it ({'ok' if report['harness_ok'] else 'BELOW 90%'})",
        f"copy    {cp['bytes'] / 2**30:.1f} GiB device-to-device: {cp['gbps']:.0f} GB/s read+write "
        f"({_pct(cp['fraction_of_nominal'])})",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- measuring (needs CUDA)


def time_cuda(torch, fn: Callable[[], Any], *, warmup: int, iters: int, repeats: int) -> list[float]:
    """Seconds per call of ``fn``: CUDA events around ``iters`` calls, ``repeats`` times, after a warm-up."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1000.0 / iters)
    return times


def bare_matmul(torch, a, b, c, *, warmup: int, iters: int, repeats: int) -> list[float]:
    """The reference: a plain ``torch.matmul`` loop, timed the same way, no helper calls."""
    for _ in range(warmup):
        torch.matmul(a, b, out=c)
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            torch.matmul(a, b, out=c)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1000.0 / iters)
    return times


def measure(torch, *, n: int, copy_mib: int, warmup: int, iters: int, repeats: int) -> dict[str, Any]:
    dev = torch.cuda.current_device()
    props = torch.cuda.get_device_properties(dev)
    device = {"index": dev, "name": props.name, "compute_capability": f"{props.major}.{props.minor}",
              "memory_total_gib": round(props.total_memory / 2**30, 1), "torch": torch.__version__,
              "cuda": torch.version.cuda}
    gen = torch.Generator(device="cuda").manual_seed(0)
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16, generator=gen)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16, generator=gen)
    c = torch.empty(n, n, device="cuda", dtype=torch.bfloat16)
    # Bare loop and harness alternate, one timed batch each per repeat, so clock and
    # temperature drift hit both alike; both are warmed up first.
    def gemm():
        torch.matmul(a, b, out=c)

    bare_s = bare_matmul(torch, a, b, c, warmup=warmup, iters=iters, repeats=1)
    gemm_s = time_cuda(torch, gemm, warmup=warmup, iters=iters, repeats=1)
    for _ in range(repeats - 1):
        bare_s += bare_matmul(torch, a, b, c, warmup=0, iters=iters, repeats=1)
        gemm_s += time_cuda(torch, gemm, warmup=0, iters=iters, repeats=1)
    if not bool(torch.isfinite(c).all()):
        raise RuntimeError("the matrix product produced non-finite values")
    a = b = c = None  # free the matrices before the copy buffers are allocated
    elems = copy_mib * 2**20 // 2
    src = torch.randn(elems, device="cuda", dtype=torch.bfloat16, generator=gen)
    dst = torch.empty_like(src)
    copy_s = time_cuda(torch, lambda: dst.copy_(src), warmup=warmup, iters=iters, repeats=repeats)
    return build_report(device=device, n=n, gemm_s=gemm_s, bare_s=bare_s,
                        copy_bytes=src.numel() * src.element_size(), copy_s=copy_s)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gpu_health", description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--n", type=int, default=8192, help="matrix size (n×n×n)")
    p.add_argument("--copy-mib", type=int, default=1024, help="copy buffer size in MiB")
    p.add_argument("--warmup", type=int, default=20, help="calls before timing")
    p.add_argument("--iters", type=int, default=20, help="calls per timed repeat")
    p.add_argument("--repeats", type=int, default=10, help="timed repeats (the median is reported)")
    args = p.parse_args(argv)
    try:
        import torch
    except ImportError as exc:
        print(f"gpu_health: torch is not importable in {sys.executable}: {exc}", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print(f"gpu_health: CUDA is not available to torch {torch.__version__} "
              f"(built for CUDA {torch.version.cuda}) in {sys.executable}: no GPU or driver visible",
              file=sys.stderr)
        return 2
    report = measure(torch, n=args.n, copy_mib=args.copy_mib, warmup=args.warmup,
                     iters=args.iters, repeats=args.repeats)
    print(json.dumps(report, indent=2) if args.json else format_text(report))
    if not report["harness_ok"]:
        print(f"gpu_health: the timing harness reached only {100 * report['harness_ratio']:.1f}% of the "
              "bare matmul loop (needs 90%): its figures are not trustworthy", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
