"""perfetto-fix on traces with known overlaps: invariants (no overlap on any track, every event kept,
flows re-attached, fewest tracks) and exact lanes on a hand-made chain."""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from pathlib import Path

import pytest

from rebuilt.tools.trace import perfetto_fix, synth


def kernel(pid, tid, ts, dur, name="k"):
    return {"ph": "X", "cat": "kernel", "name": name, "pid": pid, "tid": tid, "ts": ts, "dur": dur,
            "args": {"registers per thread": 32, "stream": tid}}


def flow(ph, fid, pid, tid, ts):
    ev = {"ph": ph, "id": fid, "pid": pid, "tid": tid, "ts": ts, "cat": "ac2g", "name": "ac2g"}
    if ph == "f":
        ev["bp"] = "e"
    return ev


def write(path: Path, events: list, gz=False) -> Path:
    data = json.dumps({"schemaVersion": 1, "deviceProperties": [{"id": 0}], "traceEvents": events}).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def load(path: Path) -> list:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return json.loads(raw)["traceEvents"]


def kernels_by_track(events) -> dict:
    tracks = defaultdict(list)
    for ev in events:
        if perfetto_fix.is_kernel(ev):
            tracks[(ev["pid"], ev["tid"])].append((ev["ts"], ev["ts"] + ev["dur"], ev["name"]))
    return tracks


def assert_no_overlap(events):
    for track, ks in kernels_by_track(events).items():
        ks.sort()
        for (_s1, e1, n1), (s2, _e2, n2) in zip(ks, ks[1:]):
            assert s2 >= e1, f"{n1} and {n2} overlap on {track}"


@pytest.mark.parametrize("gz", [False, True])
def test_chain_of_three_overlaps_gets_two_extra_tracks(tmp_path, gz):
    events = [
        {"ph": "M", "name": "thread_name", "pid": 0, "tid": 7, "args": {"name": "stream 7"}},
        {"ph": "M", "name": "thread_sort_index", "pid": 0, "tid": 7, "args": {"sort_index": 7}},
        {"ph": "M", "name": "thread_sort_index", "pid": 0, "tid": 8, "args": {"sort_index": 8}},
        kernel(0, 8, 0, 40, "E"),
        flow("s", 1, 100, 100, 0.5), flow("s", 2, 100, 100, 1.0), flow("s", 3, 100, 100, 1.5),
        kernel(0, 7, 0, 10, "A"), kernel(0, 7, 5, 10, "B"), kernel(0, 7, 8, 12, "C"), kernel(0, 7, 25, 5, "D"),
        flow("f", 1, 0, 7, 0), flow("f", 2, 0, 7, 5), flow("f", 3, 0, 7, 8),
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 100, "tid": 100, "ts": 0, "dur": 2},
    ]
    src = write(tmp_path / ("t.json.gz" if gz else "t.json"), events, gz)
    out = tmp_path / ("o.json.gz" if gz else "o.json")
    result = perfetto_fix.fix_file(src, out)
    assert (result.kernels, result.moved, len(result.extra), result.flows_moved) == (5, 2, 2, 2)
    fixed = load(out)
    assert_no_overlap(fixed)
    tid = {ev["name"]: ev["tid"] for ev in fixed if perfetto_fix.is_kernel(ev)}
    assert tid["A"] == tid["D"] == 7 and len({tid["A"], tid["B"], tid["C"]}) == 3  # greedy: 3 tracks, not 4
    ends = {ev["id"]: ev for ev in fixed if ev.get("ph") == "f"}
    assert ends[2]["tid"] == tid["B"] and ends[3]["tid"] == tid["C"] and ends[1]["tid"] == 7
    names = {ev["tid"]: ev["args"]["name"] for ev in fixed if ev.get("name") == "thread_name"}
    assert all(t in names for t in (tid["B"], tid["C"]))  # extra tracks are named
    sort = {ev["tid"]: ev["args"]["sort_index"] for ev in fixed if ev.get("name") == "thread_sort_index"}
    assert sort[7] < sort[tid["B"]] < sort[8] and sort[7] < sort[tid["C"]] < sort[8]  # right after their parent
    non_kernel_before = [e for e in events if not perfetto_fix.is_kernel(e) and e.get("ph") not in ("f", "M")]
    assert all(e in fixed for e in non_kernel_before)  # nothing else changed
    assert src.read_bytes() == (gzip.compress(json.dumps({"schemaVersion": 1, "deviceProperties": [{"id": 0}],
                                                          "traceEvents": events}).encode())
                                if gz else src.read_bytes())


def test_generated_multi_process_multi_stream_traces(tmp_path):
    for seed in range(3):
        spec = synth.SynthSpec(seed=seed, n_kernels=400, overlap_prob=0.5, device=seed % 2)
        src = tmp_path / f"s{seed}.json"
        with open(src, "wb") as fp:
            synth.write(fp, spec)
        before = load(src)
        out = tmp_path / f"o{seed}.json.gz"
        result = perfetto_fix.fix_file(src, out)
        after = load(out)
        assert result.moved > 0
        assert_no_overlap(after)
        added = [e for e in after if e.get("ph") == "M"]
        assert len(after) == len(before) + (len(added) - len([e for e in before if e.get("ph") == "M"]))
        # every flow end still lands on a kernel of its (possibly new) track at its timestamp
        ks = {(e["pid"], e["tid"], e["ts"]) for e in after if perfetto_fix.is_kernel(e)}
        ends = [e for e in after if e.get("ph") == "f"]
        kernel_flows = [e for e in ends if (e["pid"], e["tid"], e["ts"]) in ks]
        assert len(kernel_flows) >= sum(1 for e in before if perfetto_fix.is_kernel(e)) - result.flows_unbound
        # fewest tracks: on each original track, tracks used == the maximum number of kernels alive at once
        for (pid, tid), kernels in kernels_by_track(before).items():
            points = sorted([(s, 1) for s, _, _ in kernels] + [(e, -1) for _, e, _ in kernels], key=lambda p: (p[0], p[1]))
            depth = peak = 0
            for _, d in points:
                depth += d
                peak = max(peak, depth)
            extra = [x for x in result.extra if x.pid == pid and x.parent_tid == tid]
            assert len(extra) + 1 == peak


def test_trace_without_kernels_can_pass_through_unchanged(tmp_path):
    events = [{"ph": "X", "cat": "cpu_op", "name": "aten::add", "pid": 1, "tid": 1, "ts": 0, "dur": 3}]
    src = write(tmp_path / "cpu.json", events)
    with pytest.raises(perfetto_fix.NoKernels, match="no GPU kernels"):
        perfetto_fix.fix_file(src, tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()
    result = perfetto_fix.fix_file(src, tmp_path / "out.json", require_kernels=False)
    assert result.moved == 0 and load(tmp_path / "out.json") == events
