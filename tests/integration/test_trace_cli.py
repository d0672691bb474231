"""Trace tasks through the real CLI: merge of generated rank folders, a real torch.profiler CPU trace,
summary, and bad input (one message, non-zero exit, input untouched, no partial output)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rebuilt.trace import synth

ROOT = Path(__file__).resolve().parents[2]


def inv(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def rank_file(folder: Path, name: str, device: int, seed: int) -> Path:
    path = folder / name
    with gzip.open(path, "wb") as fp:
        synth.write(fp, synth.SynthSpec(device=device, seed=seed, n_kernels=150, overlap_prob=0.4,
                                        cpu_pid=4000 + device))
    return path


def load(path: Path) -> dict:
    return json.loads(gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes())


def test_merge_ranks_of_one_profile(tmp_path):
    for tp in range(2):
        for dp in range(2):
            rank_file(tmp_path, f"1732000000-TP-{tp}-DP-{dp}-DECODE.trace.json.gz", tp * 2 + dp, tp * 10 + dp)
    out = tmp_path / "merged.json.gz"
    r = inv("profile.merge", str(tmp_path), "-o", str(out), "--fix")
    assert r.returncode == 0, r.stderr
    doc = load(out)
    labels = [e["args"]["name"] for e in doc["traceEvents"] if e.get("name") == "process_name"]
    assert any(lbl.startswith("[TP00-DP00]") for lbl in labels) and any(lbl.startswith("[TP01-DP01]") for lbl in labels)
    sort = {}
    for e in doc["traceEvents"]:
        if e.get("name") == "process_sort_index":
            sort[e["pid"]] = e["args"]["sort_index"]
    assert len(set(sort.values())) == len(sort)  # unique per process across ranks
    pids_by_rank = {}
    for e in doc["traceEvents"]:
        if e.get("name") == "process_name":
            pids_by_rank.setdefault(e["args"]["name"].split("]")[0], set()).add(e["pid"])
    all_pids = [p for s in pids_by_rank.values() for p in s]
    assert len(all_pids) == len(set(all_pids))  # no two ranks share a pid
    order = sorted(pids_by_rank, key=lambda r: min(sort[p] for p in pids_by_rank[r]))
    assert order == ["[TP00-DP00", "[TP00-DP01", "[TP01-DP00", "[TP01-DP01"]
    assert len(doc.get("deviceProperties", [])) >= 4


def test_several_profiles_in_one_folder_are_told_apart(tmp_path):
    for t in ("1732000000", "1732000999"):
        for tp in range(2):
            rank_file(tmp_path, f"{t}-TP-{tp}.trace.json.gz", tp, tp)
    r = inv("profile.merge", str(tmp_path), "-o", str(tmp_path / "x.json"))
    assert r.returncode == 2 and "1732000000" in r.stderr and "1732000999" in r.stderr
    assert not (tmp_path / "x.json").exists()
    r = inv("profile.merge", str(tmp_path))  # no -o: one merged file per profile
    assert r.returncode == 0, r.stderr
    assert len(list(tmp_path.glob("*.merged.trace.json.gz"))) == 2


def test_real_cpu_trace_from_torch_profiler(tmp_path):
    trace = tmp_path / "cpu.trace.json"
    code = ("import torch\nfrom torch.profiler import profile, ProfilerActivity\n"
            "with profile(activities=[ProfilerActivity.CPU]) as p:\n"
            "    a = torch.randn(64, 64); (a @ a).sum().item()\n"
            f"p.export_chrome_trace({str(trace)!r})\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=300)
    before = trace.read_bytes()
    r = inv("profile.perfetto-fix", str(trace))
    assert r.returncode == 2 and "no GPU kernels" in r.stderr and "Traceback" not in r.stderr
    assert trace.read_bytes() == before and not list(tmp_path.glob("*perfetto*"))
    from rebuilt.trace import perfetto_fix

    result = perfetto_fix.fix_file(trace, tmp_path / "same.json", require_kernels=False)
    assert result.moved == 0
    assert json.loads((tmp_path / "same.json").read_bytes())["traceEvents"] == \
        json.loads(before.decode(errors="replace"))["traceEvents"]
    s = inv("profile.summary", str(trace))
    assert s.returncode != 0 and "no GPU" in (s.stdout + s.stderr)


def test_fix_and_summary_through_the_cli(tmp_path):
    src = rank_file(tmp_path, "trace.json.gz", 0, 3)
    r = inv("profile.perfetto-fix", str(src))
    assert r.returncode == 0, r.stderr
    assert "moved" in r.stdout and "launch arrows moved" in r.stdout
    [out] = [p for p in tmp_path.iterdir() if p != src]
    assert "perfetto" in out.name and out.name.endswith(".json.gz")
    s = inv("profile.summary", str(src), "--csv", str(tmp_path / "s.csv"))
    assert s.returncode == 0, s.stderr
    assert "busy" in s.stdout.lower() and "ncclKernel" in s.stdout or "kernel" in s.stdout.lower()
    assert (tmp_path / "s.csv").exists()


@pytest.mark.parametrize("kind", ["truncated-gzip", "not-a-trace", "no-gpu-events", "empty-folder"])
def test_bad_input(tmp_path, kind):
    if kind == "truncated-gzip":
        full = rank_file(tmp_path, "t.json.gz", 0, 1).read_bytes()
        target = tmp_path / "t.json.gz"
        target.write_bytes(full[: len(full) // 2])
        args = ("profile.perfetto-fix", str(target))
        expect = "truncated"
    elif kind == "not-a-trace":
        target = tmp_path / "t.json"
        target.write_text('{"hello": [1, 2, 3]}')
        args = ("profile.perfetto-fix", str(target))
        expect = "traceEvents"
    elif kind == "no-gpu-events":
        target = tmp_path / "t.json"
        target.write_text(json.dumps({"traceEvents": [{"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 0,
                                                        "dur": 1}]}))
        args = ("profile.perfetto-fix", str(target))
        expect = "no GPU kernels"
    else:
        target = tmp_path / "empty"
        target.mkdir()
        args = ("profile.merge", str(target))
        expect = "no"
    before = sorted(p.name for p in tmp_path.rglob("*"))
    snapshot = target.read_bytes() if target.is_file() else None
    r = inv(*args)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert expect in r.stderr and str(target.name) in r.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no partial output
    if snapshot is not None:
        assert target.read_bytes() == snapshot
