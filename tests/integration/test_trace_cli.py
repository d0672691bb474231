"""profile.* through the real `inv`: outputs, and one clear message per bad input (no traceback)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rebuilt.tools.trace import reference, synth

ROOT = Path(__file__).resolve().parents[2]

TORCH_TRACE = """
import sys, torch
from torch.profiler import profile, ProfilerActivity, record_function
with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
    with record_function("decode {step} 1"):
        a = torch.randn(32, 32)
        for _ in range(3):
            a = torch.relu(a @ a)
prof.export_chrome_trace(sys.argv[1])
"""


def inv(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVOKE_")}
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_clean_failure(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr + proc.stdout
    for w in words:
        assert w in proc.stderr, (w, proc.stderr)


def folder_listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def cpu_trace(tmp_path_factory) -> Path:
    """A real trace from torch.profiler on this machine's CPU torch (no GPU kernels)."""
    pytest.importorskip("torch")
    path = tmp_path_factory.mktemp("torch") / "cpu.trace.json"
    subprocess.run([sys.executable, "-c", TORCH_TRACE, str(path)], check=True, capture_output=True, timeout=300)
    return path


@pytest.fixture
def gpu_trace(tmp_path: Path) -> Path:
    path = tmp_path / "run.json.gz"
    with gzip.open(path, "wb") as f:
        synth.write(f, synth.SynthSpec(n_kernels=400, weird_every=3))
    return path


def test_perfetto_fix_writes_beside_the_input(gpu_trace: Path) -> None:
    before = digest(gpu_trace)
    proc = inv("profile.perfetto-fix", str(gpu_trace))
    assert proc.returncode == 0, proc.stderr
    out = gpu_trace.with_name("run.perfetto.json.gz")
    assert "moved" in proc.stdout and str(out) in proc.stdout
    assert digest(gpu_trace) == before
    names = {e["args"]["name"] for e in reference.load(out)["traceEvents"] if e.get("name") == "thread_name"}
    assert "stream 7 (overlap 1)" in names
    proc = inv("profile.perfetto-fix", str(gpu_trace), "-o", str(gpu_trace))
    assert_clean_failure(proc, "refusing to overwrite")
    assert digest(gpu_trace) == before


def test_summary_prints_a_table_and_csv(gpu_trace: Path, tmp_path: Path) -> None:
    proc = inv("profile.summary", str(gpu_trace), "--csv", str(tmp_path / "s.csv"), "--top", "3")
    assert proc.returncode == 0, proc.stderr
    assert "GPU streams" in proc.stdout and "Top 3 of" in proc.stdout and "p90" in proc.stdout
    assert (tmp_path / "s.csv").read_text().startswith("section,name,")


def test_merge_folder_with_two_profiles(tmp_path: Path) -> None:
    for time, stage in (("1790.5", "DECODE"), ("1790.5", "EXTEND")):
        for tp in range(2):
            with gzip.open(tmp_path / f"{time}-TP-{tp}-{stage}.trace.json.gz", "wb") as f:
                synth.write(f, synth.SynthSpec(n_kernels=60, seed=tp, device=tp))
    inputs = folder_listing(tmp_path)
    proc = inv("profile.merge", str(tmp_path), "-o", str(tmp_path / "one.json.gz"))
    assert_clean_failure(proc, "2 different profiles", "1790.5-DECODE: 2 rank file(s)", "--group")
    assert folder_listing(tmp_path) == inputs
    proc = inv("profile.merge", str(tmp_path), "--group", "1790.5-EXTEND", "-o", str(tmp_path / "one.json.gz"),
               "--fix", "--gpu-only", "--window-ms", "1:")
    assert proc.returncode == 0, proc.stderr
    assert "2 rank(s) of 1790.5-EXTEND" in proc.stdout and "perfetto fix moved" in proc.stdout
    proc = inv("profile.merge", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert {"1790.5-DECODE.merged.trace.json.gz", "1790.5-EXTEND.merged.trace.json.gz"} <= set(folder_listing(tmp_path))
    doc = reference.load(tmp_path / "1790.5-DECODE.merged.trace.json.gz")
    assert {e["args"]["name"] for e in doc["traceEvents"] if e.get("name") == "process_name"} == \
        {"[TP00] python", "[TP01] python"}
    files = ",".join(str(p) for p in sorted(tmp_path.glob("1790.5-TP-*-DECODE.trace.json.gz")))
    proc = inv("profile.merge", files, "-o", str(tmp_path / "two.json"))
    assert proc.returncode == 0 and json.loads((tmp_path / "two.json").read_text())["traceEvents"]


def test_real_cpu_trace_from_torch_profiler(cpu_trace: Path, tmp_path: Path) -> None:
    """No GPU kernels: the fix says so and writes nothing; merge passes every event through."""
    before = digest(cpu_trace)
    proc = inv("profile.perfetto-fix", str(cpu_trace))
    assert_clean_failure(proc, str(cpu_trace), "no GPU kernels", "nothing to fix, no file written", "->")
    assert proc.returncode == 2 and folder_listing(cpu_trace.parent) == ["cpu.trace.json"]
    assert digest(cpu_trace) == before
    from rebuilt.tools.trace import perfetto_fix

    plan = perfetto_fix.fix_file(cpu_trace, tmp_path / "same.json", require_kernels=False)
    assert plan.kernels == 0 and plan.moved == 0
    assert (tmp_path / "same.json").read_bytes() == cpu_trace.read_bytes()  # byte for byte
    proc = inv("profile.summary", str(cpu_trace))
    assert_clean_failure(proc, "no GPU kernels")
    rank = tmp_path / "r" / "1790.1-TP-0.trace.json"
    rank.parent.mkdir()
    rank.write_bytes(cpu_trace.read_bytes())
    proc = inv("profile.merge", str(rank.parent), "-o", str(tmp_path / "m.json"))
    assert proc.returncode == 0, proc.stderr
    from rebuilt.tools.trace import io

    n_in = sum(1 for _ in io.TraceFile(cpu_trace).events())
    out = reference.load(tmp_path / "m.json")["traceEvents"]
    n_opaque = sum(1 for e in io.TraceFile(cpu_trace).events() if e.value is None)
    n_sort = sum(1 for e in io.TraceFile(cpu_trace).events() if e.value and e.value.get("name") == "process_sort_index")
    n_procs = sum(1 for e in out if e.get("name") == "process_sort_index")
    assert len(out) == n_in - n_opaque - n_sort + n_procs
    assert any(e.get("name") == "aten::relu" for e in out)
    proc = inv("profile.merge", str(rank.parent), "--gpu-only", "-o", str(tmp_path / "g.json"))
    assert_clean_failure(proc, "no GPU events")
    assert not (tmp_path / "g.json").exists()


@pytest.mark.parametrize("case", ["truncated-gzip", "not-a-trace", "json-without-events", "missing"])
def test_bad_input_one_clear_message(tmp_path: Path, gpu_trace: Path, case: str) -> None:
    src = tmp_path / "in" / "x.trace.json.gz"
    src.parent.mkdir()
    if case == "truncated-gzip":
        src.write_bytes(gpu_trace.read_bytes()[:-2000])
        words = ("truncated or corrupt", "copy it again")
    elif case == "not-a-trace":
        src = src.with_name("notes.json")
        src.write_text("these are my notes, not a trace\n")
        words = ("not a Chrome trace", "does not start with a JSON object")
    elif case == "json-without-events":
        src = src.with_name("x.json")
        src.write_text(json.dumps({"schemaVersion": 1, "deviceProperties": []}))
        words = ("no traceEvents",)
    else:
        src = src.with_name("nope.json.gz")
        words = ("no such file",)
    before = digest(src) if src.exists() else None
    listing = folder_listing(src.parent)
    tasks = ("profile.perfetto-fix", "profile.summary") if case == "truncated-gzip" else ("profile.perfetto-fix",)
    for task in tasks:  # both tasks read through the same code; one case through summary is enough
        proc = inv(task, str(src))
        assert_clean_failure(proc, str(src), *words)
        assert proc.returncode == 2
        assert folder_listing(src.parent) == listing  # no output, no temp file left
        assert (digest(src) if src.exists() else None) == before


def test_merge_of_an_empty_folder(tmp_path: Path) -> None:
    proc = inv("profile.merge", str(tmp_path))
    assert_clean_failure(proc, str(tmp_path), "no sglang rank traces", "it is empty", "SGLANG_TORCH_PROFILER_DIR")
    assert proc.returncode == 2 and folder_listing(tmp_path) == []


def test_merge_of_a_truncated_rank_leaves_no_output(tmp_path: Path) -> None:
    for tp in range(2):
        with gzip.open(tmp_path / f"1.5-TP-{tp}.trace.json.gz", "wb") as f:
            synth.write(f, synth.SynthSpec(n_kernels=200, seed=tp, device=tp))
    bad = tmp_path / "1.5-TP-1.trace.json.gz"
    bad.write_bytes(bad.read_bytes()[:-500])
    listing = folder_listing(tmp_path)
    proc = inv("profile.merge", str(tmp_path))
    assert_clean_failure(proc, str(bad), "truncated or corrupt")
    assert folder_listing(tmp_path) == listing


def test_tasks_are_listed_with_help() -> None:
    proc = inv("--list")
    assert proc.returncode == 0
    for name in ("profile.perfetto-fix", "profile.merge", "profile.summary"):
        assert name in proc.stdout
    proc = inv("--help", "profile.merge")
    for flag in ("--window-ms", "--gpu-only", "--fix", "--output", "--group"):
        assert flag in proc.stdout


def test_real_h100_traces_through_the_tasks(tmp_path: Path) -> None:
    """The tasks on real Kineto traces with PDL-overlapped kernels (tests/fixtures/traces/h100-pdl/)."""
    real = ROOT / "tests" / "fixtures" / "traces" / "h100-pdl"
    src = real / "pdl.trace.json.gz"
    before = digest(src)
    proc = inv("profile.perfetto-fix", str(src), "-o", str(tmp_path / "fixed.json.gz"))
    assert proc.returncode == 0, proc.stderr
    assert "moved 3 of 43 kernels to 1 extra track(s) (pid 0 tid 7 +1); 3 launch arrows moved with them" in proc.stdout
    assert digest(src) == before
    ranks = tmp_path / "ranks"
    ranks.mkdir()
    for p in real.glob("*-TP-*.trace.json.gz"):
        (ranks / p.name).write_bytes(p.read_bytes())
    proc = inv("profile.merge", str(ranks), "--fix", "-o", str(tmp_path / "m.json.gz"))
    assert proc.returncode == 0, proc.stderr
    assert "2 rank(s) of 1796680758-DECODE" in proc.stdout and "perfetto fix moved 6 kernel(s)" in proc.stdout
    proc = inv("profile.summary", str(tmp_path / "m.json.gz"))
    assert proc.returncode == 0, proc.stderr
    assert "86 kernels on 6 GPU stream(s)" in proc.stdout and "stream 7 (overlap 1) (pid 0)" in proc.stdout
