"""Make PDL-overlapped kernels visible in Perfetto: move them onto extra tracks.

Perfetto draws one slice per moment on a thread track; a kernel that starts before
the previous kernel on its stream has ended (programmatic dependent launch) is
dropped and leaves a hole. The fix, per GPU track (pid, tid):

1. sort its kernels by start; give each one to the first lane (lane 0 is the
   original track) whose last kernel has ended: greedy interval partitioning,
   which opens a lane only when every lane is busy, so the number of tracks equals
   the peak number of kernels running at once on that stream: the minimum;
2. every kernel on lane k >= 1 moves to a new thread of the same process, named
   "<parent name> (overlap k)" and sorted right after its parent;
3. the launch arrow's end (flow ``f``, bound by pid/tid/ts, ``bp:"e"`` = the
   enclosing slice) moves with its kernel.

The decision logic works on small records (``Collector`` → ``plan``) so that the
fast byte-level path (``fix_file``) and the plain-json reference
(``rebuilt.tools.trace.reference``) run the very same algorithm.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rebuilt.tools.trace import io, records, stream

LANE_TID_STEP = 1_000_000  # extra track k of tid 7 is tid 7 + k * 1e6 when free
_UINT32 = 1 << 32


def is_kernel(ev: dict) -> bool:
    """A GPU kernel: a complete slice whose args carry 'registers per thread'."""
    if ev.get("ph") != "X":
        return False
    args = ev.get("args")
    return type(args) is dict and "registers per thread" in args


def _ns(value: object) -> int | None:
    t = type(value)
    if t is float or t is int:
        return round(value * 1000)
    return None


def hashable(v: object) -> Hashable:
    t = type(v)
    if t is int or t is str or t is float:
        return v
    return v if isinstance(v, (int, str, float)) and not isinstance(v, bool) else repr(v)


def track_of(ev: dict) -> tuple[Hashable, Hashable]:
    pid = hashable(ev.get("pid"))
    return pid, hashable(ev.get("tid", ev.get("pid")))


def sort_key(v: Hashable) -> tuple:
    return (0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v))


class Collector:
    """Pass 1: keeps what the fix needs from each event, keyed by an opaque event key."""

    def __init__(self) -> None:
        # (pid, tid) -> [(start_ns, end_ns, key, correlation, ts)]
        self.kernels: dict[tuple, list] = defaultdict(list)
        # (pid, tid) -> [(ts_ns, key, id, binds_enclosing)]
        self.flows: dict[tuple, list] = defaultdict(list)
        self.thread_names: dict[tuple, tuple[str, object]] = {}  # track -> (name, ts or None)
        self.thread_sort: dict[tuple, tuple[int, list]] = {}  # track -> (index, [keys])
        self.tids: set = set()
        self.events = 0
        self.opaque = 0

    def add(self, key: Hashable, ev: dict | None) -> None:
        self.add_batch(key, [ev])

    def add_batch(self, first: int, values: list) -> None:
        """Events with consecutive keys first, first + 1, ... (the hot loop: kept flat)."""
        self.events += len(values)
        tids = self.tids
        add_tid = tids.add
        for key, ev in enumerate(values, first):
            if ev is None:
                self.opaque += 1
                continue
            tid = ev.get("tid")
            if tid is not None:
                add_tid(tid if type(tid) is int or type(tid) is str else hashable(tid))
            ph = ev.get("ph")
            if ph == "X":
                args = ev.get("args")
                if type(args) is dict and "registers per thread" in args:
                    self._kernel(key, ev, args)
            elif ph == "f":
                self._flow(key, ev)
            elif ph == "M":
                self._meta(key, ev)

    def _kernel(self, key: Hashable, ev: dict, args: dict) -> None:
        ts = ev.get("ts")
        start, dur = _ns(ts), _ns(ev.get("dur", 0))
        if start is not None and dur is not None:
            corr = args.get("correlation")
            self.kernels[track_of(ev)].append((start, start + max(dur, 0), key, corr, ts))

    def _flow(self, key: Hashable, ev: dict) -> None:
        ts = _ns(ev.get("ts"))
        if ts is not None:
            self.flows[track_of(ev)].append((ts, key, ev.get("id"), ev.get("bp") == "e"))

    def _meta(self, key: Hashable, ev: dict) -> None:
        name = ev.get("name")
        args = ev.get("args")
        if type(args) is not dict:
            return
        if name == "thread_name" and isinstance(args.get("name"), str):
            self.thread_names[track_of(ev)] = (args["name"], ev.get("ts"))
        elif name == "thread_sort_index" and isinstance(args.get("sort_index"), int):
            track = track_of(ev)
            keys = self.thread_sort[track][1] if track in self.thread_sort else []
            keys.append(key)
            self.thread_sort[track] = (args["sort_index"], keys)

    def add_records(self, first: int, recs: list) -> None:
        """``add_batch`` for ``records.Event`` structs (same decisions, attribute access)."""
        self.events += len(recs)
        add_tid, unset = self.tids.add, records.UNSET
        for key, ev in enumerate(recs, first):
            tid = ev.tid
            if tid is not None and tid is not unset:
                add_tid(tid if type(tid) is int or type(tid) is str else hashable(tid))
            ph = ev.ph
            if ph == "X":
                args = ev.args
                if args is not None and args.registers is not unset:
                    self._kernel_rec(key, ev, args)
            elif ph == "f":
                ts = _ns(ev.ts)
                if ts is not None:
                    self.flows[_track_rec(ev)].append((ts, key, ev.id, ev.bp == "e"))
            elif ph == "M" and ev.args is not None:
                self._meta_rec(key, ev, ev.args)

    def _kernel_rec(self, key: int, ev, args) -> None:
        ts = ev.ts
        start, dur = _ns(ts), _ns(ev.dur)
        if start is not None and dur is not None:
            self.kernels[_track_rec(ev)].append((start, start + max(dur, 0), key, args.correlation, ts))

    def _meta_rec(self, key: int, ev, args) -> None:
        name = ev.name
        if name == "thread_name" and isinstance(args.name, str):
            self.thread_names[_track_rec(ev)] = (args.name, ev.ts)
        elif name == "thread_sort_index" and isinstance(args.sort_index, int):
            track = _track_rec(ev)
            keys = self.thread_sort[track][1] if track in self.thread_sort else []
            keys.append(key)
            self.thread_sort[track] = (args.sort_index, keys)


def _track_rec(ev) -> tuple[Hashable, Hashable]:
    """``track_of`` for a struct: an absent tid falls back to the pid, as ``ev.get("tid", pid)`` does."""
    pid = None if ev.pid is records.UNSET else ev.pid
    tid = pid if ev.tid is records.UNSET else ev.tid
    return hashable(pid), hashable(tid)


@dataclass
class Change:
    """What to rewrite in one event."""

    tid: object = None
    ts: object = None
    sort_index: int | None = None

    def apply(self, ev: dict) -> dict:
        if self.tid is not None:
            ev["tid"] = self.tid
        if self.ts is not None:
            ev["ts"] = self.ts
        if self.sort_index is not None:
            ev["args"]["sort_index"] = self.sort_index
        return ev


@dataclass
class ExtraTrack:
    pid: Hashable
    parent_tid: Hashable
    lane: int
    tid: Hashable
    name: str
    kernels: int = 0


@dataclass
class Plan:
    """The outcome of the fix: event changes, new metadata events, and numbers to report."""

    changes: dict = field(default_factory=dict)  # key -> Change
    new_events: list = field(default_factory=list)
    extra: list = field(default_factory=list)  # [ExtraTrack]
    kernels: int = 0
    moved: int = 0
    flows_moved: int = 0
    flows_unbound: int = 0  # flow ends on a changed track that bind to no kernel
    events: int = 0
    opaque: int = 0

    def summary(self) -> str:
        if not self.kernels:
            return "no GPU kernels"
        if not self.moved:
            return f"{self.kernels:,} kernels, none overlaps its predecessor: nothing to move"
        per = defaultdict(int)
        for x in self.extra:
            per[(x.pid, x.parent_tid)] += 1
        tracks = ", ".join(f"pid {p} tid {t} +{n}" for (p, t), n in sorted(
            per.items(), key=lambda kv: (sort_key(kv[0][0]), sort_key(kv[0][1]))))
        return (f"moved {self.moved:,} of {self.kernels:,} kernels to {len(self.extra)} extra "
                f"track(s) ({tracks}); {self.flows_moved:,} launch arrows moved with them")


def _lanes(kernels: list) -> list[int]:
    """First-fit lanes for kernels sorted by start; lane 0 is the original track."""
    lane_end: list[int] = []
    lanes = []
    for start, end, *_ in kernels:
        for i, last in enumerate(lane_end):
            if start >= last:
                lane_end[i] = end
                lanes.append(i)
                break
        else:
            lane_end.append(end)
            lanes.append(len(lane_end) - 1)
    return lanes


def _new_tid(parent: Hashable, lane: int, used: set) -> Hashable:
    if isinstance(parent, int) and 0 <= parent < LANE_TID_STEP:
        cand = parent + lane * LANE_TID_STEP
        while cand in used and cand < _UINT32:
            cand += LANE_TID_STEP
        if cand < _UINT32:
            return cand
        cand = max((t for t in used if isinstance(t, int)), default=0) + 1
        while cand in used:
            cand += 1
        return cand
    if isinstance(parent, int):
        cand = max((t for t in used if isinstance(t, int)), default=parent) + 1
        while cand in used:
            cand += 1
        return cand
    cand, n = f"{parent} (overlap {lane})", 1
    while cand in used:
        n += 1
        cand = f"{parent} (overlap {lane}) #{n}"
    return cand


def _bind(kernels: list, starts: list, reach: list, ts: int, fid: object, enclosing: bool) -> int | None:
    """Index of the kernel a flow end at ``ts`` lands on (ties: same correlation id wins)."""
    if enclosing:
        j = bisect.bisect_right(starts, ts) - 1
        best = None
        while j >= 0 and (reach[j] > ts or starts[j] == ts):
            start, end = starts[j], kernels[j][1]
            if end > ts or start == ts:
                if fid is not None and kernels[j][3] == fid:
                    return j
                if best is None:
                    best = j
            j -= 1
        return best
    j = bisect.bisect_left(starts, ts)
    if j >= len(starts):
        return None
    first = starts[j]
    k = j
    while k < len(starts) and starts[k] == first:
        if fid is not None and kernels[k][3] == fid:
            return k
        k += 1
    return j


def plan(col: Collector) -> Plan:
    """Decide lanes, new tids, moved flows and metadata (pure; no I/O)."""
    out = Plan(events=col.events, opaque=col.opaque)
    used = set(col.tids)
    lane_tid: dict[tuple, Hashable] = {}
    for track in sorted(col.kernels, key=lambda t: (sort_key(t[0]), sort_key(t[1]))):
        ks = col.kernels[track]
        ks.sort()  # by start, end, then event key (file order)
        out.kernels += len(ks)
        lanes = _lanes(ks)
        n_lanes = max(lanes) + 1
        if n_lanes == 1:
            continue
        for lane in range(1, n_lanes):
            tid = _new_tid(track[1], lane, used)
            used.add(tid)
            lane_tid[(track, lane)] = tid
            out.extra.append(ExtraTrack(track[0], track[1], lane, tid, _lane_name(col, track, lane)))
        counts = defaultdict(int)
        for k, lane in zip(ks, lanes):
            if lane:
                out.changes[k[2]] = Change(tid=lane_tid[(track, lane)])
                out.moved += 1
                counts[lane] += 1
        for x in out.extra[-(n_lanes - 1):]:
            x.kernels = counts[x.lane]
        _move_flows(col.flows.get(track, ()), ks, lanes, lane_tid, track, out)
    _metadata(col, out)
    return out


def _lane_name(col: Collector, track: tuple, lane: int) -> str:
    name = col.thread_names.get(track, (None, None))[0]
    base = name.strip() if name and name.strip() else f"stream {track[1]}"
    return f"{base} (overlap {lane})"


def _move_flows(flows: Iterable, ks: list, lanes: list, lane_tid: dict, track: tuple, out: Plan) -> None:
    starts = [k[0] for k in ks]
    reach, top = [], None
    for k in ks:
        top = k[1] if top is None or k[1] > top else top
        reach.append(top)
    for ts, key, fid, enclosing in flows:
        j = _bind(ks, starts, reach, ts, fid, enclosing)
        if j is None:
            out.flows_unbound += 1
            continue
        if lanes[j]:
            change = Change(tid=lane_tid[(track, lanes[j])])
            if not enclosing and ts < ks[j][0]:
                change.ts = ks[j][4]  # 'next slice' binding: land exactly on the kernel
            out.changes[key] = change
            out.flows_moved += 1


def _metadata(col: Collector, out: Plan) -> None:
    """thread_name for every extra track; thread_sort_index right after the parent."""
    by_pid: dict[Hashable, list[ExtraTrack]] = defaultdict(list)
    for x in out.extra:
        by_pid[x.pid].append(x)
    for pid, extras in by_pid.items():
        sorted_extra = _sort_indices(col, pid, extras, out)
        for x in extras:
            name_ts = col.thread_names.get((pid, x.parent_tid), (None, None))[1]
            ev = {"ph": "M", "name": "thread_name"}
            if name_ts is not None:
                ev["ts"] = name_ts
            ev.update({"pid": pid, "tid": x.tid, "args": {"name": x.name}})
            out.new_events.append(ev)
            if x.tid in sorted_extra:
                ev = {"ph": "M", "name": "thread_sort_index"}
                if name_ts is not None:
                    ev["ts"] = name_ts
                ev.update({"pid": pid, "tid": x.tid, "args": {"sort_index": sorted_extra[x.tid]}})
                out.new_events.append(ev)


def _sort_indices(col: Collector, pid: Hashable, extras: list[ExtraTrack], out: Plan) -> dict:
    """Sort indices for the extra tracks of one process; shift later threads if no room.

    Threads keep their index unless an inserted extra track needs it; then they (and
    only they) move up by as much as needed, so the order of the existing threads
    never changes. A parent without a sort index gives its extra tracks none.
    """
    threads = sorted(((idx, sort_key(tid), tid) for (p, tid), (idx, _) in col.thread_sort.items() if p == pid))
    after: dict[Hashable, list[ExtraTrack]] = defaultdict(list)
    for x in sorted(extras, key=lambda x: x.lane):
        after[x.parent_tid].append(x)
    result: dict[Hashable, int] = {}
    last = last_old = None
    last_was_extra = False
    for old, _, tid in threads:
        if last is None:
            new = old
        elif old == last_old and not last_was_extra:
            new = last  # a tie stays a tie
        else:
            new = max(old, last + 1)
        if new != old:
            for key in col.thread_sort[(pid, tid)][1]:
                out.changes[key] = Change(sort_index=new)
        last, last_old, last_was_extra = new, old, False
        for x in after.get(tid, ()):
            last += 1
            result[x.tid] = last
            last_was_extra = True
    return result


def collect(ts: stream.TraceStream) -> Collector:
    """Pass 1 over a trace's events; keys are event ordinals (0, 1, 2, ...)."""
    col = Collector()
    with io.no_gc():
        for batch in ts.batches(records.decoder()):
            if batch.records:
                col.add_records(batch.first, batch.values)
            else:
                col.add_batch(batch.first, batch.values)
    return col


class NoKernels(io.TraceInputError):
    """The trace has no GPU kernels (a CPU-only profile?)."""


def write_fixed(ts: stream.TraceStream, result: Plan, fp) -> None:
    """Pass 2: copy the trace, rewriting only the changed events, appending the new metadata.

    Needs ``ts.batch_table`` from ``collect``: changed events are found again by
    their ordinal, batch by batch, without parsing the others.
    """
    changed = sorted(result.changes)
    edits, i = [], 0
    for start, end, first, count in ts.batch_table:
        if i >= len(changed) or changed[i] >= first + count:
            continue
        j = bisect.bisect_left(changed, first + count, i)
        edits.append((start, end, _rewrite(ts, first, count, changed[i:j], result.changes)))
        i = j
    if result.new_events:
        tail = b"".join(b",\n  " + io.dumps(e) for e in result.new_events)
        edits.append((ts.last_event_end, ts.last_event_end, lambda _old: tail))
    ts.splice(fp, edits)


def _rewrite(ts: stream.TraceStream, first: int, count: int, keys: list, changes: dict):
    """The bytes of one batch with its changed events re-serialised."""
    def fn(old: bytes) -> bytes:
        spans = io.spans_in(old, count, [key - first for key in keys], ts.path)
        out, pos = [], 0
        for key, (s, e) in zip(keys, spans):
            out.append(old[pos:s])
            out.append(io.dumps(changes[key].apply(io.loads(old[s:e]))))
            pos = e
        out.append(old[pos:])
        return b"".join(out)
    return fn


def fix_file(src: Path, out: Path, *, require_kernels: bool = True) -> Plan:
    """Read ``src`` (pass 1), move overlapping kernels, stream ``out`` atomically (pass 2)."""
    src, out = Path(src), Path(out)
    io.check_not_input(out, [src])
    ts = stream.TraceStream(src)
    col = collect(ts)
    result = plan(col)
    del col
    if require_kernels and not result.kernels:
        raise NoKernels(
            f"{src}: no GPU kernels in this trace ({result.events:,} events, none with "
            "'registers per thread'); nothing to fix, no file written",
            hint="profile with CUDA activities (sglang's /start_profile does) and pass that trace",
        )
    with io.no_gc(), io.open_output(out) as fp:
        write_fixed(ts, result, fp)
    return result
