"""The fleet's tables from rows: the cell that differs from the majority, slow GPUs against the median."""

from __future__ import annotations

from rebuilt.tools.fleet import build, doctor, health


def rows(**found):
    return [{"name": k.replace("_", " "), "status": s, "found": f, "todo": ""} for k, (s, f) in found.items()]


def test_the_odd_host_is_marked_and_volatile_figures_compare_by_status():
    by_host = {
        "a": doctor.HostChecks(rows(gpu=("ok", "H200"), disk=("ok", "900 GiB free at /w/a"), cuda=("ok", "12.9")), "/w/a"),
        "b": doctor.HostChecks(rows(gpu=("ok", "H200"), disk=("ok", "20 GiB free at /w/b"), cuda=("ok", "12.9")), "/w/b"),
        "c": doctor.HostChecks(rows(gpu=("ok", "H100"), disk=("ok", "700 GiB free at /w/c"), cuda=("ok", "12.9")), "/w/c"),
    }
    diffs = doctor.differences(by_host)
    assert diffs == {"gpu": {"c": "ok|H100"}}
    text = doctor.table(by_host, diffs)
    assert text.splitlines()[1].split() == ["gpu", "ok", "ok", "ok*"]
    assert doctor.details(by_host, diffs) == ["* gpu: c: H100  (most hosts: H200)"]


def test_repeated_checks_are_numbered_and_a_missing_one_differs():
    by_host = {"a": doctor.HostChecks(rows(gpu=("ok", "H200")) * 2),
               "b": doctor.HostChecks(rows(gpu=("ok", "H200")) * 2),
               "c": doctor.HostChecks(rows(gpu=("ok", "H200")))}
    assert list(by_host["a"].cells) == ["gpu", "gpu #2"]
    assert doctor.differences(by_host) == {"gpu #2": {"c": "(absent)"}}


def test_the_same_failure_on_several_hosts_is_listed_once():
    by_host = {h: doctor.HostChecks(rows(cuda=("fail", f"nvcc 13.0 at /w/{h}/x")), f"/w/{h}") for h in "ab"}
    assert doctor.failures(by_host) == ["cuda: a, b: nvcc 13.0 at <workdir>/x"]


def test_a_slow_gpu_and_a_slow_host_against_the_fleet_median():
    gpu = {"name": "H200", "harness_ok": True, "gbps": 4000.0}
    by_host = {"a": [{**gpu, "gpu": "0", "tflops": 700.0}, {**gpu, "gpu": "1", "tflops": 700.0}],
               "b": [{**gpu, "gpu": "0", "tflops": 690.0}, {**gpu, "gpu": "1", "tflops": 600.0}]}
    medians, lines = health.flags(by_host, 0.1)
    assert medians == {"tflops": 695.0, "gbps": 4000.0}
    assert lines == ["b GPU 1 (H200): 600.0 TFLOP/s, 14% below the fleet's median (695.0)"]
    assert by_host["b"][1]["flags"] == ["tflops"] and "flags" not in by_host["a"][0]


def test_the_build_table_shows_version_hash_and_result_per_host():
    row = {"dist": "sgl-kernel", "installed": "0.3.16", "sha256": "ab" * 32, "result": "ok"}
    text = build.table({"n1": [row], "n2": [{**row, "result": "mismatch"}]})
    assert text.splitlines() == ["host  sgl-kernel", "n1    0.3.16 abababababab ok",
                                 "n2    0.3.16 abababababab mismatch"]
