"""merge: file names, groups, id spaces, sort order, window, GPU-only, fix; fast path vs reference."""

from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from rebuilt.errors import InputError
from rebuilt.tools.trace import merge, reference, synth
from rebuilt.tools.trace import perfetto_fix as fix


def make_profile(folder: Path, time: str = "1790000000.25", ranks=((0, 0), (1, 0), (2, 1), (3, 1)),
                 stage: str | None = "DECODE", n_kernels: int = 150) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for tp, dp in ranks:
        suffix = f"-{stage}" if stage else ""
        path = folder / f"{time}-TP-{tp}-DP-{dp}{suffix}.trace.json.gz"
        # every rank uses the same pids/tids/flow ids on purpose: the merge must separate them
        spec = synth.SynthSpec(n_kernels=n_kernels, device=0, cpu_pid=4242, seed=tp, weird_every=3,
                               start_us=1_000_000.0 + 300 * tp)
        with gzip.open(path, "wb") as f:
            synth.write(f, spec)
        paths.append(path)
    return paths


def merged(tmp_path: Path, opts: merge.Options, **kw) -> tuple[dict, merge.Report, list[merge.Rank]]:
    make_profile(tmp_path / "p", **kw)
    group = merge.discover([tmp_path / "p"])[0]
    report = merge.merge_group(group, tmp_path / "out.json.gz", opts)
    return reference.load(tmp_path / "out.json.gz"), report, group.ranks


def test_parse_names() -> None:
    r = merge.parse_name(Path("1752.5-TP-3-DP-1-PP-0-EP-7-EXTEND.trace.json.gz"))
    assert (r.time, r.tp, r.dp, r.pp, r.ep, r.stage, r.label) == ("1752.5", 3, 1, 0, 7, "EXTEND", "TP03-DP01-PP00-EP07")
    assert merge.parse_name(Path("1752.5-TP-12.trace.json")).label == "TP12"
    assert merge.parse_name(Path("1752.5-TP-0.trace.perfetto.json.gz")) is None
    assert merge.parse_name(Path("1752.5-DECODE.merged.trace.json.gz")) is None
    assert merge.parse_name(Path("notes.txt")) is None


def test_groups_are_told_apart_and_chosen(tmp_path: Path) -> None:
    make_profile(tmp_path, time="100.1", ranks=((1, 0), (0, 0)), stage="DECODE", n_kernels=5)
    make_profile(tmp_path, time="100.1", ranks=((0, 0),), stage="EXTEND", n_kernels=5)
    make_profile(tmp_path, time="200.2", ranks=((0, 0),), stage=None, n_kernels=5)
    (tmp_path / "readme.txt").write_text("x")
    groups = merge.discover([tmp_path])
    assert [g.name for g in groups] == ["100.1-DECODE", "100.1-EXTEND", "200.2"]
    assert [r.tp for r in groups[0].ranks] == [0, 1]
    assert merge.choose(groups, None, output_given=False) == groups  # one output each
    with pytest.raises(InputError) as err:
        merge.choose(groups, None, output_given=True)
    text = err.value.render()
    assert "3 different profiles" in text and "100.1-EXTEND: 1 rank file(s)" in text and "--group" in text
    assert merge.choose(groups, "200", output_given=True) == [groups[2]]
    with pytest.raises(InputError, match="matches 2"):
        merge.choose(groups, "100.1", output_given=True)
    assert groups[0].default_output() == tmp_path / "100.1-DECODE.merged.trace.json.gz"


def test_bad_inputs(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no sglang rank traces.*it is empty"):
        merge.discover([tmp_path / "empty"])
    odd = tmp_path / "trace.json"
    odd.write_text("{}")
    with pytest.raises(InputError, match="does not look like an sglang rank trace"):
        merge.discover([odd])
    make_profile(tmp_path / "a", ranks=((0, 0),), n_kernels=2)
    copy = tmp_path / "b" / "1790000000.25-TP-0-DP-0-DECODE.trace.json.gz"
    copy.parent.mkdir()
    copy.write_bytes(next((tmp_path / "a").iterdir()).read_bytes())
    with pytest.raises(InputError, match="appears twice"):
        merge.discover([next((tmp_path / "a").iterdir()), copy])
    for bad in ("5", "5:5", "x:1", "-1:3", ":"):
        with pytest.raises(InputError, match="--window-ms"):
            merge.parse_window(bad)
    assert merge.parse_window("2.5:") == (2.5, None) and merge.parse_window(":7") == (None, 7.0)


def test_ranks_become_separate_labelled_processes(tmp_path: Path) -> None:
    doc, report, ranks = merged(tmp_path, merge.Options())
    events = doc["traceEvents"]
    inputs = [reference.load(r.path)["traceEvents"] for r in ranks]
    n_sort = sum(1 for evs in inputs for e in evs if e.get("name") == "process_sort_index")
    assert len(events) == sum(map(len, inputs)) - n_sort + 2 * len(ranks)  # 2 processes per rank
    assert report.events_out == len(events) and report.events_in == sum(map(len, inputs))
    names = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    assert sorted(names.values()) == sorted(f"[{r.label}] python" for r in ranks for _ in range(2))
    # pids and tids: disjoint between ranks; the thread keyed by tid alone still finds its rank
    owner_pid, owner_tid = defaultdict(set), defaultdict(set)
    label_of = {pid: name.split("]")[0][1:] for pid, name in names.items()}
    for e in events:
        owner_pid[e["pid"]].add(label_of[e["pid"]])
        owner_tid[e["tid"]].add(label_of[e["pid"]])
    assert all(len(v) == 1 for v in owner_pid.values()) and all(len(v) == 1 for v in owner_tid.values())
    # sort indices: one per process, unique, ranks in rank order
    sort = {e["pid"]: e["args"]["sort_index"] for e in events if e.get("name") == "process_sort_index"}
    assert len(sort) == 2 * len(ranks) and len(set(sort.values())) == len(sort)
    order = [label_of[p] for p in sorted(sort, key=sort.get)]
    assert order == [r.label for r in ranks for _ in range(2)]
    original = [p % merge.RANK_STRIDE for p in sorted(sort, key=sort.get)]
    assert original == [4242, 0] * len(ranks)  # inside a rank, its own order (CPU, then GPU)
    # flows still pair up inside one rank, and ids no longer collide
    ends = defaultdict(list)
    for e in events:
        if e["ph"] in "sf" and e.get("cat") == "ac2g":
            ends[e["id"]].append(label_of[e["pid"]])
    assert all(len(v) == 2 and v[0] == v[1] for v in ends.values())
    assert len(ends) == sum(1 for evs in inputs for e in evs if e["ph"] == "s")
    # device properties of every rank, tagged
    assert [d["rank"] for d in doc["deviceProperties"]] == [r.label for r in ranks]
    assert doc["rebuiltMerge"]["ranks"][0] == {"label": "TP00-DP00", "file": ranks[0].path.name}
    assert doc["schemaVersion"] == 1


def test_window_keeps_only_events_that_touch_it(tmp_path: Path) -> None:
    doc, _, ranks = merged(tmp_path, merge.Options(window_ms=(1.0, 2.5)))
    start = min(e["ts"] for r in ranks for e in reference.load(r.path)["traceEvents"] if e["ph"] != "M")
    lo, hi = start + 1000, start + 2500
    timed = [e for e in doc["traceEvents"] if e["ph"] != "M"]
    assert timed and all(e["ts"] < hi and e["ts"] + e.get("dur", 0) > lo or lo <= e["ts"] <= hi for e in timed)
    full = [e for r in ranks for e in reference.load(r.path)["traceEvents"] if e["ph"] != "M"]
    assert len(timed) < len(full)
    assert len(timed) == sum(1 for e in full if e["ts"] < hi and e["ts"] + e.get("dur", 0) > lo or lo <= e["ts"] <= hi)
    with pytest.raises(InputError, match="holds no events"):
        merge.merge_group(merge.discover([tmp_path / "p"])[0], tmp_path / "w.json", merge.Options(window_ms=(900.0, None)))
    assert not (tmp_path / "w.json").exists()


def test_gpu_only_and_fix(tmp_path: Path) -> None:
    doc, report, ranks = merged(tmp_path, merge.Options(gpu_only=True, fix=True))
    events = doc["traceEvents"]
    gpu_names = {e["args"]["name"] for e in events if e.get("name") == "process_name"}
    assert gpu_names == {f"[{r.label}] python" for r in ranks}  # one (GPU) process per rank
    assert not any(e.get("cat") in ("cpu_op", "cuda_runtime") for e in events)
    assert all(p.moved > 0 for _, p in report.fixes) and len(report.fixes) == len(ranks)
    by_track = defaultdict(list)
    for e in events:
        if fix.is_kernel(e):
            by_track[(e["pid"], e["tid"])].append((round(e["ts"] * 1000), round((e["ts"] + e["dur"]) * 1000)))
    for ks in by_track.values():
        ks.sort()
        assert all(b[0] >= a[1] for a, b in zip(ks, ks[1:]))
    overlap_names = [e["args"]["name"] for e in events if e.get("name") == "thread_name" and "overlap" in e["args"]["name"]]
    assert "stream 7 (overlap 1)" in overlap_names


def test_gpu_only_without_gpu_events_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "cpu"
    folder.mkdir()
    (folder / "1-TP-0.trace.json").write_text(json.dumps({"traceEvents": [
        {"ph": "X", "name": "aten::mm", "pid": 1, "tid": 1, "ts": 0, "dur": 5}]}))
    group = merge.discover([folder])[0]
    with pytest.raises(InputError, match="no GPU events"):
        merge.merge_group(group, tmp_path / "o.json", merge.Options(gpu_only=True))
    report = merge.merge_group(group, tmp_path / "o.json", merge.Options())  # CPU-only merges fine
    assert report.events_in == 1 and reference.load(tmp_path / "o.json")["traceEvents"][0]["pid"] == 1


@pytest.mark.parametrize("opts", [merge.Options(), merge.Options(fix=True),
                                  merge.Options(window_ms=(0.5, None), gpu_only=True),
                                  merge.Options(window_ms=(None, 2.0), fix=True)])
def test_fast_path_matches_reference(tmp_path: Path, opts: merge.Options) -> None:
    """A differential check of the streaming merge; the rules themselves are pinned by hand-written
    expectations in tests/unit/test_trace_by_hand.py."""
    make_profile(tmp_path / "p", ranks=((0, 0), (1, 1)), n_kernels=120)
    group = merge.discover([tmp_path / "p"])[0]
    merge.merge_group(group, tmp_path / "fast.json", opts)
    want = reference.merge(group, tmp_path / "ref.json", opts)
    assert reference.load(tmp_path / "fast.json") == want
    assert Counter(e["ph"] for e in want["traceEvents"])["X"] > 0
