"""The bench runner end to end: spec → commands → fake sglang processes → parse → run.json."""

from __future__ import annotations

import gzip
import http.server
import json
import math
import os
import sys
import threading
from pathlib import Path

import pytest

from rebuilt.errors import CheckFailed, StepFailed
from rebuilt.tools.bench import compare, store
from rebuilt.tools.bench import run as brun
from rebuilt.tools.bench import spec as bspec

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "bench"
H200 = "NVIDIA H200|9.0|143771|570.86.15|1"


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """Fake nvidia-smi (two H200s) and nsys first on PATH; fake sglang importable by the target."""
    d = tmp_path / "bin"
    d.mkdir()
    for tool in ("nvidia-smi", "nsys"):
        p = d / tool
        p.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FIX / "bin" / tool}" "$@"\n')
        p.chmod(0o755)
    monkeypatch.setenv("PATH", f"{d}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_NVSMI_GPUS", f"{H200};{H200}")
    monkeypatch.setenv("FAKE_NVSMI_APPS", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FIX), str(ROOT)]))
    model = tmp_path / "Llama-3.1-8B-Instruct"
    model.mkdir()
    (model / "config.json").write_text("{}")
    return {"model": str(model), "workdir": tmp_path / "work"}


def spec_file(tmp_path: Path, text: str, name: str = "t.toml") -> bspec.BenchSpec:
    p = tmp_path / name
    p.write_text(text)
    return bspec.load(p)


def execute(spec, machine, **kw):
    kw.setdefault("cuda_visible_devices", "1")
    return brun.execute(spec, python=sys.executable, model_path=machine["model"], workdir=machine["workdir"],
                        echo=lambda line: None, **kw)


SWEEP = "repeats = 2\n[matrix]\nbatch_size = [1, 8]\ninput_len = [256]\noutput_len = [4]\n" \
        "[server]\nmem-fraction-static = 0.6\ndisable-cuda-graph = true\n"


def test_run_stores_every_case_and_repeat(tmp_path, machine):
    spec = spec_file(tmp_path, SWEEP)
    out = execute(spec, machine, stack={"components": {"sglang": {"version": "0.5.4", "commit": "1053e1be17ac"}}},
                  settings={"bench.model_path": machine["model"]})
    d = out.run_dir
    assert d.parent == machine["workdir"] / "bench"
    data = store.load_run(d)
    assert data["status"] == "complete" and data["finished"]
    assert data["spec"]["name"] == "t" and data["spec"]["data"]["matrix"]["batch_size"] == [1, 8]
    assert [c["id"] for c in data["cases"]] == ["bs1-il256-ol4", "bs8-il256-ol4"]
    for case in data["cases"]:
        assert [r["repeat"] for r in case["repeats"]] == [1, 2]
        for r in case["repeats"]:
            assert r["batch_size"] == case["params"]["batch_size"] and r["input_len"] == 256
            assert r["overall_throughput"] > 0 and r["median_decode_latency"] > 0
    assert data["gpu"]["selected"] == [1] and data["gpu"]["gpus"][1]["name"] == "NVIDIA H200"
    assert data["target"]["modules"]["sglang"]["version"] == "0.5.4"
    assert data["stack"]["components"]["sglang"]["commit"] == "1053e1be17ac"
    assert data["settings"] == {"bench.model_path": machine["model"]}
    assert len(data["commands"]) == 4
    cmd = data["commands"][0]
    assert cmd["returncode"] == 0 and cmd["results_from"] == "jsonl" and cmd["env"] == {"CUDA_VISIBLE_DEVICES": "1"}
    assert cmd["argv"][:3] == [sys.executable, "-m", "sglang.bench_one_batch"]
    log = (d / cmd["log"]).read_text()
    assert log.startswith("$ CUDA_VISIBLE_DEVICES=1 ") and "Warmup ..." in log and "Benchmark ..." in log
    assert (d / cmd["cwd"] / "result.jsonl").is_file()
    listing = store.format_list(store.runs(machine["workdir"])).splitlines()[1]
    assert listing.startswith(data["run_id"]) and "2 (4 results)" in listing and "2x NVIDIA H200" not in listing
    assert "1x NVIDIA H200" in listing and "sglang 0.5.4@1053e1b" in listing


def test_printed_log_is_the_fallback_for_a_missing_jsonl(tmp_path, machine):
    spec = spec_file(tmp_path, SWEEP)
    d = execute(spec, machine, extra_env={"FAKE_BENCH_NO_JSONL": "1"}).run_dir
    data = store.load_run(d)
    assert {c["results_from"] for c in data["commands"]} == {"log"}
    rec = data["cases"][1]["repeats"][0]
    assert (rec["batch_size"], rec["input_len"], rec["output_len"]) == (8, 256, 4)
    assert rec["run_name"] == "t.bs8-il256-ol4.r1"


def test_per_repeat_process_gives_the_same_cases(tmp_path, machine):
    spec = spec_file(tmp_path, 'process = "per-repeat"\n' + SWEEP)
    data = execute(spec, machine).run
    assert len(data["commands"]) == 2 and data["commands"][0]["cases"] == ["bs1-il256-ol4", "bs8-il256-ol4"]
    assert [len(c["repeats"]) for c in data["cases"]] == [2, 2]


def test_skipped_cases_are_noted_not_fatal(tmp_path, machine):
    spec = spec_file(tmp_path, SWEEP)
    out = execute(spec, machine, extra_env={"FAKE_BENCH_MAX_TOKENS": "1000"})  # bs 8 x 260 tokens > 1000
    assert out.run["status"] == "complete"
    assert [c["id"] for c in out.run["cases"]] == ["bs1-il256-ol4"]
    skipped = [c for c in out.run["commands"] if "skipped" in c]
    assert len(skipped) == 2 and "max batch size" in skipped[0]["skipped"]


def test_a_crash_is_stored_and_reported(tmp_path, machine):
    spec = spec_file(tmp_path, SWEEP)
    with pytest.raises(StepFailed) as err:
        execute(spec, machine, extra_env={"FAKE_BENCH_FAIL": "1"})
    assert "4 of 4 bench command(s) failed" in str(err.value)
    [d] = (machine["workdir"] / "bench").glob("2*")
    data = store.load_run(d)
    assert data["status"] == "failed" and data["cases"] == []
    assert "CUDA out of memory" in (d / data["commands"][0]["log"]).read_text()
    assert str(d / data["commands"][0]["log"]) in str(err.value)


def test_a_hung_command_times_out(tmp_path, machine):
    spec = spec_file(tmp_path, "timeout_s = 1\n[matrix]\nbatch_size = [1]\n")
    with pytest.raises(StepFailed, match="timed out after 1.0s"):
        execute(spec, machine, extra_env={"FAKE_BENCH_SLEEP": "60"})


def test_nsys_and_torch_traces_land_in_the_run(tmp_path, machine):
    spec = spec_file(tmp_path, "[matrix]\nbatch_size = [2]\ninput_len = [64]\noutput_len = [3]\n"
                               "[wrappers.nsys]\nenabled = true\noutput = 'output_report'\n"
                               "[wrappers.torch_profile]\nenabled = true\n")
    out = execute(spec, machine)
    [cmd] = out.run["commands"]
    assert cmd["argv"][:2] == ["nsys", "profile"]
    assert sorted(Path(a).name for a in cmd["artifacts"]) == [
        "output_report.nsys-rep",
        "profile_batch2_input64_output3_decode.trace.json.gz",
        "profile_batch2_input64_output3_prefill.trace.json.gz"]
    trace = out.run_dir / next(a for a in cmd["artifacts"] if a.endswith("prefill.trace.json.gz"))
    assert json.loads(gzip.decompress(trace.read_bytes()))["traceEvents"]


def test_preflight_failure_creates_no_run(tmp_path, machine, monkeypatch):
    monkeypatch.setenv("FAKE_NVSMI_APPS", "777|20000|1")
    with pytest.raises(CheckFailed, match="pid 777"):
        execute(spec_file(tmp_path, SWEEP), machine)
    assert not (machine["workdir"] / "bench").exists()


def test_a_slower_build_is_a_regression_and_a_rerun_is_not(tmp_path, machine):
    spec = spec_file(tmp_path, SWEEP.replace("repeats = 2", "repeats = 3"))
    a = store.load_run(execute(spec, machine).run_dir)
    b = store.load_run(execute(spec, machine).run_dir)
    c = store.load_run(execute(spec, machine, extra_env={"FAKE_BENCH_SLOWDOWN": "1.3"}).run_dir)
    assert compare.regressions(compare.compare(a, b)) == []
    worse = compare.regressions(compare.compare(a, c))
    assert {r.metric for r in worse} >= {"overall_throughput", "total_latency", "median_decode_throughput"}
    assert {r.case for r in worse} == {"bs1-il256-ol4", "bs8-il256-ol4"}


class Server(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"")

    def log_message(self, *args):
        pass


def test_serving_spec_against_a_loopback_server(tmp_path, machine):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Server)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    spec = bspec.override(bspec.load(bspec.find("serving-random-ids")), cases="conc=1,8;n=20", repeats=2)
    try:
        out = execute(spec, machine, base_url=url)
    finally:
        srv.shutdown()
        srv.server_close()
    data = store.load_run(out.run_dir)
    assert [c["id"] for c in data["cases"]] == ["rateinf-conc1-n20-in512-out128", "rateinf-conc8-n20-in512-out128"]
    rec = data["cases"][1]["repeats"][0]
    assert rec["request_rate"] == "inf" and rec["max_concurrency"] == 8 and rec["completed"] == 20
    raw = (out.run_dir / data["commands"][0]["cwd"] / "result.jsonl").read_text()
    assert '"request_rate": Infinity' in raw  # upstream's non-strict JSONL, parsed all the same
    assert data["base_url"] == url
    assert math.isfinite(rec["output_throughput"])


def test_serving_without_a_server_says_how_to_start_one(tmp_path, machine):
    spec = bspec.load(bspec.find("serving-random-ids"))
    with pytest.raises(CheckFailed) as err:
        execute(spec, machine, base_url="http://127.0.0.1:9")
    assert "no sglang server at http://127.0.0.1:9" in str(err.value)
    assert f"{sys.executable} -m sglang.launch_server --model-path {machine['model']}" in str(err.value)
    assert "--port 9" in str(err.value)


def test_dry_run_text_lists_every_command(tmp_path, machine):
    spec = spec_file(tmp_path, SWEEP)
    planned = brun.plan(spec, python=sys.executable, model_path="/m", workdir=machine["workdir"], run_id="RID")
    text = brun.dry_run_text(spec, planned, python=sys.executable, model_path="/m")
    assert text.count("-m sglang.bench_one_batch") == 4
    assert f"run directory {machine['workdir'].absolute() / 'bench' / 'RID'}" in text
    assert not machine["workdir"].exists()
