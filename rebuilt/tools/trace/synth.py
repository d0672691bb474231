"""Generated kineto-shaped traces with known PDL overlaps, for tests and ``perf/trace_speed.py``.

A generated rank has one CPU process (python thread launching kernels) and one GPU
process (``pid`` = device) with a few streams. Kernels on a stream sometimes start
before the previous one ends (the PDL overlap the perfetto fix untangles), chains of
three or more included. Every launch has a flow pair (``s`` on the CPU launch, ``f``
with ``bp:"e"`` on the kernel, ``id`` = correlation) as torch.profiler writes them.
Names include braces, quotes, backslashes and non-ASCII text on purpose.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import orjson

KERNEL_NAMES = [
    "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>, "
    "std::array<char*, 1ul> >(int, at::native::FillFunctor<float>, std::array<char*, 1ul>)",
    "void at::native::(anonymous namespace)::multi_tensor_apply_kernel<{lambda(int)#1}>()",
    "flashinfer::BatchPrefillWithPagedKVCacheKernel<128, true>",
    'weird "quoted" },{ name with \\ backslash and {"ph": "X"}',
    "fused_moe_kernel",
    "nvjet_tst_128x256_64x4_2x1_v_bz_coopA_TNN",
    "rms_norm_kernel<c10::BFloat16> \u00e9\u4e2d\u6587",
    "triton_poi_fused_add_mul_0",
]
WEIRD = KERNEL_NAMES[3]
NAMES = [n for n in KERNEL_NAMES if n is not WEIRD]
CPU_OPS = ["aten::mm", "aten::add", "aten::copy_", 'sglang::{"custom" op}', "aten::empty"]
STREAMS = (7, 13, 20)


@dataclass
class SynthSpec:
    """What one generated rank trace holds."""

    device: int = 0
    cpu_pid: int = 4242
    streams: tuple[int, ...] = STREAMS
    n_kernels: int = 200
    overlap_prob: float = 0.3
    contained_prob: float = 0.05
    memcpy_prob: float = 0.05
    annotation_every: int = 25
    seed: int = 0
    base_time_ns: int = 1_790_000_000_000_000_000
    start_us: float = 1_000_000.0
    style: str = "kineto"  # or "compact" (one json.dumps line per event)
    weird_every: int = 8  # every n-th kernel (on average) gets the name with quotes and },{
    target_bytes: int | None = None  # keep generating kernels until the file is this big


def _us(ns: int) -> float:
    return round(ns / 1000, 3)


def _metadata(spec: SynthSpec) -> list[dict]:
    ts = _us(int(spec.start_us * 1000) - 5000)
    out = []
    for pid, name, label, sort in (
        (spec.cpu_pid, "python", "CPU", spec.cpu_pid),
        (spec.device, "python", f"GPU {spec.device}", 0x1000000 + spec.device),
    ):
        out.append({"ph": "M", "name": "process_name", "ts": ts, "pid": pid, "tid": 0, "args": {"name": name}})
        out.append({"ph": "M", "name": "process_labels", "ts": ts, "pid": pid, "tid": 0, "args": {"labels": label}})
        out.append({"ph": "M", "name": "process_sort_index", "ts": ts, "pid": pid, "tid": 0,
                    "args": {"sort_index": sort}})
    out.append({"ph": "M", "name": "thread_name", "ts": ts, "pid": spec.cpu_pid, "tid": spec.cpu_pid,
                "args": {"name": f"thread {spec.cpu_pid} (python)"}})
    out.append({"ph": "M", "name": "thread_sort_index", "ts": ts, "pid": spec.cpu_pid, "tid": spec.cpu_pid,
                "args": {"sort_index": spec.cpu_pid}})
    for s in spec.streams:
        out.append({"ph": "M", "name": "thread_name", "ts": ts, "pid": spec.device, "tid": s,
                    "args": {"name": f"stream {s} "}})
        out.append({"ph": "M", "name": "thread_sort_index", "ts": ts, "pid": spec.device, "tid": s,
                    "args": {"sort_index": s}})
    return out


def events(spec: SynthSpec) -> Iterator[dict]:
    """Yield the events of one rank, metadata first, then launches in CPU time order."""
    rng = random.Random(spec.seed)
    yield from _metadata(spec)
    cpu_ns = int(spec.start_us * 1000)
    stream_end = {s: cpu_ns for s in spec.streams}
    stream_last: dict[int, tuple[int, int]] = {}
    corr = 1000 * (spec.device + 1)
    ext = 1
    i = 0
    while True:
        if spec.target_bytes is None and i >= spec.n_kernels:
            return
        i += 1
        corr += 1
        ext += 1
        stream = spec.streams[rng.randrange(len(spec.streams))]
        op_ns = cpu_ns
        launch_ns = op_ns + rng.randint(2000, 6000)
        launch_dur = rng.randint(3000, 8000)
        op_dur = launch_ns - op_ns + launch_dur + rng.randint(500, 3000)
        cpu_ns = op_ns + op_dur + rng.randint(500, 20000)
        yield {"ph": "X", "cat": "cpu_op", "name": rng.choice(CPU_OPS), "pid": spec.cpu_pid,
               "tid": spec.cpu_pid, "ts": _us(op_ns), "dur": _us(op_dur),
               "args": {"External id": ext, "Record function id": 0, "Concrete Inputs": ["", "1"],
                        "Input type": ["c10::BFloat16", "Scalar"], "Input Strides": [[4096, 1], []],
                        "Input Dims": [[16, 4096], []], "Ev Idx": i}}
        yield {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": spec.cpu_pid,
               "tid": spec.cpu_pid, "ts": _us(launch_ns), "dur": _us(launch_dur),
               "args": {"External id": ext, "cbid": 211, "correlation": corr}}
        yield {"ph": "s", "id": corr, "pid": spec.cpu_pid, "tid": spec.cpu_pid, "ts": _us(launch_ns),
               "cat": "ac2g", "name": "ac2g"}
        dur = rng.randint(2000, 40000)
        start = max(stream_end[stream], launch_ns + 5000) + rng.randint(0, 3000)
        last = stream_last.get(stream)
        if last and rng.random() < spec.overlap_prob:
            prev_start, prev_end = last
            if rng.random() < spec.contained_prob / max(spec.overlap_prob, 1e-9):
                start = prev_start + (prev_end - prev_start) // 3
                dur = max(1, (prev_end - start) // 2)
            else:  # PDL: starts before the predecessor ends
                start = max(prev_start + 1, prev_end - rng.randint(1, max(1, (prev_end - prev_start) // 2)))
        if rng.random() < spec.memcpy_prob:
            yield {"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy HtoD (Pinned -> Device)",
                   "pid": spec.device, "tid": stream, "ts": _us(start), "dur": _us(dur),
                   "args": {"External id": ext, "device": spec.device, "context": 1, "stream": stream,
                            "correlation": corr, "bytes": 4096, "memory bandwidth (GB/s)": 1.5}}
        else:
            name = WEIRD if rng.random() * spec.weird_every < 1 else rng.choice(NAMES)
            yield {"ph": "X", "cat": "kernel", "name": name, "pid": spec.device,
                   "tid": stream, "ts": _us(start), "dur": _us(dur),
                   "args": {"External id": ext, "queued": 0, "device": spec.device, "context": 1,
                            "stream": stream, "correlation": corr, "registers per thread": 32,
                            "shared memory": 0, "blocks per SM": 0.5, "warps per SM": 2.0,
                            "grid": [132, 1, 1], "block": [128, 1, 1], "est. achieved occupancy %": 12}}
        yield {"ph": "f", "id": corr, "pid": spec.device, "tid": stream, "ts": _us(start),
               "cat": "ac2g", "name": "ac2g", "bp": "e"}
        if spec.annotation_every and i % spec.annotation_every == 0:
            yield {"ph": "X", "cat": "gpu_user_annotation", "name": "decode {step}",
                   "pid": spec.device, "tid": stream, "ts": _us(start - 1000),
                   "dur": _us(dur + 2000), "args": {"External id": ext}}
        stream_last[stream] = (start, start + dur)
        stream_end[stream] = max(stream_end[stream], start + dur)


def _render_kineto(ev: dict) -> bytes:
    """One event laid out the way torch.profiler's chrome export writes it."""
    dumps = orjson.dumps
    parts = [b"  {\n"]
    first = True
    for key, value in ev.items():
        if key == "args":
            continue
        parts.append(b"    " if first else b",\n    ")
        parts.append(b'"' + key.encode() + b'": ' + dumps(value))
        first = False
    if "args" in ev:
        parts.append(b',\n    "args": {\n      ' + dumps(ev["args"])[1:-1] + b"\n    }")
    parts.append(b"\n  }")
    return b"".join(parts)


def _render_compact(ev: dict) -> bytes:
    return json.dumps(ev).encode()


def header(spec: SynthSpec) -> bytes:
    dev = {"id": spec.device, "name": "NVIDIA H200", "totalGlobalMem": 150_000_000_000,
           "computeMajor": 9, "computeMinor": 0, "maxThreadsPerBlock": 1024, "numSms": 132}
    return (
        '{\n  "schemaVersion": 1,\n  "deviceProperties": [\n    '
        + json.dumps(dev)
        + f'\n  ],\n  "displayTimeUnit": "ms",\n  "baseTimeNanoseconds": {spec.base_time_ns},\n'
        + '  "traceEvents": [\n'
    ).encode()


FOOTER = b'\n  ],\n  "traceName": "synthetic {rank} \\"trace\\"]"\n}\n'


def write(fp: IO[bytes], spec: SynthSpec) -> int:
    """Write one rank's trace to ``fp``; return the number of events."""
    render = _render_kineto if spec.style == "kineto" else _render_compact
    fp.write(header(spec))
    written = 0
    n = 0
    sep = b""
    for ev in events(spec):
        chunk = render(ev)
        fp.write(sep + chunk)
        sep = b",\n"
        written += len(chunk) + 2
        n += 1
        if spec.target_bytes is not None and written >= spec.target_bytes and ev.get("ph") == "f":
            break
    fp.write(FOOTER)
    return n


def document(spec: SynthSpec) -> dict:
    """The same trace as a Python object (for tests that build files with json)."""
    return {"schemaVersion": 1, "deviceProperties": [{"id": spec.device, "name": "NVIDIA H200"}],
            "baseTimeNanoseconds": spec.base_time_ns, "traceEvents": list(events(spec)),
            "traceName": "synthetic"}
