"""Merge sglang's per-rank torch.profiler traces into one Perfetto timeline.

sglang writes one file per rank: ``{time}-TP-{tp}[-DP-x][-PP-x][-EP-x][-EXTEND|-DECODE].trace.json.gz``.
Files that share ``{time}`` and stage form a *group* (one profile); each group
merges into one file where every rank is its own set of processes:

* process names become ``[TP00-DP01] <original name>``;
* pids and tids get ``rank_index * 10_000_000`` added (Perfetto keys threads by tid
  across the whole file, so both must be unique per rank), string pids/tids get the
  label as a prefix; flow ids become ``id * n_ranks + rank_index``;
* ``process_sort_index`` is rewritten so that ranks sort in rank order and each
  rank's processes keep their own order;
* ``deviceProperties`` of all ranks are kept (each entry tagged with its rank);
* optional: a time window (ms after the first event of the whole profile), GPU
  processes only, and the perfetto fix (``rebuilt.tools.trace.perfetto_fix``) per rank.

Timestamps are kept as written: ranks on one host share the profiler clock.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from rebuilt.errors import InputError
from rebuilt.tools.trace import io, stream
from rebuilt.tools.trace import perfetto_fix as fixer

NAME = re.compile(
    r"^(?P<time>.+?)-TP-(?P<tp>\d+)(?:-DP-(?P<dp>\d+))?(?:-PP-(?P<pp>\d+))?(?:-EP-(?P<ep>\d+))?"
    r"(?:-(?P<stage>EXTEND|DECODE))?\.trace\.json(?:\.gz)?$"
)
RANK_STRIDE = 10_000_000  # pids/tids of rank i become id + i * RANK_STRIDE
_FRESH_BASE = 4_100_000_000  # ids that do not fit the stride scheme are numbered from here
GPU_CATS = {"kernel", "gpu_memcpy", "gpu_memset", "gpu_user_annotation"}
_NO_SORT = float("inf")
_MISSING = object()


@dataclass(frozen=True)
class Rank:
    path: Path
    time: str
    tp: int
    dp: int | None = None
    pp: int | None = None
    ep: int | None = None
    stage: str | None = None

    @property
    def label(self) -> str:
        parts = [f"TP{self.tp:02d}"]
        for name, value in (("DP", self.dp), ("PP", self.pp), ("EP", self.ep)):
            if value is not None:
                parts.append(f"{name}{value:02d}")
        return "-".join(parts)

    @property
    def order(self) -> tuple:
        return (self.tp, self.dp or 0, self.pp or 0, self.ep or 0)


@dataclass
class Group:
    time: str
    stage: str | None
    ranks: list[Rank] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.time}-{self.stage}" if self.stage else self.time

    def default_output(self) -> Path:
        return self.ranks[0].path.parent / f"{self.name}.merged.trace.json.gz"


@dataclass(frozen=True)
class Options:
    window_ms: tuple[float | None, float | None] | None = None
    gpu_only: bool = False
    fix: bool = False


def parse_name(path: Path) -> Rank | None:
    m = NAME.match(path.name)
    if not m:
        return None
    num = {k: int(m[k]) if m[k] is not None else None for k in ("tp", "dp", "pp", "ep")}
    return Rank(path, m["time"], num["tp"], num["dp"], num["pp"], num["ep"], m["stage"])


def parse_window(text: str | None) -> tuple[float | None, float | None] | None:
    """``"A:B"`` in ms after the trace start; either side may be empty."""
    if text is None:
        return None
    a, sep, b = text.partition(":")
    try:
        lo = float(a) if a.strip() else None
        hi = float(b) if b.strip() else None
    except ValueError:
        lo = hi = None
        sep = ""
    if not sep or (lo is None and hi is None) or (lo is not None and hi is not None and hi <= lo) \
            or (lo is not None and lo < 0):
        raise InputError(f"--window-ms {text!r}: expected START:END in ms after the trace start, "
                         "START < END, e.g. 100:250 or 100: or :50")
    return lo, hi


def discover(inputs: Iterable[Path | str]) -> list[Group]:
    """Rank files from one folder or a list of files, grouped by profile (time + stage)."""
    inputs = [Path(p) for p in inputs]
    if not inputs:
        raise InputError("no traces given", hint="pass the profile folder or the rank files")
    ranks: list[Rank] = []
    if len(inputs) == 1 and inputs[0].is_dir():
        folder = inputs[0]
        files = sorted(p for p in folder.iterdir() if p.is_file())
        ranks = [r for r in map(parse_name, files) if r is not None]
        if not ranks:
            others = f" ({len(files)} other file(s) there)" if files else " (it is empty)"
            raise InputError(
                f"{folder}: no sglang rank traces (*-TP-<rank>*.trace.json.gz) in this folder{others}",
                hint="point at SGLANG_TORCH_PROFILER_DIR after /stop_profile, or list the files",
            )
    else:
        for p in inputs:
            if p.is_dir():
                raise InputError(f"{p}: give one folder, or files only", hint="not both")
            if not p.exists():
                raise InputError(f"{p}: no such file")
            rank = parse_name(p)
            if rank is None:
                raise InputError(
                    f"{p}: the name does not look like an sglang rank trace "
                    "({time}-TP-{rank}[-DP-x][-PP-x][-EP-x][-EXTEND|-DECODE].trace.json.gz)",
                    hint="merge needs each file's rank from its name; rename it accordingly",
                )
            ranks.append(rank)
    groups: dict[tuple, Group] = {}
    for r in ranks:
        groups.setdefault((r.time, r.stage), Group(r.time, r.stage)).ranks.append(r)
    out = sorted(groups.values(), key=lambda g: (g.time, g.stage or ""))
    for g in out:
        g.ranks.sort(key=lambda r: r.order)
        seen: dict[str, Path] = {}
        for r in g.ranks:
            if r.label in seen:
                raise InputError(f"{r.path}: rank {r.label} appears twice in profile {g.name} "
                                 f"(also {seen[r.label].name})")
            seen[r.label] = r.path
    return out


def choose(groups: list[Group], wanted: str | None, output_given: bool) -> list[Group]:
    """The groups to merge: the one asked for, all (one output each), or a clear refusal."""
    listing = "\n".join(f"    {g.name}: {len(g.ranks)} rank file(s)" for g in groups)
    if wanted is not None:
        hits = [g for g in groups if g.name == wanted] or [g for g in groups if g.name.startswith(wanted)]
        if len(hits) != 1:
            raise InputError(f"--group {wanted!r} matches {len(hits)} of the profiles here:\n{listing}",
                             hint="give one of the names above")
        return hits
    if len(groups) > 1 and output_given:
        raise InputError(f"these traces hold {len(groups)} different profiles:\n{listing}",
                         hint="pick one with --group NAME, or leave out -o to write one merged file per profile")
    return groups


def _is_num(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class RankScan:
    """Optional first pass over a rank: when does it start, which pids are GPUs."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.end: float | None = None
        self.gpu_pids: set = set()

    def add(self, ev: dict | None) -> None:
        if ev is None:
            return
        ph = ev.get("ph")
        if ph == "M":
            args = ev.get("args")
            if ev.get("name") == "process_labels" and type(args) is dict \
                    and str(args.get("labels", "")).startswith("GPU"):
                self.gpu_pids.add(fixer.hashable(ev.get("pid")))
            return
        ts = ev.get("ts")
        if isinstance(ts, (int, float)) and not isinstance(ts, bool):
            if self.start is None or ts < self.start:
                self.start = ts
            dur = ev.get("dur", 0)
            end = ts + dur if isinstance(dur, (int, float)) else ts
            if self.end is None or end > self.end:
                self.end = end
        if ev.get("cat") in GPU_CATS or fixer.is_kernel(ev):
            self.gpu_pids.add(fixer.hashable(ev.get("pid")))


class Merger:
    """State shared by the ranks of one group: id spaces, sort order, window."""

    def __init__(self, group: Group, opts: Options, scans: list[RankScan] | None):
        self.group = group
        self.opts = opts
        self.n = len(group.ranks)
        if self.n * RANK_STRIDE > _FRESH_BASE:
            raise InputError(f"profile {group.name}: {self.n} ranks is more than this merge supports "
                             f"({_FRESH_BASE // RANK_STRIDE})")
        self.scans = scans
        self.window: tuple[float, float] | None = None
        self.start: float | None = None
        if opts.window_ms is not None or opts.gpu_only:
            if scans is None:
                raise ValueError("window/gpu-only need the first pass (scans)")
        if opts.window_ms is not None:
            starts = [s.start for s in scans if s.start is not None]
            ends = [s.end for s in scans if s.end is not None]
            if not starts:
                raise InputError(f"profile {group.name}: no timed events, a window cannot apply")
            self.start = min(starts)
            lo, hi = opts.window_ms
            self.window = (self.start + (lo or 0.0) * 1000,
                           self.start + hi * 1000 if hi is not None else float("inf"))
            self.span_ms = (max(ends) - self.start) / 1000
        if opts.gpu_only and not any(s.gpu_pids for s in scans):
            raise InputError(f"profile {group.name}: no GPU events in any rank, --gpu-only leaves nothing",
                             hint="leave out --gpu-only, or profile with CUDA activities")
        self.next_sort = 0
        self.next_fresh = _FRESH_BASE
        self.mappers: list[RankMapper] = []
        self.kept = 0

    def rank(self, rank: Rank) -> RankMapper:
        index = self.group.ranks.index(rank)
        gpu = self.scans[index].gpu_pids if self.opts.gpu_only else None
        mapper = RankMapper(self, rank, index, gpu)
        self.mappers.append(mapper)
        return mapper

    def top_level(self) -> dict:
        """Top-level keys of the merged file other than traceEvents."""
        out: dict = {}
        if self.mappers:
            for key, value in self.mappers[0].members.items():
                if key not in ("deviceProperties", "traceName"):
                    out[key] = value
        devices = []
        for m in self.mappers:
            props = m.members.get("deviceProperties")
            for d in props if isinstance(props, list) else ():
                devices.append({**d, "rank": m.rank.label} if isinstance(d, dict) else d)
        out["deviceProperties"] = devices
        out["traceName"] = f"merged {self.group.name}"
        out["rebuiltMerge"] = {
            "ranks": [{"label": m.rank.label, "file": m.rank.path.name} for m in self.mappers],
            "window_ms": list(self.opts.window_ms) if self.opts.window_ms else None,
            "gpu_only": self.opts.gpu_only,
            "perfetto_fix": self.opts.fix,
        }
        return out

    def check_kept(self) -> None:
        if self.window is not None and self.kept == 0:
            lo, hi = self.opts.window_ms
            raise InputError(f"profile {self.group.name}: --window-ms {lo}:{hi} holds no events "
                             f"(the profile lasts {self.span_ms:.3f} ms)")


class RankMapper:
    """Maps one rank's events into the merged id space."""

    def __init__(self, merger: Merger, rank: Rank, index: int, gpu_pids: set | None):
        self.m = merger
        self.rank = rank
        self.index = index
        self.label = rank.label
        self.offset = index * RANK_STRIDE
        self.gpu_pids = gpu_pids
        self.fresh: dict = {}
        self.pids: dict[Hashable, Hashable] = {}  # original -> new, in first-seen order
        self.named: set = set()
        self.sort: dict[Hashable, int] = {}
        self.members: dict = {}

    def _id(self, value: object) -> object:
        """pid/tid of this rank in the merged file."""
        if type(value) is int and 0 <= value < RANK_STRIDE:
            return value + self.offset
        if _is_num(value):
            key = ("n", value)
        elif isinstance(value, str):
            return f"[{self.label}] {value}" if value else value
        else:
            return value
        if key not in self.fresh:
            self.fresh[key] = self.m.next_fresh
            self.m.next_fresh += 1
        return self.fresh[key]

    def _flow(self, value: object) -> object:
        if _is_num(value) and value >= 0:
            return value * self.m.n + self.index
        if isinstance(value, str):
            try:
                return hex(int(value, 16) * self.m.n + self.index)
            except ValueError:
                return f"{self.label}:{value}"
        return value

    def _in_window(self, ev: dict) -> bool:
        ts = ev.get("ts")
        if ev.get("ph") == "M" or not isinstance(ts, (int, float)) or isinstance(ts, bool):
            return True
        lo, hi = self.m.window
        if ev.get("ph") == "X":
            dur = ev.get("dur", 0)
            dur = dur if isinstance(dur, (int, float)) else 0
            return ts < hi and ts + dur > lo or lo <= ts <= hi
        return lo <= ts <= hi

    def map(self, ev: dict) -> dict | None:
        """The merged version of one event (changed in place), or None to leave it out."""
        pid = ev.get("pid")
        if self.gpu_pids is not None and fixer.hashable(pid) not in self.gpu_pids:
            return None
        if self.m.window is not None and not self._in_window(ev):
            return None
        if ev.get("ph") == "M":
            name = ev.get("name")
            args = ev.get("args")
            if name == "process_sort_index":
                if type(args) is dict and _is_num(args.get("sort_index")):
                    self.sort[fixer.hashable(pid)] = args["sort_index"]
                return None  # rewritten in finish()
            if name == "process_name" and type(args) is dict and isinstance(args.get("name"), str):
                ev["args"] = {**args, "name": f"[{self.label}] {args['name']}"}
                self.named.add(fixer.hashable(pid))
        else:
            self.m.kept += 1
        if pid is not None or "pid" in ev:
            new = self.pids.get(pid) if type(pid) is int or type(pid) is str else None
            if new is None:
                key = fixer.hashable(pid)
                new = self.pids.get(key)
                if new is None:
                    new = self.pids[key] = self._id(pid)
            ev["pid"] = new
        tid = ev.get("tid")
        if tid is not None:
            ev["tid"] = tid + self.offset if type(tid) is int and 0 <= tid < RANK_STRIDE else self._id(tid)
        elif "tid" in ev:
            ev["tid"] = self._id(tid)
        if "id" in ev:
            ev["id"] = self._flow(ev["id"])
        if "bind_id" in ev:
            ev["bind_id"] = self._flow(ev["bind_id"])
        return ev

    def map_batch(self, values: list, first: int, changes: dict | None, out: list) -> int:
        """``map`` over a batch (``changes`` applied first), appending to ``out``; the number of
        events that are not valid JSON (None). The hot loop of a merge: locals cached, and the
        common event (no window, no GPU filter, not metadata) mapped inline, as ``map`` does."""
        if self.gpu_pids is not None or self.m.window is not None:
            return self._map_each(values, first, changes, out)
        pids, offset, n, index, missing = self.pids, self.offset, self.m.n, self.index, _MISSING
        opaque = kept = 0
        append = out.append
        for key, ev in enumerate(values, first):
            if ev is None:
                opaque += 1
                continue
            if changes:
                change = changes.get(key)
                if change is not None:
                    change.apply(ev)
            if ev.get("ph") == "M":
                mapped = self.map(ev)
                if mapped is not None:
                    append(mapped)
                continue
            kept += 1
            pid = ev.get("pid", missing)
            if pid is not missing:
                new = pids.get(pid) if type(pid) is int or type(pid) is str else None
                ev["pid"] = self._pid(pid) if new is None else new
            tid = ev.get("tid", missing)
            if tid is not missing:
                ev["tid"] = tid + offset if type(tid) is int and 0 <= tid < RANK_STRIDE else self._id(tid)
            fid = ev.get("id", missing)
            if fid is not missing:
                ev["id"] = fid * n + index if type(fid) is int and fid >= 0 else self._flow(fid)
            fid = ev.get("bind_id", missing)
            if fid is not missing:
                ev["bind_id"] = fid * n + index if type(fid) is int and fid >= 0 else self._flow(fid)
            append(ev)
        self.m.kept += kept
        return opaque

    def _map_each(self, values: list, first: int, changes: dict | None, out: list) -> int:
        opaque = 0
        for key, ev in enumerate(values, first):
            if ev is None:
                opaque += 1
                continue
            if changes:
                change = changes.get(key)
                if change is not None:
                    change.apply(ev)
            mapped = self.map(ev)
            if mapped is not None:
                out.append(mapped)
        return opaque

    def _pid(self, pid: object) -> object:
        key = fixer.hashable(pid)
        new = self.pids.get(key)
        if new is None:
            new = self.pids[key] = self._id(pid)
        return new

    def finish(self) -> list[dict]:
        """Sort indices (ranks in order, each rank's processes in their own order) and names."""
        out = []
        order = sorted(enumerate(self.pids.items()),
                       key=lambda item: (self.sort.get(item[1][0], _NO_SORT), item[0]))
        for _, (orig, new) in order:
            if orig not in self.named and not isinstance(orig, str):
                out.append({"ph": "M", "name": "process_name", "pid": new, "tid": self.offset,
                            "args": {"name": f"[{self.label}] pid {orig}"}})
            out.append({"ph": "M", "name": "process_sort_index", "pid": new, "tid": self.offset,
                        "args": {"sort_index": self.m.next_sort}})
            self.m.next_sort += 1
        return out


@dataclass
class Report:
    group: str
    output: Path
    ranks: int
    events_in: int = 0
    events_out: int = 0
    opaque: int = 0
    fixes: list = field(default_factory=list)  # (label, Plan)

    def summary(self) -> str:
        text = (f"{self.output}: {self.ranks} rank(s) of {self.group}, "
                f"{self.events_out:,} events (from {self.events_in:,})")
        moved = sum(p.moved for _, p in self.fixes)
        if self.fixes:
            text += f"; perfetto fix moved {moved:,} kernel(s)"
        if self.opaque:
            text += f"; left out {self.opaque} event(s) that are not valid JSON"
        return text


def merge_group(group: Group, out: Path, opts: Options) -> Report:
    """Merge one group into ``out`` (atomically), each rank read as a stream and written as it is mapped."""
    out = Path(out)
    io.check_not_input(out, [r.path for r in group.ranks])
    report = Report(group.name, out, len(group.ranks))
    plans: dict[Path, fixer.Plan] = {}
    scans = None
    if opts.window_ms is not None or opts.gpu_only:
        scans = []
        for rank in group.ranks:
            tf = stream.TraceStream(rank.path)
            scan = RankScan()
            col = fixer.Collector() if opts.fix else None
            with io.no_gc():
                for batch in tf.batches():
                    for value in batch.values:
                        scan.add(value)
                    if col is not None:
                        col.add_batch(batch.first, batch.values)
            if col is not None:
                plans[rank.path] = fixer.plan(col)
            scans.append(scan)
    merger = Merger(group, opts, scans)
    dumps = io.dumps
    with io.no_gc(), io.open_output(out) as fp:
        fp.write(b'{"traceEvents":[\n')
        sep = b""
        for rank in group.ranks:
            tf = stream.TraceStream(rank.path)
            plan = plans.pop(rank.path, None)
            if opts.fix and plan is None:
                plan = fixer.plan(fixer.collect(tf))
            if plan is not None:
                report.fixes.append((rank.label, plan))
            changes = plan.changes if plan is not None else None
            mapper = merger.rank(rank)
            pending: list = []
            for batch in tf.batches():
                report.events_in += len(batch.values)
                report.opaque += mapper.map_batch(batch.values, batch.first, changes, pending)
                sep = _flush(fp, pending, sep, report)
            for ev in plan.new_events if plan is not None else ():
                mapped = mapper.map(ev)
                if mapped is not None:
                    pending.append(mapped)
            pending.extend(mapper.finish())
            sep = _flush(fp, pending, sep, report)
            mapper.members = {k: tf.member(k) for k in tf.members}
        merger.check_kept()
        fp.write(b"\n],\n")
        top = merger.top_level()
        fp.write(b",\n".join(dumps(k) + b":" + dumps(v) for k, v in top.items()))
        fp.write(b"\n}\n")
    return report


def _flush(fp, events: list, sep: bytes, report: Report) -> bytes:
    """Write mapped events, one per line, and empty the list."""
    if not events:
        return sep
    report.events_out += len(events)
    try:
        text = b",\n".join(map(orjson.dumps, events))
    except TypeError:  # an integer orjson cannot write: the stdlib writes that batch
        text = b",\n".join(map(io.dumps, events))
    fp.write(sep + text)
    events.clear()
    return b",\n"
