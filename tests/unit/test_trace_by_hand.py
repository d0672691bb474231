"""perfetto-fix and merge on tiny traces whose expected output is written out by hand.

The other trace tests compare the fast byte-level path with the plain-json reference, which
shares the decision code; these pin what both must produce, derived on paper from the rules in
``rebuilt/tools/trace/perfetto_fix.py`` and ``rebuilt/tools/trace/merge.py``.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from rebuilt.tools.trace import merge
from rebuilt.tools.trace import perfetto_fix as fix

# Kernel b starts (ts 5) before kernel a ends (ts 10) on stream 7: Perfetto would hide it.
# The launch arrow's end (flow id 2, bp "e") lands on b; tid 8 sorts right after tid 7.
SRC = (
    b'{"traceEvents": [\n'
    b'  {"ph": "M", "name": "thread_name", "pid": 0, "tid": 7, "ts": 0, "args": {"name": "stream 7"}},\n'
    b'  {"ph": "M", "name": "thread_sort_index", "pid": 0, "tid": 7, "ts": 0, "args": {"sort_index": 7}},\n'
    b'  {"ph": "M", "name": "thread_sort_index", "pid": 0, "tid": 8, "ts": 0, "args": {"sort_index": 8}},\n'
    b'  {"ph": "X", "cat": "kernel", "name": "a", "pid": 0, "tid": 7, "ts": 0, "dur": 10, '
    b'"args": {"registers per thread": 32, "correlation": 1}},\n'
    b'  {"ph": "X", "cat": "kernel", "name": "b", "pid": 0, "tid": 7, "ts": 5, "dur": 10, '
    b'"args": {"registers per thread": 32, "correlation": 2}},\n'
    b'  {"ph": "f", "id": 2, "pid": 0, "tid": 7, "ts": 5, "cat": "ac2g", "name": "ac2g", "bp": "e"},\n'
    b'  {"ph": "X", "cat": "kernel", "name": "c", "pid": 0, "tid": 7, "ts": 20, "dur": 5, '
    b'"args": {"registers per thread": 32, "correlation": 3}}\n'
    b'], "schemaVersion": 1}\n'
)

# b and its arrow go to the extra track 7 + 1 * 1,000,000, named after its parent, sorted right after
# it (8); tid 8 moves up to 9 to make room. Changed events are written compactly; untouched bytes stay.
WANT = (
    b'{"traceEvents": [\n'
    b'  {"ph": "M", "name": "thread_name", "pid": 0, "tid": 7, "ts": 0, "args": {"name": "stream 7"}},\n'
    b'  {"ph": "M", "name": "thread_sort_index", "pid": 0, "tid": 7, "ts": 0, "args": {"sort_index": 7}},\n'
    b'  {"ph":"M","name":"thread_sort_index","pid":0,"tid":8,"ts":0,"args":{"sort_index":9}},\n'
    b'  {"ph": "X", "cat": "kernel", "name": "a", "pid": 0, "tid": 7, "ts": 0, "dur": 10, '
    b'"args": {"registers per thread": 32, "correlation": 1}},\n'
    b'  {"ph":"X","cat":"kernel","name":"b","pid":0,"tid":1000007,"ts":5,"dur":10,'
    b'"args":{"registers per thread":32,"correlation":2}},\n'
    b'  {"ph":"f","id":2,"pid":0,"tid":1000007,"ts":5,"cat":"ac2g","name":"ac2g","bp":"e"},\n'
    b'  {"ph": "X", "cat": "kernel", "name": "c", "pid": 0, "tid": 7, "ts": 20, "dur": 5, '
    b'"args": {"registers per thread": 32, "correlation": 3}},\n'
    b'  {"ph":"M","name":"thread_name","ts":0,"pid":0,"tid":1000007,"args":{"name":"stream 7 (overlap 1)"}},\n'
    b'  {"ph":"M","name":"thread_sort_index","ts":0,"pid":0,"tid":1000007,"args":{"sort_index":8}}\n'
    b'], "schemaVersion": 1}\n'
)


@pytest.mark.parametrize("ext", [".json", ".json.gz"])
def test_perfetto_fix_writes_the_bytes_worked_out_by_hand(tmp_path: Path, ext: str) -> None:
    src, out = tmp_path / f"in{ext}", tmp_path / f"out{ext}"
    src.write_bytes(gzip.compress(SRC) if ext.endswith(".gz") else SRC)
    p = fix.fix_file(src, out)
    got = out.read_bytes()
    assert (gzip.decompress(got) if ext.endswith(".gz") else got) == WANT
    assert (p.kernels, p.moved, p.flows_moved, p.flows_unbound) == (3, 1, 1, 0)
    assert [(x.pid, x.parent_tid, x.lane, x.tid, x.name, x.kernels) for x in p.extra] == \
        [(0, 7, 1, 1_000_007, "stream 7 (overlap 1)", 1)]


def _rank_trace(name: str) -> dict:
    return {"schemaVersion": 1, "deviceProperties": [{"id": 0}], "traceName": name, "traceEvents": [
        {"ph": "M", "name": "process_name", "pid": 5, "tid": 0, "args": {"name": "python"}},
        {"ph": "M", "name": "process_sort_index", "pid": 5, "tid": 0, "args": {"sort_index": 3}},
        {"ph": "M", "name": "process_sort_index", "pid": 0, "tid": 0, "args": {"sort_index": 1}},
        {"ph": "X", "name": "aten::mm", "pid": 5, "tid": 9, "ts": 100, "dur": 5},
        {"ph": "s", "id": 4, "pid": 5, "tid": 9, "ts": 101, "cat": "ac2g", "name": "ac2g"},
        {"ph": "X", "cat": "kernel", "name": "gemm", "pid": 0, "tid": 7, "ts": 110, "dur": 3,
         "args": {"registers per thread": 32, "correlation": 4}},
        {"ph": "f", "id": 4, "pid": 0, "tid": 7, "ts": 110, "cat": "ac2g", "name": "ac2g", "bp": "e"},
        {"ph": "X", "cat": "kernel", "name": "gemm2", "pid": 0, "tid": 7, "ts": 111, "dur": 3,
         "args": {"registers per thread": 32, "correlation": 5}},
    ]}


def _merged_events(label: str, off: int, flow: int, gemm2_tid: int, extra: list) -> list[dict]:
    """One rank's events as the merge must write them: ids shifted by the rank's offset, flow ids
    id * ranks + rank index, the process sort indices dropped and written at the end in rank order."""
    return [
        {"ph": "M", "name": "process_name", "pid": 5 + off, "tid": off, "args": {"name": f"[{label}] python"}},
        {"ph": "X", "name": "aten::mm", "pid": 5 + off, "tid": 9 + off, "ts": 100, "dur": 5},
        {"ph": "s", "id": flow, "pid": 5 + off, "tid": 9 + off, "ts": 101, "cat": "ac2g", "name": "ac2g"},
        {"ph": "X", "cat": "kernel", "name": "gemm", "pid": off, "tid": 7 + off, "ts": 110, "dur": 3,
         "args": {"registers per thread": 32, "correlation": 4}},
        {"ph": "f", "id": flow, "pid": off, "tid": 7 + off, "ts": 110, "cat": "ac2g", "name": "ac2g", "bp": "e"},
        {"ph": "X", "cat": "kernel", "name": "gemm2", "pid": off, "tid": gemm2_tid, "ts": 111, "dur": 3,
         "args": {"registers per thread": 32, "correlation": 5}},
        *extra,
        # pid 0 sorted 1 before pid 5 sorted 3; pid 0 had no name of its own
        {"ph": "M", "name": "process_name", "pid": off, "tid": off, "args": {"name": f"[{label}] pid 0"}},
        {"ph": "M", "name": "process_sort_index", "pid": off, "tid": off,
         "args": {"sort_index": 0 if off == 0 else 2}},
        {"ph": "M", "name": "process_sort_index", "pid": 5 + off, "tid": off,
         "args": {"sort_index": 1 if off == 0 else 3}},
    ]


@pytest.mark.parametrize("perfetto_fix", [False, True])
def test_merge_of_two_ranks_gives_the_file_worked_out_by_hand(tmp_path: Path, perfetto_fix: bool) -> None:
    for rank in (0, 1):
        path = tmp_path / f"T-TP-{rank}-DECODE.trace.json.gz"
        path.write_bytes(gzip.compress(json.dumps(_rank_trace(f"r{rank}")).encode()))
    [group] = merge.discover([tmp_path])
    report = merge.merge_group(group, tmp_path / "merged.json", merge.Options(fix=perfetto_fix))

    def extra(off: int) -> list:  # the perfetto fix's name for the overlap track, mapped like any event
        return [{"ph": "M", "name": "thread_name", "pid": off, "tid": 1_000_007 + off,
                 "args": {"name": "stream 7 (overlap 1)"}}] if perfetto_fix else []

    lane = 1_000_007 if perfetto_fix else 7  # gemm2 starts while gemm runs
    want = {
        "traceEvents": _merged_events("TP00", 0, 8, lane, extra(0))
        + _merged_events("TP01", 10_000_000, 9, lane + 10_000_000, extra(10_000_000)),
        "schemaVersion": 1,
        "deviceProperties": [{"id": 0, "rank": "TP00"}, {"id": 0, "rank": "TP01"}],
        "traceName": "merged T-DECODE",
        "rebuiltMerge": {"ranks": [{"label": "TP00", "file": "T-TP-0-DECODE.trace.json.gz"},
                                   {"label": "TP01", "file": "T-TP-1-DECODE.trace.json.gz"}],
                         "window_ms": None, "gpu_only": False, "perfetto_fix": perfetto_fix},
    }
    assert json.loads((tmp_path / "merged.json").read_bytes()) == want
    assert (report.ranks, report.events_in, report.events_out) == (2, 16, 2 * (9 + perfetto_fix))
    assert [p.moved for _, p in report.fixes] == ([1, 1] if perfetto_fix else [])
