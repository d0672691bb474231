"""Preflight pieces that need no process: GPU selection, counts, model path, tp."""

from __future__ import annotations

from rebuilt.tools.bench import preflight as pre

GPUS = [
    {"index": 0, "name": "NVIDIA H200", "compute_cap": "9.0", "memory_total_mib": 143771, "memory_used_mib": 1,
     "driver": "570.86", "uuid": "GPU-aaa"},
    {"index": 1, "name": "NVIDIA H100 80GB HBM3", "compute_cap": "9.0", "memory_total_mib": 81559,
     "memory_used_mib": 1, "driver": "570.86", "uuid": "GPU-bbb"},
]


def test_select_follows_cuda_visible_devices():
    assert [g["index"] for g in pre.select(GPUS, None)] == [0, 1]
    assert [g["index"] for g in pre.select(GPUS, "1")] == [1]
    assert [g["index"] for g in pre.select(GPUS, "1,0")] == [1, 0]
    assert [g["index"] for g in pre.select(GPUS, "GPU-bb")] == [1]
    assert pre.select(GPUS, "") == []
    assert [g["index"] for g in pre.select(GPUS, "0,7,1")] == [0]  # CUDA stops at an invalid entry


def test_check_gpus_counts_and_warns_off_h200():
    assert pre.check_gpus(GPUS, "0").status == "ok"
    warn = pre.check_gpus(GPUS, "1")
    assert warn.status == "warn" and "not an H200" in warn.found
    fail = pre.check_gpus(GPUS, "0", need=2)
    assert fail.status == "fail" and "2 GPU(s) needed, 1 visible" in fail.found


def test_model_path(tmp_path):
    assert pre.check_model_path(None).status == "fail"
    assert pre.check_model_path(str(tmp_path / "nope")).status == "fail"
    assert pre.check_model_path(str(tmp_path)).status == "warn"  # no config.json
    (tmp_path / "config.json").write_text("{}")
    assert pre.check_model_path(str(tmp_path)).status == "ok"
    assert pre.check_model_path("meta-llama/Llama-3.1-8B-Instruct").status == "warn"


def test_tp_of_server_flags():
    assert pre.tp_of({}) == 1
    assert pre.tp_of({"tp": 2}) == 2
    assert pre.tp_of({"tp-size": "4"}) == 4
