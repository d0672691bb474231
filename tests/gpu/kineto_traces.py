"""Make small real Kineto traces on a CUDA machine, with a kernel pair overlapped by PDL.

    python3 tests/gpu/kineto_traces.py --out DIR

Writes, gzip-compressed, into DIR:
  pdl.trace.json.gz                       one profile: torch ops on two streams, then kernel pairs
                                          launched with and without programmatic dependent launch (PDL)
  <time>-TP-0-DECODE.trace.json.gz,       two profiles of the same program named as sglang names
  <time>-TP-1-DECODE.trace.json.gz        per-rank traces (one GPU: the "ranks" run one after the other)
and prints, per PDL pair, whether the dependent kernel started before the primary ended.

The pair: ``pdl_primary`` calls ``cudaTriggerProgrammaticLaunchCompletion()`` first and then
spins; ``pdl_secondary`` is launched with ``cudaLaunchKernelEx`` and
``cudaLaunchAttributeProgrammaticStreamSerialization`` on the same stream, spins (its
independent prologue) and then waits in ``cudaGridDependencySynchronize()`` before it
reads the primary's output. See the CUDA programming guide, "Programmatic Dependent
Launch and Synchronization" (CUDA 12+, sm_90). Needs torch with CUDA, nvcc and ninja;
nothing from rebuilt, so it runs on a bare GPU image.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import time
from pathlib import Path

CPP = "void launch_pair(torch::Tensor buf, torch::Tensor out, int64_t primary_cycles, " \
      "int64_t secondary_cycles, bool pdl);"

CUDA = r"""
#include <torch/extension.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <cuda_runtime.h>

__device__ void spin(long long cycles) {
    long long t0 = clock64();
    while (clock64() - t0 < cycles) { }
}

__global__ void pdl_primary(float* buf, long long cycles) {
    cudaTriggerProgrammaticLaunchCompletion();  // griddepcontrol.launch_dependents
    spin(cycles);
    if (threadIdx.x == 0) buf[blockIdx.x] = 1.0f + blockIdx.x;
}

__global__ void pdl_secondary(const float* buf, float* out, long long cycles) {
    spin(cycles);                      // work that does not need the primary's output
    cudaGridDependencySynchronize();   // griddepcontrol.wait: the primary has finished
    if (threadIdx.x == 0) out[blockIdx.x] = 2.0f * buf[blockIdx.x];
}

void launch_pair(torch::Tensor buf, torch::Tensor out, int64_t primary_cycles,
                 int64_t secondary_cycles, bool pdl) {
    cudaStream_t stream = at::cuda::getCurrentCUDAStream();
    int blocks = (int)buf.numel();
    pdl_primary<<<blocks, 128, 0, stream>>>(buf.data_ptr<float>(), (long long)primary_cycles);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(blocks);
    cfg.blockDim = dim3(128);
    cfg.dynamicSmemBytes = 0;
    cfg.stream = stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = pdl ? 1 : 0;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    C10_CUDA_CHECK(cudaLaunchKernelEx(&cfg, pdl_secondary, (const float*)buf.data_ptr<float>(),
                                      out.data_ptr<float>(), (long long)secondary_cycles));
}
"""


def build():
    from torch.utils.cpp_extension import load_inline

    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "9.0")
    return load_inline(name="pdl_pair", cpp_sources=CPP, cuda_sources=CUDA, functions=["launch_pair"],
                       build_directory=_fresh("/tmp/pdl_pair_build"), verbose=False)


def _fresh(path: str) -> str:
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def workload(ext, torch, pairs: int, tag: int) -> None:
    """A few real torch kernels on two streams, then PDL and plain pairs on the current stream."""
    a = torch.randn(512, 512, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(512, 512, device="cuda", dtype=torch.bfloat16)
    side = torch.cuda.Stream()
    buf = torch.zeros(16, device="cuda")
    out = torch.zeros(16, device="cuda")
    for step in range(pairs):
        with torch.profiler.record_function(f"step {step} rank {tag}"):
            c = torch.relu(a @ b) + step
            with torch.cuda.stream(side):
                d = (b * 2).sum()
            ext.launch_pair(buf, out, 200_000, 60_000, True)   # overlapped: PDL
            ext.launch_pair(buf, out, 100_000, 20_000, False)  # serialised: no PDL
            torch.cuda.current_stream().wait_stream(side)
            (c.float().mean() + d.float()).item()
    torch.cuda.synchronize()
    assert torch.equal(out.cpu(), 2 * (1 + torch.arange(16, dtype=torch.float32))), "the pair computed wrong values"


def profile(ext, torch, path: Path, pairs: int, tag: int) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as prof

    workload(ext, torch, 1, tag)  # warm-up outside the profile
    with prof(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as p:
        workload(ext, torch, pairs, tag)
    raw = path.with_suffix("")  # x.trace.json
    p.export_chrome_trace(str(raw))
    with open(raw, "rb") as src, gzip.open(path, "wb", compresslevel=9) as dst:
        shutil.copyfileobj(src, dst)
    raw.unlink()


def overlaps(path: Path) -> list[tuple[float, float, float]]:
    """(primary end, secondary start, overlap µs) for each pair launched with PDL."""
    with gzip.open(path, "rt") as f:
        events = json.load(f)["traceEvents"]
    kernels = sorted((e for e in events if e.get("ph") == "X" and "registers per thread" in e.get("args", {})
                      and "pdl_" in e.get("name", "")), key=lambda e: e["ts"])
    out = []
    for first, second in zip(kernels, kernels[1:]):
        if "pdl_primary" in first["name"] and "pdl_secondary" in second["name"] \
                and (first["pid"], first["tid"]) == (second["pid"], second["tid"]):
            end = first["ts"] + first["dur"]
            out.append((end, second["ts"], end - second["ts"]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder for the .trace.json.gz files")
    ap.add_argument("--pairs", type=int, default=3, help="profiled steps (each: one PDL pair, one plain pair)")
    args = ap.parse_args()
    import torch

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(), flush=True)
    t0 = time.time()
    ext = build()
    print(f"extension built in {time.time() - t0:.0f} s", flush=True)
    single = out / "pdl.trace.json.gz"
    profile(ext, torch, single, args.pairs, 0)
    stamp = int(time.time())
    for rank in (0, 1):
        profile(ext, torch, out / f"{stamp}-TP-{rank}-DECODE.trace.json.gz", args.pairs, rank)
    overlapped = 0
    for path in sorted(out.glob("*.trace.json.gz")):
        pairs = overlaps(path)
        overlapped += sum(1 for _, _, us in pairs if us > 0)
        print(f"{path.name}: {path.stat().st_size:,} bytes; consecutive primary/secondary pairs "
              f"(primary end, secondary start, overlap us): {pairs}")
    print("PDL overlap seen" if overlapped else "NO PDL overlap seen in any trace")
    return 0 if overlapped else 1


if __name__ == "__main__":
    sys.exit(main())
