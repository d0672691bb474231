"""perfetto-fix and merge on real Kineto traces from an H100 (tests/fixtures/traces/h100-pdl/): a kernel
launched with programmatic dependent launch (PDL) starts while its predecessor on the same stream still
runs; Perfetto draws such a pair on one track with holes. The fix must move exactly those kernels to an
extra track, with their launch arrows, and both fast paths must equal the json reference."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from rebuilt.tools.trace import merge, reference
from rebuilt.tools.trace import perfetto_fix as fix

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "traces" / "h100-pdl"
TRACES = sorted(HERE.glob("*.trace.json.gz"))


def kernels_by_track(events: list[dict]) -> dict:
    out = defaultdict(list)
    for e in events:
        if fix.is_kernel(e):
            out[(e["pid"], e["tid"])].append(e)
    for ks in out.values():
        ks.sort(key=lambda e: e["ts"])
    return out


def overlaps(ks: list[dict]) -> list[tuple[dict, dict]]:
    """Neighbours on one track where the second starts before the first ends."""
    return [(a, b) for a, b in zip(ks, ks[1:]) if b["ts"] < a["ts"] + a["dur"]]


def test_the_fixtures_are_real_and_hold_the_pdl_overlap() -> None:
    assert len(TRACES) == 3
    for path in TRACES:
        doc = reference.load(path)
        assert doc["cupti_version"] == 130001 and doc["deviceProperties"][0]["name"] == "NVIDIA H100 80GB HBM3"
        pairs = [(a["name"], b["name"]) for ks in kernels_by_track(doc["traceEvents"]).values()
                 for a, b in overlaps(ks)]
        # each step: the PDL pair overlaps; the plain pair (same kernels, no attribute) does not
        assert pairs == [("pdl_primary(float*, long long)", "pdl_secondary(float const*, float*, long long)")] * 3


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.name)
def test_perfetto_fix_moves_the_pdl_secondaries_and_their_arrows(tmp_path: Path, path: Path) -> None:
    before = reference.load(path)["traceEvents"]
    result = fix.fix_file(path, tmp_path / "fixed.json.gz")
    after = reference.load(tmp_path / "fixed.json.gz")["traceEvents"]
    assert result.moved == 3 and len(result.extra) == 1 and result.flows_moved == 3
    tracks = kernels_by_track(after)
    assert all(not overlaps(ks) for ks in tracks.values())
    extra = result.extra[0]
    moved = tracks[(extra.pid, extra.tid)]
    assert [k["name"] for k in moved] == ["pdl_secondary(float const*, float*, long long)"] * 3
    assert extra.parent_tid == 7 and "overlap" in extra.name
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in after if e.get("name") == "thread_name"}
    assert names[(extra.pid, extra.tid)] == extra.name
    # the plain secondaries (no PDL) stay on their stream, and nothing else moved or got lost
    stays = [k for k in tracks[(0, 7)] if k["name"].startswith("pdl_secondary")]
    assert len(stays) == 3
    assert sum(len(ks) for ks in tracks.values()) == sum(len(ks) for ks in kernels_by_track(before).values())
    # each moved kernel's launch arrow (flow end, bound by correlation id) ends on the new track
    flow_ends = {e["id"]: e for e in after if e.get("ph") == "f" and e.get("cat") == "ac2g"}
    for k in moved:
        end = flow_ends[k["args"]["correlation"]]
        assert (end["pid"], end["tid"]) == (extra.pid, extra.tid)


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.name)
def test_perfetto_fix_equals_the_reference_on_real_traces(tmp_path: Path, path: Path) -> None:
    fast = fix.fix_file(path, tmp_path / "fast.json")
    ref = reference.fix(path, tmp_path / "ref.json")
    assert reference.load(tmp_path / "fast.json") == reference.load(tmp_path / "ref.json")
    assert (fast.moved, fast.flows_moved, len(fast.extra)) == (ref.moved, ref.flows_moved, len(ref.extra))


@pytest.mark.parametrize("opts", [merge.Options(), merge.Options(fix=True), merge.Options(gpu_only=True, fix=True)],
                         ids=["plain", "fix", "gpu-only-fix"])
def test_merge_of_the_real_rank_files_equals_the_reference(tmp_path: Path, opts: merge.Options) -> None:
    groups = merge.discover([HERE])
    assert [len(g.ranks) for g in groups] == [2]  # pdl.trace.json.gz is not a rank file
    report = merge.merge_group(groups[0], tmp_path / "fast.json.gz", opts)
    want = reference.merge(groups[0], tmp_path / "ref.json", opts)
    got = reference.load(tmp_path / "fast.json.gz")
    assert got == want
    if opts.fix:
        assert [p.moved for _, p in report.fixes] == [3, 3]
        assert all(not overlaps(ks) for ks in kernels_by_track(got["traceEvents"]).values())
