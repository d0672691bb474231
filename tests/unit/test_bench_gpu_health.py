"""The pure parts of the GPU health microbenchmark (figures, nominal table, report)."""

from __future__ import annotations

import pytest

from rebuilt.tools.bench import gpu_health as gh


def test_gemm_and_copy_formulas():
    # 2·8192³ flops in 1.5 ms = 733 TFLOP/s; 1 GiB read + written in 0.5 ms = 4295 GB/s
    assert gh.gemm_tflops(8192, 1.5e-3) == pytest.approx(2 * 8192**3 / 1.5e-3 / 1e12)
    assert gh.gemm_tflops(8192, 1.5e-3) == pytest.approx(733.0, abs=0.1)
    assert gh.copy_gbps(2**30, 0.5e-3) == pytest.approx(4294.97, abs=0.01)


def test_summarize_uses_the_median():
    s = gh.summarize([3.0, 1.0, 2.0, 100.0])
    assert s["median"] == 2.5 and s["min"] == 1.0 and s["max"] == 100.0
    assert s["spread"] == pytest.approx(99 / 2.5)
    with pytest.raises(ValueError):
        gh.summarize([])


@pytest.mark.parametrize("name, model, tbps", [
    ("NVIDIA H200", "H200", 4.8), ("NVIDIA H100 80GB HBM3", "H100", 3.35),
    ("NVIDIA H100 PCIe", "H100 PCIe", 2.0), ("NVIDIA H100 NVL", "H100 NVL", 3.9),
])
def test_nominal_figures(name, model, tbps):
    nom = gh.nominal_for(name)
    assert nom["model"] == model and nom["hbm_tbps"] == tbps
    assert gh.nominal_for("NVIDIA A100-SXM4-80GB") is None


def report(gemm_ms: float, bare_ms: float, name: str = "NVIDIA H200") -> dict:
    return gh.build_report(device={"name": name, "compute_capability": "9.0", "torch": "2.8.0", "cuda": "12.9"},
                           n=8192, gemm_s=[gemm_ms / 1e3] * 3, bare_s=[bare_ms / 1e3] * 3,
                           copy_bytes=2**30, copy_s=[0.5e-3, 0.6e-3, 0.55e-3])


def test_report_against_nominal_and_bare_loop():
    r = report(1.5, 1.48)
    assert r["matmul"]["fraction_of_nominal"] == pytest.approx(733.0 / 989.4, abs=1e-3)
    assert r["copy"]["gbps"] == pytest.approx(gh.copy_gbps(2**30, 0.55e-3))
    assert r["copy"]["fraction_of_nominal"] == pytest.approx(r["copy"]["gbps"] / 4800)
    assert r["harness_ratio"] == pytest.approx(1.48 / 1.5) and r["harness_ok"]
    slow = report(1.7, 1.5)  # harness 88% of the bare loop
    assert not slow["harness_ok"]
    text = gh.format_text(slow)
    assert "BELOW 90%" in text and "% of nominal" in text
    unknown = report(1.5, 1.5, name="NVIDIA A100")
    assert unknown["matmul"]["fraction_of_nominal"] is None
    assert "no nominal figure" in gh.format_text(unknown)
