"""Comparing stored runs: direction per metric, significance AND factor, tables."""

from __future__ import annotations

import random

import pytest

from rebuilt.errors import InputError
from rebuilt.tools.bench import compare


def run(kind: str, cases: dict[str, dict[str, list[float]]], run_id: str = "r") -> dict:
    out = []
    for cid, metrics in cases.items():
        n = len(next(iter(metrics.values())))
        out.append({"id": cid, "params": {}, "repeats": [
            {m: vals[i] for m, vals in metrics.items()} | {"repeat": i + 1} for i in range(n)]})
    return {"run_id": run_id, "spec": {"kind": kind, "name": "s"}, "cases": out}


def noisy(value: float, n: int, rng: random.Random, rel: float = 0.01) -> list[float]:
    return [value * rng.uniform(1 - rel, 1 + rel) for _ in range(n)]


def test_direction():
    assert compare.direction("overall_throughput") == 1
    assert compare.direction("median_decode_latency") == -1
    assert compare.direction("p99_ttft_ms") == -1
    assert compare.direction("duration") == -1
    assert compare.direction("concurrency") == 0


def test_throughput_drop_and_latency_rise_are_regressions():
    rng = random.Random(1)
    a = run("one_batch", {"bs64": {"overall_throughput": noisy(1000, 3, rng), "total_latency": noisy(2.0, 3, rng)}})
    b = run("one_batch", {"bs64": {"overall_throughput": noisy(800, 3, rng), "total_latency": noisy(2.5, 3, rng)}})
    rows = compare.compare(a, b, metrics=["overall_throughput", "total_latency"])
    assert [(r.metric, r.change) for r in rows] == [("overall_throughput", "worse"), ("total_latency", "worse")]
    assert rows[0].ratio == pytest.approx(0.8, rel=0.03)
    back = compare.compare(b, a, metrics=["overall_throughput", "total_latency"])
    assert [r.change for r in back] == ["better", "better"]
    assert compare.regressions(back) == []


def test_noise_is_not_flagged():
    rng = random.Random(2)
    for _ in range(50):
        a = run("one_batch", {"c": {"overall_throughput": noisy(1000, 5, rng)}})
        b = run("one_batch", {"c": {"overall_throughput": noisy(1000, 5, rng)}})
        assert compare.compare(a, b, metrics=["overall_throughput"])[0].change == "same"


def test_significant_but_smaller_than_the_factor_is_not_a_change():
    a = run("one_batch", {"c": {"overall_throughput": [1000, 1001, 1002, 1003, 1004]}})
    b = run("one_batch", {"c": {"overall_throughput": [970, 971, 972, 973, 974]}})  # -3%, clearly apart
    [row] = compare.compare(a, b, metrics=["overall_throughput"])
    assert row.verdict.significant and row.change == "same"
    [row] = compare.compare(a, b, metrics=["overall_throughput"], factor=1.02)
    assert row.change == "worse"


def test_big_but_overlapping_is_not_a_change():
    a = run("one_batch", {"c": {"overall_throughput": [1000, 600, 1400]}})
    b = run("one_batch", {"c": {"overall_throughput": [800, 500, 1200]}})
    [row] = compare.compare(a, b, metrics=["overall_throughput"])
    assert row.verdict.significant is False and row.change == "same"


def test_single_repeats_and_missing_cases():
    a = run("one_batch", {"x": {"overall_throughput": [1000]}, "only-a": {"overall_throughput": [1.0]}})
    b = run("one_batch", {"x": {"overall_throughput": [500]}, "only-b": {"overall_throughput": [1.0]}})
    rows = {r.case: r for r in compare.compare(a, b, metrics=["overall_throughput"])}
    assert rows["x"].change == "?" and rows["x"].verdict.significant is None
    assert rows["only-a"].change == "only A" and rows["only-b"].change == "only B"
    assert compare.regressions(list(rows.values())) == []


def test_kinds_must_match_and_factor_sane():
    a = run("one_batch", {"x": {"overall_throughput": [1.0]}})
    b = run("serving", {"x": {"output_throughput": [1.0]}})
    with pytest.raises(InputError, match="cannot compare"):
        compare.compare(a, b)
    with pytest.raises(InputError, match="factor"):
        compare.compare(a, a, factor=0.9)


def test_table_shows_medians_ratio_test_and_verdict():
    a = run("serving", {"conc8": {"output_throughput": [100, 101, 102], "median_ttft_ms": [50, 51, 52]}}, "A1")
    b = run("serving", {"conc8": {"output_throughput": [80, 81, 82], "median_ttft_ms": [50, 51, 53]}}, "B1")
    rows = compare.compare(a, b)
    assert {r.metric for r in rows} == {"output_throughput", "median_ttft_ms"}  # metrics absent are left out
    text = compare.format_table(rows, "serving", "A1", "B1", 1.05, 0.05)
    assert "output_throughput (tok/s), higher is better" in text
    assert "median_ttft_ms (ms), lower is better" in text
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("conc8") and "worse" in ln)
    assert "101" in line and "81" in line and "0.802" in line and "ranges" in line
    assert text.splitlines()[-1] == "1 worse, 0 better, 1 unchanged"
    assert compare.describe(rows[0])["change"] in ("worse", "same")
