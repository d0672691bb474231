"""What a trace's GPU did, as a table: busy/idle per stream, top kernels, gaps between kernels.

* per GPU stream (pid, tid): kernels, busy time (the union of kernel, memcpy and
  memset intervals, so overlapping kernels count once), the span from first start
  to last end, idle time and the largest idle gap;
* kernels by total time: count, total, mean and share of all kernel time;
* time between consecutive kernels on a stream (next start − previous end;
  negative when the next one started early, PDL): median, p90, max.
"""

from __future__ import annotations

import csv
import math
import statistics
from array import array
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from rebuilt.core.fs import atomic_path
from rebuilt.tools.trace import io, stream
from rebuilt.tools.trace.perfetto_fix import NoKernels, is_kernel, sort_key, track_of

GPU_BUSY_CATS = {"gpu_memcpy", "gpu_memset"}


@dataclass
class Stream:
    pid: object
    tid: object
    name: str
    kernels: int = 0
    busy_us: float = 0.0
    span_us: float = 0.0
    idle_gaps: int = 0
    max_idle_us: float = 0.0
    gaps: list = field(default_factory=list)  # µs between consecutive kernels

    @property
    def label(self) -> str:
        return f"{self.name} (pid {self.pid})"


@dataclass
class KernelRow:
    name: str
    count: int
    total_us: float
    share: float

    @property
    def mean_us(self) -> float:
        return self.total_us / self.count


@dataclass
class Summary:
    path: Path
    streams: list[Stream]
    kernels: list[KernelRow]  # all, by total time
    kernel_total_us: float
    kernel_count: int

    @property
    def gaps(self) -> list[float]:
        return [g for s in self.streams for g in s.gaps]


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


class _Tracks:
    def __init__(self) -> None:
        self.starts: dict = defaultdict(lambda: array("q"))
        self.ends: dict = defaultdict(lambda: array("q"))
        self.names: dict = defaultdict(lambda: array("l"))  # -1 = not a kernel
        self.busy_only: dict = defaultdict(list)
        self.name_ids: dict[str, int] = {}
        self.thread_names: dict = {}
        self.process_names: dict = {}

    def add(self, ev: dict | None) -> None:
        if ev is None:
            return
        ph = ev.get("ph")
        if ph == "M":
            args = ev.get("args")
            if type(args) is dict and isinstance(args.get("name"), str):
                if ev.get("name") == "thread_name":
                    self.thread_names[track_of(ev)] = args["name"].strip()
                elif ev.get("name") == "process_name":
                    self.process_names[track_of(ev)[0]] = args["name"]
            return
        if ph != "X":
            return
        kernel = is_kernel(ev)
        if not kernel and ev.get("cat") not in GPU_BUSY_CATS:
            return
        ts, dur = ev.get("ts"), ev.get("dur", 0)
        if not isinstance(ts, (int, float)) or not isinstance(dur, (int, float)):
            return
        track = track_of(ev)
        start = round(ts * 1000)
        end = start + max(round(dur * 1000), 0)
        if kernel:
            name = str(ev.get("name", "?"))
            nid = self.name_ids.setdefault(name, len(self.name_ids))
            self.starts[track].append(start)
            self.ends[track].append(end)
            self.names[track].append(nid)
        else:
            self.busy_only[track].append((start, end))


def summarize(path: Path | str) -> Summary:
    """Read a trace and compute the summary; NoKernels when it has no GPU kernels."""
    path = Path(path)
    tf = stream.TraceStream(path)
    tracks = _Tracks()
    with io.no_gc():
        for batch in tf.batches():
            for value in batch.values:
                tracks.add(value)
    if not tracks.starts:
        raise NoKernels(f"{path}: no GPU kernels in this trace (a CPU-only profile?); nothing to summarise",
                        hint="profile with CUDA activities and pass that trace")
    names = list(tracks.name_ids)
    per_name_total: dict[int, int] = defaultdict(int)
    per_name_count: dict[int, int] = defaultdict(int)
    streams = []
    for track in sorted(set(tracks.starts) | set(tracks.busy_only), key=lambda t: (sort_key(t[0]), sort_key(t[1]))):
        starts, ends, nids = tracks.starts.get(track, ()), tracks.ends.get(track, ()), tracks.names.get(track, ())
        for s, e, n in zip(starts, ends, nids):
            per_name_total[n] += e - s
            per_name_count[n] += 1
        streams.append(_stream(track, starts, ends, tracks))
    total = sum(per_name_total.values())
    rows = [KernelRow(names[n], per_name_count[n], per_name_total[n] / 1000,
                      per_name_total[n] / total if total else 0.0) for n in per_name_total]
    rows.sort(key=lambda r: (-r.total_us, r.name))
    return Summary(path, streams, rows, total / 1000, sum(per_name_count.values()))


def _stream(track: tuple, starts, ends, tracks: _Tracks) -> Stream:
    pid, tid = track
    name = tracks.thread_names.get(track) or f"stream {tid}"
    st = Stream(pid, tid, name, kernels=len(starts))
    kernels = sorted(zip(starts, ends))
    st.gaps = [(b[0] - a[1]) / 1000 for a, b in zip(kernels, kernels[1:])]
    intervals = sorted(kernels + tracks.busy_only.get(track, []))
    if not intervals:
        return st
    busy = 0
    cur_s, cur_e = intervals[0]
    for s, e in intervals[1:]:
        if s > cur_e:
            busy += cur_e - cur_s
            st.idle_gaps += 1
            st.max_idle_us = max(st.max_idle_us, (s - cur_e) / 1000)
            cur_s, cur_e = s, e
        elif e > cur_e:
            cur_e = e
    busy += cur_e - cur_s
    st.busy_us = busy / 1000
    st.span_us = (max(e for _, e in intervals) - intervals[0][0]) / 1000
    return st


def _fmt_us(us: float) -> str:
    if math.isnan(us):
        return "-"
    if abs(us) >= 1000:
        return f"{us / 1000:,.2f} ms"
    return f"{us:,.1f} us"


def _table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _gap_cells(gaps: list[float]) -> list[str]:
    g = sorted(gaps)
    if not g:
        return ["-", "-", "-", "0"]
    return [_fmt_us(statistics.median(g)), _fmt_us(percentile(g, 0.9)), _fmt_us(g[-1]),
            str(sum(1 for x in g if x < 0))]


def render(s: Summary, top: int = 15, width: int = 72) -> str:
    """The summary as terminal tables."""
    out = [f"{s.path}: {s.kernel_count:,} kernels on {len(s.streams)} GPU stream(s), "
           f"{_fmt_us(s.kernel_total_us)} of kernel time", ""]
    rows = []
    for st in s.streams:
        share = f"{100 * st.busy_us / st.span_us:.1f}%" if st.span_us else "-"
        rows.append([st.label, str(st.kernels), _fmt_us(st.busy_us), _fmt_us(st.span_us), share,
                     _fmt_us(st.span_us - st.busy_us), str(st.idle_gaps), _fmt_us(st.max_idle_us)])
    out.append("GPU streams (busy = union of kernels and copies)")
    out.append(_table(["stream", "kernels", "busy", "span", "busy %", "idle", "idle gaps", "largest gap"],
                      rows, set(range(1, 8))))
    out += ["", f"Top {min(top, len(s.kernels))} of {len(s.kernels)} kernels by total time"]
    rows = []
    for k in s.kernels[:top]:
        name = k.name if len(k.name) <= width else k.name[: width - 3] + "..."
        rows.append([name, f"{k.count:,}", _fmt_us(k.total_us), _fmt_us(k.mean_us), f"{100 * k.share:.1f}%"])
    out.append(_table(["kernel", "count", "total", "mean", "share"], rows, {1, 2, 3, 4}))
    out += ["", "Time between consecutive kernels on a stream (next start - previous end; < 0: overlap)"]
    rows = [[st.label] + _gap_cells(st.gaps) for st in s.streams]
    rows.append(["all streams"] + _gap_cells(s.gaps))
    out.append(_table(["stream", "median", "p90", "max", "overlaps"], rows, {1, 2, 3, 4}))
    return "\n".join(out)


CSV_COLUMNS = ["section", "name", "pid", "tid", "count", "total_us", "mean_us", "share_pct", "busy_us",
               "span_us", "idle_gaps", "max_idle_us", "gap_median_us", "gap_p90_us", "gap_max_us"]


def write_csv(s: Summary, path: Path | str) -> Path:
    """Every stream and every kernel as rows of one CSV (section = stream | kernel | gaps)."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, CSV_COLUMNS)
        w.writeheader()
        for st in s.streams:
            g = sorted(st.gaps)
            w.writerow({"section": "stream", "name": st.name, "pid": st.pid, "tid": st.tid, "count": st.kernels,
                        "busy_us": f"{st.busy_us:.3f}", "span_us": f"{st.span_us:.3f}",
                        "idle_gaps": st.idle_gaps, "max_idle_us": f"{st.max_idle_us:.3f}",
                        **_gap_csv(g)})
        for k in s.kernels:
            w.writerow({"section": "kernel", "name": k.name, "count": k.count, "total_us": f"{k.total_us:.3f}",
                        "mean_us": f"{k.mean_us:.3f}", "share_pct": f"{100 * k.share:.3f}"})
        w.writerow({"section": "gaps", "name": "all streams", "count": len(s.gaps), **_gap_csv(sorted(s.gaps))})
    return path


def _gap_csv(g: list[float]) -> dict:
    if not g:
        return {}
    return {"gap_median_us": f"{statistics.median(g):.3f}", "gap_p90_us": f"{percentile(g, 0.9):.3f}",
            "gap_max_us": f"{g[-1]:.3f}"}
