"""summary: busy/idle per stream, top kernels, gaps between kernels, on hand-checked numbers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from rebuilt.tools.trace import perfetto_fix as fix
from rebuilt.tools.trace import summary

REG = {"registers per thread": 32}


def k(name: str, ts: float, dur: float, tid: int = 7) -> dict:
    return {"ph": "X", "cat": "kernel", "name": name, "pid": 0, "tid": tid, "ts": ts, "dur": dur, "args": REG}


def write(tmp_path: Path, events: list[dict]) -> Path:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"traceEvents": events}))
    return path


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    return write(tmp_path, [
        {"ph": "M", "name": "thread_name", "pid": 0, "tid": 7, "args": {"name": "stream 7 "}},
        k("gemm", 100, 10), k("gemm", 120, 10), k("norm", 125, 15),  # overlap 125..130
        {"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy", "pid": 0, "tid": 7, "ts": 160, "dur": 20, "args": {}},
        k("attn", 0, 30, tid=13), k("attn", 40, 30, tid=13),
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 9, "tid": 9, "ts": 0, "dur": 500},
    ])


def test_numbers(trace: Path) -> None:
    s = summary.summarize(trace)
    s7, s13 = s.streams
    assert (s7.name, s7.kernels) == ("stream 7", 3)
    assert s7.busy_us == pytest.approx(10 + 20 + 20) and s7.span_us == pytest.approx(80)
    assert (s7.idle_gaps, s7.max_idle_us) == (2, pytest.approx(20))
    assert s7.gaps == pytest.approx([10, -5])
    assert (s13.busy_us, s13.span_us, s13.gaps) == (pytest.approx(60), pytest.approx(70), pytest.approx([10]))
    assert [(r.name, r.count, r.total_us) for r in s.kernels] == [("attn", 2, 60), ("gemm", 2, 20), ("norm", 1, 15)]
    assert s.kernels[0].share == pytest.approx(60 / 95) and s.kernels[1].mean_us == pytest.approx(10)
    assert sorted(s.gaps) == pytest.approx([-5, 10, 10])


def test_render_and_csv(trace: Path, tmp_path: Path) -> None:
    s = summary.summarize(trace)
    text = summary.render(s, top=2)
    assert "5 kernels on 2 GPU stream(s)" in text and "Top 2 of 3 kernels" in text
    assert "norm" not in text.split("Top 2")[1].split("Time between")[0]
    gaps_row = [line for line in text.splitlines() if line.startswith("all streams")][0]
    assert gaps_row.split() == ["all", "streams", "10.0", "us", "10.0", "us", "10.0", "us", "1"]
    out = summary.write_csv(s, tmp_path / "s.csv")
    rows = list(csv.DictReader(out.open()))
    assert [r["section"] for r in rows] == ["stream", "stream", "kernel", "kernel", "kernel", "gaps"]
    assert rows[2]["name"] == "attn" and float(rows[2]["share_pct"]) == pytest.approx(6000 / 95, abs=1e-3)
    assert float(rows[0]["busy_us"]) == pytest.approx(50)


def test_percentile_is_nearest_rank() -> None:
    assert summary.percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == 9
    assert summary.percentile([5], 0.9) == 5


def test_no_gpu_kernels(tmp_path: Path) -> None:
    path = write(tmp_path, [{"ph": "X", "name": "aten::mm", "pid": 9, "tid": 9, "ts": 0, "dur": 5}])
    with pytest.raises(fix.NoKernels, match="no GPU kernels"):
        summary.summarize(path)
