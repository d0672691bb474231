"""The bench tasks through the real `inv` CLI, run from the repository root."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "bench"
H200 = "NVIDIA H200|9.0|143771|570.86.15|1"
SPEC = """\
description = "CLI test sweep"
repeats = 3
[matrix]
batch_size = [1, 16]
input_len = [128]
output_len = [8]
[server]
mem-fraction-static = 0.6
disable-cuda-graph = true
"""


def inv(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def box(tmp_path):
    """A fake GPU machine: fake nvidia-smi and nsys on PATH, fake sglang for the target interpreter."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("nvidia-smi", "nsys"):
        p = bin_dir / tool
        p.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FIX / "bin" / tool}" "$@"\n')
        p.chmod(0o755)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    spec = tmp_path / "cli-sweep.toml"
    spec.write_text(SPEC)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(FIX)]),
           "FAKE_NVSMI_GPUS": f"{H200};{H200}", "FAKE_NVSMI_APPS": ""}
    common = ["--spec", str(spec), "--python", sys.executable, "--model-path", str(model),
              "--workdir", str(tmp_path / "work"), "--cuda-visible-devices", "1"]
    return {"env": env, "run": common, "work": str(tmp_path / "work"), "tmp": tmp_path}


def test_bench_tasks_are_in_the_root_namespace():
    out = inv("--list")
    assert out.returncode == 0, out.stderr
    for name in ("bench.run", "bench.parse", "bench.list", "bench.compare", "bench.plot", "bench.health",
                 "bench.preflight"):
        assert name in out.stdout


def test_dry_run_works_anywhere(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # no nvidia-smi, no nsys
    out = inv("bench.run", "--dry-run", "--spec", "one-batch-nsys", "--python", sys.executable,
              "--cuda-visible-devices", "1", "--workdir", str(tmp_path / "w"), env=env)
    assert out.returncode == 0, out.stderr
    assert "CUDA_VISIBLE_DEVICES=1 nsys profile --trace=cuda --sample=process-tree --cudabacktrace=kernel:0 -o" in out.stdout
    assert f"{sys.executable} -m sglang.bench_one_batch --model-path '<model-path>' --batch-size 64" in out.stdout
    assert not (tmp_path / "w").exists()


def test_no_gpu_fails_with_one_message_and_no_traceback(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    env = {**os.environ, "PATH": str(tmp_path)}  # this machine has no nvidia-smi; make sure of it
    out = inv("bench.run", "--python", sys.executable, "--model-path", str(model),
              "--workdir", str(tmp_path / "w"), env=env)
    assert out.returncode == 3
    assert "Traceback" not in out.stderr + out.stdout
    assert out.stderr.splitlines()[0] == "rebuilt: no NVIDIA GPU: nvidia-smi is not on PATH"
    assert not (tmp_path / "w").exists()
    pre = inv("bench.preflight", "--python", sys.executable, "--model-path", str(model), env=env)
    assert pre.returncode == 3 and "Traceback" not in pre.stderr and "no NVIDIA GPU" in pre.stderr


def test_health_without_cuda_exits_with_a_message(tmp_path):
    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
                           capture_output=True, text=True)
    if probe.stdout.strip() == "True":
        pytest.skip("this machine has CUDA: the no-GPU path cannot be shown here")
    out = inv("bench.health", "--python", sys.executable)
    assert out.returncode == 2 and "Traceback" not in out.stderr  # docs/BENCH.md: without CUDA it exits 2
    assert out.stderr.startswith("rebuilt: gpu_health: ")
    assert ("CUDA is not available" in out.stderr) or ("torch is not importable" in out.stderr)
    direct = subprocess.run([sys.executable, "-m", "rebuilt.tools.bench.gpu_health", "--json"], cwd=ROOT,
                            capture_output=True, text=True)
    assert direct.returncode == 2 and direct.stdout == "" and "gpu_health:" in direct.stderr


def test_run_list_compare_and_regression_exit_code(box):
    env = box["env"]
    for extra in ({}, {}, {"FAKE_BENCH_SLOWDOWN": "1.4"}):
        out = inv("bench.run", *box["run"], env={**env, **extra})
        assert out.returncode == 0, out.stdout + out.stderr
        assert "[ok] gpu: 1: NVIDIA H200" in out.stdout and "[6/6] bs16-il128-ol8 r3" in out.stdout
    listing = inv("bench.list", "--workdir", box["work"], env=env)
    rows = listing.stdout.splitlines()
    assert listing.returncode == 0 and len(rows) == 4 and rows[0].split()[:3] == ["run", "date", "spec"]
    assert all("cli-sweep" in r and "complete" in r and "2 (6 results)" in r and "1x NVIDIA H200" in r
               for r in rows[1:])

    same = inv("bench.compare", "latest~2", "latest~1", "--workdir", box["work"], "--fail-on-regression", env=env)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "0 worse" in same.stdout and "overall_throughput (token/s), higher is better" in same.stdout

    slower = inv("bench.compare", "latest~2", "latest", "--workdir", box["work"], "--fail-on-regression", env=env)
    assert slower.returncode == 1
    assert "regression(s)" in slower.stderr and "Traceback" not in slower.stderr
    assert "worse" in slower.stdout
    no_flag = inv("bench.compare", "latest~2", "latest", "--workdir", box["work"], env=env)
    assert no_flag.returncode == 0  # without --fail-on-regression a report is not a failure

    run_dir = Path(box["work"]) / "bench"
    log = next(run_dir.glob("*/bs16-il128-ol8/r1/output.log"))
    parsed = inv("bench.parse", str(log), env=env)
    assert parsed.returncode == 0
    import json

    [rec] = [json.loads(line) for line in parsed.stdout.splitlines()]
    assert (rec["batch_size"], rec["input_len"], rec["output_len"]) == (16, 128, 8)
    assert rec["run_name"].startswith("cli-sweep.bs16-il128-ol8.r1")

    png = box["tmp"] / "plots" / "sweep.png"
    plotted = inv("bench.plot", "latest~2,latest", "-o", str(png), "--workdir", box["work"], env=env)
    assert plotted.returncode == 0, plotted.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 800 and height >= 500 and len(data) > 20_000


def test_unknown_run_and_bad_file_are_messages(box, tmp_path):
    out = inv("bench.compare", "nope", "latest", "--workdir", str(tmp_path / "empty"), env=box["env"])
    assert out.returncode == 2 and "no bench run 'nope'" in out.stderr and "Traceback" not in out.stderr
    junk = tmp_path / "junk.txt"
    junk.write_text("nothing here\n")
    out = inv("bench.parse", str(junk), env=box["env"])
    assert out.returncode == 2 and f"rebuilt: {junk}: no benchmark results found" in out.stderr
