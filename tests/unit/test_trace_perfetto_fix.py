"""perfetto-fix: lanes, flows, metadata, and the byte-level path against the json reference."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from rebuilt.tools.trace import io, reference, synth
from rebuilt.tools.trace import perfetto_fix as fix

REG = {"registers per thread": 32}


def kernel(ts: float, dur: float, tid: int = 7, pid: int = 0, corr: int | None = None, name: str = "k") -> dict:
    args = dict(REG)
    if corr is not None:
        args["correlation"] = corr
    return {"ph": "X", "cat": "kernel", "name": name, "pid": pid, "tid": tid, "ts": ts, "dur": dur, "args": args}


def flow(ts: float, fid: int, tid: int = 7, pid: int = 0, bp: str | None = "e") -> dict:
    ev = {"ph": "f", "id": fid, "pid": pid, "tid": tid, "ts": ts, "cat": "ac2g", "name": "ac2g"}
    if bp:
        ev["bp"] = bp
    return ev


def meta(name: str, tid: int, value, pid: int = 0) -> dict:
    key = "name" if name == "thread_name" else "sort_index"
    return {"ph": "M", "name": name, "pid": pid, "tid": tid, "ts": 0, "args": {key: value}}


def run(events: list[dict]) -> tuple[list[dict], fix.Plan]:
    doc = {"traceEvents": json.loads(json.dumps(events))}
    result = reference.fix_doc(doc)
    return doc["traceEvents"], result


def tracks(events: list[dict]) -> dict:
    out = defaultdict(list)
    for e in events:
        if fix.is_kernel(e):
            out[(e["pid"], e["tid"])].append(e)
    return out


def ns(v: float) -> int:
    return round(v * 1000)


def assert_no_overlap(events: list[dict]) -> None:
    for track, ks in tracks(events).items():
        ks = sorted(ks, key=lambda k: ns(k["ts"]))
        for a, b in zip(ks, ks[1:]):
            assert ns(b["ts"]) >= ns(a["ts"]) + ns(a["dur"]), (track, a, b)


def depth(ks: list[dict]) -> int:
    """Most kernels running at one moment (sweep line): the fewest tracks possible."""
    points = sorted([(ns(k["ts"]), 1) for k in ks] + [(ns(k["ts"]) + ns(k["dur"]), -1) for k in ks])
    best = cur = 0
    for _, d in points:  # ends sort before starts at the same time: touching is not overlapping
        cur += d
        best = max(best, cur)
    return best


def test_chain_of_three_keeps_the_track_free_kernel_in_place() -> None:
    out, p = run([kernel(0, 10), kernel(8, 7), kernel(12, 8)])
    assert [e["tid"] for e in out[:3]] == [7, 1_000_007, 7]
    assert p.moved == 1 and len(p.extra) == 1


def test_chain_where_all_overlap_needs_two_extra_tracks() -> None:
    out, p = run([kernel(0, 10), kernel(5, 10), kernel(7, 13), kernel(16, 2)])
    assert [e["tid"] for e in out[:4]] == [7, 1_000_007, 2_000_007, 7]  # 16 >= 10: back on the parent
    assert [x.name for x in p.extra] == ["stream 7 (overlap 1)", "stream 7 (overlap 2)"]


def test_touching_contained_and_zero_length() -> None:
    out, p = run([kernel(0, 10), kernel(10, 5), kernel(11, 1), kernel(15, 0), kernel(15, 0)])
    assert [e["tid"] for e in out[:5]] == [7, 7, 1_000_007, 7, 7]
    assert p.moved == 1 and len(out) == 5 + len(p.new_events)


def test_nothing_to_move_changes_nothing() -> None:
    events = [meta("thread_name", 7, "stream 7 "), kernel(0, 1), kernel(2, 1), flow(0, 1)]
    out, p = run(events)
    assert out == events and p.moved == 0 and not p.new_events and not p.changes
    assert "nothing to move" in p.summary()


def test_flows_follow_their_kernel_enclosing_and_next_slice_binding() -> None:
    events = [kernel(0, 10, corr=1), kernel(8, 7, corr=2), flow(0, 1), flow(8, 2),
              kernel(20, 10, corr=3), kernel(25, 10, corr=4), flow(22, 4, bp=None), flow(23, 3),
              kernel(40, 5, corr=5), kernel(40, 5, corr=6), flow(40, 6), flow(40, 5)]
    out, p = run(events)
    tid = {e["args"]["correlation"]: e["tid"] for e in out if fix.is_kernel(e)}
    flows = {e["id"]: e for e in out if e["ph"] == "f"}
    for corr, t in tid.items():
        assert flows[corr]["tid"] == t, corr
    assert flows[4]["ts"] == 25  # next-slice binding lands exactly on the moved kernel
    assert flows[3]["ts"] == 23 and p.flows_moved == 3


def test_names_and_sort_indices_right_after_the_parent() -> None:
    events = [meta("thread_name", 7, "stream 7 "), meta("thread_sort_index", 7, 7),
              meta("thread_name", 8, "stream 8 "), meta("thread_sort_index", 8, 8),
              meta("thread_sort_index", 8, 8), meta("thread_sort_index", 20, 30),
              kernel(0, 10), kernel(5, 10), kernel(7, 10), kernel(0, 5, tid=8)]
    out, p = run(events)
    names = {e["tid"]: e["args"]["name"] for e in out if e["ph"] == "M" and e["name"] == "thread_name"}
    sort = {e["tid"]: e["args"]["sort_index"] for e in out if e["ph"] == "M" and e["name"] == "thread_sort_index"}
    assert names[1_000_007] == "stream 7 (overlap 1)" and names[2_000_007] == "stream 7 (overlap 2)"
    assert sorted(sort, key=sort.get) == [7, 1_000_007, 2_000_007, 8, 20]
    assert sort == {7: 7, 1_000_007: 8, 2_000_007: 9, 8: 10, 20: 30}  # 8 moved up, 20 had room
    assert [e["args"]["sort_index"] for e in out if e["name"] == "thread_sort_index" and e["tid"] == 8] == [10, 10]


def test_new_tids_are_unique_across_processes_and_strings_work() -> None:
    events = [kernel(0, 10, pid=0), kernel(5, 10, pid=0), kernel(0, 10, pid=1), kernel(5, 10, pid=1),
              {"ph": "X", "name": "cpu", "pid": 9, "tid": 3_000_007, "ts": 0, "dur": 1},
              kernel(0, 10, tid="s"), kernel(5, 10, tid="s")]
    out, p = run(events)
    new = [x.tid for x in p.extra]
    assert new == [1_000_007, "s (overlap 1)", 2_000_007]  # pid 1's lane skips pid 0's tid
    pids_of = defaultdict(set)
    for e in out:
        pids_of[e["tid"]].add(e["pid"])
    assert all(pids_of[t] == {x.pid} for t, x in zip(new, p.extra))


def test_trace_with_no_kernels_plans_nothing() -> None:
    out, p = run([{"ph": "X", "name": "aten::mm", "pid": 1, "tid": 1, "ts": 0, "dur": 5}])
    assert p.kernels == 0 and p.summary() == "no GPU kernels"


def _two_devices(seed: int) -> list[dict]:
    a = list(synth.events(synth.SynthSpec(n_kernels=400, seed=seed, weird_every=3)))
    b = list(synth.events(synth.SynthSpec(n_kernels=400, seed=seed + 100, device=1, cpu_pid=4343,
                                          overlap_prob=0.6, weird_every=3)))
    return a + b


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_invariants_on_generated_traces(seed: int) -> None:
    events = _two_devices(seed)
    before = tracks(events)
    out, p = run(events)
    assert_no_overlap(out)
    # every event kept: undo the moves and compare, the new metadata aside
    parent = {x.tid: x.parent_tid for x in p.extra}
    restored = [dict(e, tid=parent.get(e["tid"], e["tid"])) for e in out[:len(events)]]
    assert len(out) == len(events) + len(p.new_events)
    strip = [{k: v for k, v in e.items() if k not in ("tid", "args")} for e in restored]
    assert strip == [{k: v for k, v in e.items() if k not in ("tid", "args")} for e in events]
    assert [e["tid"] for e in restored] == [e["tid"] for e in events]
    assert all(e["ph"] == "M" for e in out[len(events):])
    # minimal tracks: 1 + extra tracks == peak concurrency, per stream
    extra = Counter((x.pid, x.parent_tid) for x in p.extra)
    for track, ks in before.items():
        assert 1 + extra[track] == depth(ks), track
    # moved kernels are exactly those that overlap the previous kernel left on the stream
    for track in before:
        last_end = None
        for k in sorted((e for e in out if fix.is_kernel(e) and parent.get(e["tid"], e["tid"]) == track[1]
                         and e["pid"] == track[0]), key=lambda k: (ns(k["ts"]), ns(k["ts"]) + ns(k["dur"]))):
            if k["tid"] == track[1]:
                assert last_end is None or ns(k["ts"]) >= last_end
                last_end = ns(k["ts"]) + ns(k["dur"])
    # arrows: every flow end lands on the kernel with its correlation id, alone on its track
    by_track = tracks(out)
    kernel_ids = {(k["pid"], k["args"]["correlation"]) for k in events if fix.is_kernel(k)}
    kernels_with_flow = 0
    for f in (e for e in out if e["ph"] == "f"):
        hits = [k for k in by_track.get((f["pid"], f["tid"]), [])
                if ns(k["ts"]) <= ns(f["ts"]) < ns(k["ts"]) + max(ns(k["dur"]), 1)]
        if (f["pid"], f["id"]) in kernel_ids:  # (arrows to memcpys stay where they are)
            assert len(hits) == 1 and hits[0]["args"]["correlation"] == f["id"], f
            kernels_with_flow += 1
    assert kernels_with_flow == sum(1 for e in events if fix.is_kernel(e))
    assert p.moved > 0 and max(x.lane for x in p.extra) >= 2  # chains of three and more happened


@pytest.mark.parametrize("style, ext", [("kineto", ".json"), ("compact", ".json.gz")])
def test_fast_path_matches_reference_and_keeps_untouched_bytes(tmp_path: Path, style: str, ext: str) -> None:
    """A differential check of the byte-level path; the reference itself is pinned by hand-written
    expectations in tests/unit/test_trace_by_hand.py."""
    src = tmp_path / f"t{ext}"
    doc = {"schemaVersion": 1, "traceEvents": _two_devices(5), "deviceProperties": [{"id": 0}]}
    raw = (json.dumps(doc) if style == "compact" else json.dumps(doc, indent=1, ensure_ascii=False)).encode()
    src.write_bytes(__import__("gzip").compress(raw) if ext.endswith(".gz") else raw)
    fast = fix.fix_file(src, tmp_path / f"fast{ext}")
    ref = reference.fix(src, tmp_path / "ref.json")
    assert reference.load(tmp_path / f"fast{ext}") == reference.load(tmp_path / "ref.json")
    assert (fast.moved, fast.flows_moved, len(fast.extra)) == (ref.moved, ref.flows_moved, len(ref.extra))
    # every event that did not change is byte for byte where it was
    a = io.TraceFile(src)
    b = io.TraceFile(tmp_path / f"fast{ext}")
    ra = [bytes(a.data[e.start:e.end]) for e in a.events()]
    rb = [bytes(b.data[e.start:e.end]) for e in b.events()]
    assert len(rb) == len(ra) + len(fast.new_events)
    for i, (x, y) in enumerate(zip(ra, rb)):
        assert (x == y) == (i not in fast.changes), i
    assert bytes(a.data[:a.array_open]) == bytes(b.data[:b.array_open])
    assert bytes(a.data[a.array_close:]) == bytes(b.data[b.array_close:])


def test_no_overlap_writes_identical_bytes(tmp_path: Path) -> None:
    src = tmp_path / "t.json"
    with open(src, "wb") as f:
        synth.write(f, synth.SynthSpec(n_kernels=300, overlap_prob=0, contained_prob=0, weird_every=3))
    p = fix.fix_file(src, tmp_path / "o.json")
    assert p.kernels > 0 and p.moved == 0
    assert (tmp_path / "o.json").read_bytes() == src.read_bytes()


def test_no_kernels_is_refused_without_output(tmp_path: Path) -> None:
    src = tmp_path / "cpu.json"
    src.write_text(json.dumps({"traceEvents": [{"ph": "X", "name": "aten::mm", "pid": 1, "tid": 1,
                                                "ts": 0, "dur": 5}]}))
    with pytest.raises(fix.NoKernels, match="no GPU kernels"):
        fix.fix_file(src, tmp_path / "o.json")
    assert not (tmp_path / "o.json").exists()
    p = fix.fix_file(src, tmp_path / "o.json", require_kernels=False)
    assert p.kernels == 0 and (tmp_path / "o.json").read_bytes() == src.read_bytes()
