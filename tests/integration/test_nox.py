"""nox for real: a Python 3.11 virtualenv per session, the fixture stack built into it, wheels reused
on the second run; h200_bench's no-GPU exit, its dry run, and a whole bench on a fake GPU machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rebuilt.tools.bench import gpu_health
from tests.envs import pythonpath_env
from tests.gitrepo import GIT_ENV
from tests.integration.test_fixture_builds import repo_of

ROOT = Path(__file__).resolve().parents[2]
RECIPES = f"{ROOT / 'tests' / 'fixtures' / 'recipes'}{os.pathsep}{ROOT / 'recipes'}"
FIX = ROOT / "tests" / "fixtures" / "bench"
H200 = "NVIDIA H200|9.0|143771|570.86.15|1"
SMALL = ["--cases", "bs=1,8;il=128;ol=4", "--repeats", "1"]
pytestmark = pytest.mark.slow


def nox(tmp_path, *args, env=None, timeout=900) -> subprocess.CompletedProcess:
    # the session's virtualenv sees this interpreter's torch through PYTHONPATH (tests/envs.py)
    full = {**os.environ, **GIT_ENV, **pythonpath_env(), "REBUILT_RECIPES_DIR": RECIPES,
            "REBUILT_NOX_STACK": "fixture", "INVOKE_REBUILT_AUTO_BACKUP": "false", "PIP_NO_INDEX": "1",
            **(env or {})}
    full.pop("PIP_CONSTRAINT", None)
    if not (env or {}).get("REBUILT_PYTHON"):
        full.pop("REBUILT_PYTHON", None)
    return subprocess.run([sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), "--envdir",
                           str(tmp_path / ".nox"), *args], check=False, cwd=ROOT, env=full, capture_output=True,
                          text=True, timeout=timeout)


def test_build_session_builds_then_reuses_wheels(tmp_path):
    repo = repo_of(tmp_path, "sglang_like", "sglang", "v0.5.4")
    env = {"INVOKE_REBUILT_SGLANG_URL": str(repo)}
    args = ("-s", "build(stack='fixture')", "--", "--jobs", "2", "--no-checks", "--workdir", str(tmp_path / "wd"))
    first = nox(tmp_path, *args, env=env)
    out = first.stdout + first.stderr
    assert first.returncode == 0, out[-3000:]
    assert "sgl-kernel: built in" in out and "torch:keep" in out
    # the session's one virtualenv (nox names its folder by a hash when the path would be too long)
    venv_python = next((tmp_path / ".nox").glob("*/bin/python"))
    probe = [str(venv_python), "-c", "import sys, sgl_kernel; print(sys.version_info[:2], sgl_kernel.__file__)"]
    seen = {**os.environ, **pythonpath_env()}  # sgl_kernel imports torch, which the venv sees this way
    version, where = subprocess.run(probe, check=False, capture_output=True, text=True, env=seen).stdout.split(") ")
    assert version == "(3, 11" and where.startswith(str(tmp_path / ".nox"))  # in the session's own venv
    state = json.loads((tmp_path / "wd" / "state" / "nox-fixture.json").read_text())
    assert state == {**state, "python": str(venv_python), "built": True}

    second = nox(tmp_path, *args, env=env)  # nox recreates the venv: the wheel comes from the wheelhouse
    out = second.stdout + second.stderr
    assert second.returncode == 0, out[-3000:]
    assert "Re-using existing virtual environment" not in out
    assert "sgl-kernel: reused" in out and "sgl_kernel-0.3.16.post3" in out and "sgl-kernel: built in" not in out
    assert "component(s) not rebuilt: " in out and "sgl-kernel: reused the wheel" in out
    assert subprocess.run([str(venv_python), "-c", "import sgl_kernel"], check=False, env=seen).returncode == 0


def test_h200_bench_without_gpu_stops_before_the_build(tmp_path):
    """Build mode: h200_preflight fails and nox stops; no venv is made, nothing is built or fetched."""
    r = nox(tmp_path, "-s", "h200_bench", "--", "--model-path", str(tmp_path), "--workdir", str(tmp_path / "wd"),
            env={"PATH": "/usr/bin:/bin"})
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "no NVIDIA GPU: nvidia-smi is not on PATH" in out and "Traceback" not in out
    assert "Running session build" not in out and "Creating virtual environment" not in out
    assert "Session h200_build aborted: Prerequisite session h200_preflight was not successful" in out
    assert not (tmp_path / ".nox").exists() and not (tmp_path / "wd" / "src").exists()


@pytest.mark.parametrize("nox_flags", [(), ("--no-stop-on-first-error",),
                                       ("--no-stop-on-first-error", "-j", "2", "--allow-parallel")],
                         ids=["default", "no-stop-on-first-error", "parallel"])
def test_h200_bench_never_builds_after_a_failed_preflight(tmp_path, nox_flags):
    """The build requires the preflight itself: however nox is told to go on, a machine without a GPU
    gets the GPU check's message first, and no virtualenv, checkout or build is ever started."""
    r = nox(tmp_path, *nox_flags, "-s", "h200_bench", "--", "--model-path", str(tmp_path), "--workdir",
            str(tmp_path / "wd"), env={"PATH": "/usr/bin:/bin"}, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert ("h200_bench needs an NVIDIA GPU, and the GPU check failed (nvidia-smi --query-gpu): no NVIDIA GPU: "
            "nvidia-smi is not on PATH; nothing was built") in out
    assert out.index("Running session h200_preflight") < out.index("needs an NVIDIA GPU")
    assert "Creating virtual environment" not in out and "pre-build checks" not in out and "[1/" not in out, out
    assert "Prerequisite session h200_preflight was not successful" in out
    assert not (tmp_path / ".nox").exists() and not (tmp_path / "wd").exists()


def test_h200_bench_existing_env_without_gpu_stops_with_one_message(tmp_path):
    """An existing environment: the GPU check inside h200_bench stops it before the health check or a bench."""
    r = nox(tmp_path, "-s", "h200_bench", "--", "--model-path", str(tmp_path), "--workdir", str(tmp_path / "wd"),
            env={"REBUILT_PYTHON": sys.executable, "PATH": "/usr/bin:/bin"})
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert out.count("no NVIDIA GPU: nvidia-smi is not on PATH") == 1 and "Traceback" not in out, out
    assert "Running session build" not in out and "Running session h200_preflight" not in out
    assert "gpu_health" not in out and "bench_one_batch" not in out and not (tmp_path / "wd" / "bench").exists()


def test_h200_bench_dry_run_prints_every_command_of_the_chain(tmp_path):
    """Build mode, anywhere: the preflight's queries, the build plan, the health command, every bench command."""
    r = nox(tmp_path, "-s", "h200_bench", "--", "--dry-run", "--model-path", "/models/Llama-3.1-8B-Instruct",
            "--workdir", str(tmp_path / "wd"), *SMALL, env={"PATH": "/usr/bin:/bin"})
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "nvidia-smi --query-gpu=name,compute_cap" in out and "--query-compute-apps" in out
    # the session's one virtualenv (nox names its folder by a hash when the path would be too long)
    venv_python = next((tmp_path / ".nox").glob("*/bin/python"))
    assert out.index("Running session h200_preflight") < out.index("Running session h200_build")
    assert "sgl-kernel:rebuild" in out and "make rebuild" in out and "(dry run: nothing was executed)" in out
    assert f"{venv_python} {ROOT / 'rebuilt' / 'tools' / 'bench' / 'gpu_health.py'} --json" in out
    assert out.count(f"{venv_python} -m sglang.bench_one_batch --model-path /models/Llama-3.1-8B-Instruct") == 2
    assert "--batch-size 8 --input-len 128 --output-len 4 --mem-fraction-static 0.6 --disable-cuda-graph" in out
    assert not (tmp_path / "wd" / "src").exists()  # nothing fetched, nothing built


def test_h200_bench_existing_env_dry_run(tmp_path):
    r = nox(tmp_path, "-s", "h200_bench", "--", "--dry-run", "--model-path", "/models/Llama-3.1-8B-Instruct",
            "--workdir", str(tmp_path / "wd"), env={"REBUILT_PYTHON": sys.executable})
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert f"{sys.executable} {ROOT / 'rebuilt' / 'tools' / 'bench' / 'gpu_health.py'} --json" in out
    assert "--batch-size 64" in out and "--mem-fraction-static 0.6" in out and "--disable-cuda-graph" in out
    assert "Running session build" not in out


def test_unknown_posargs_are_one_message(tmp_path):
    r = nox(tmp_path, "-s", "h200_bench", "--", "--dry-run", "--python", "/usr/bin/python3",
            env={"REBUILT_PYTHON": sys.executable})
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "REBUILT_PYTHON=/path/to/python" in out and "Traceback" not in out
    r = nox(tmp_path, "-s", "h200_bench", "--", "--dry-run", "--batch", "8", env={"REBUILT_PYTHON": sys.executable})
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "unknown argument(s) after --: --batch 8" in out


# --------------------------------------------------------------------------- a fake GPU machine


def health_report(matmul_fraction: float) -> dict:
    """A report in gpu_health's own shape (its pure build_report) for an H200 at the given matmul fraction."""
    n, tflops = 8192, 989.4 * matmul_fraction
    secs = 2.0 * n**3 / (tflops * 1e12)
    copy_s = 2.0 * 2**30 / 4.2e12
    return gpu_health.build_report(device={"name": "NVIDIA H200", "compute_capability": "9.0"}, n=n,
                                   gemm_s=[secs] * 3, bare_s=[secs] * 3, copy_bytes=2**30, copy_s=[copy_s] * 3)


@pytest.fixture
def gpu_box(tmp_path):
    """Fake nvidia-smi (one idle H200), a target interpreter whose gpu_health.py prints a canned report,
    fake sglang/sgl_kernel/flashinfer, a model folder."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FIX / "bin" / "nvidia-smi"}" "$@"\n')
    python = bin_dir / "python-target"
    python.write_text('#!/bin/sh\ncase "$1" in */gpu_health.py) cat "$FAKE_GPU_HEALTH"; exit 0;; esac\n'
                      f'exec "{sys.executable}" "$@"\n')
    for p in (smi, python):
        p.chmod(0o755)
    model = tmp_path / "Llama-3.1-8B-Instruct"
    model.mkdir()
    (model / "config.json").write_text("{}")
    report = tmp_path / "health.json"
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_NVSMI_GPUS": H200, "FAKE_NVSMI_APPS": "",
           "PYTHONPATH": os.pathsep.join([str(FIX), str(ROOT)]), "REBUILT_PYTHON": str(python),
           "FAKE_GPU_HEALTH": str(report)}
    args = ["--model-path", str(model), "--workdir", str(tmp_path / "wd"), *SMALL]
    return {"env": env, "args": args, "report": report, "bench": tmp_path / "wd" / "bench"}


def test_h200_bench_on_a_healthy_gpu_stores_the_health_with_the_run(tmp_path, gpu_box):
    gpu_box["report"].write_text(json.dumps(health_report(0.78)))
    r = nox(tmp_path, "-s", "h200_bench", "--", *gpu_box["args"], env=gpu_box["env"])
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert out.index("[ok] gpu: 0: NVIDIA H200") < out.index("GPU health, NVIDIA H200: matmul 772 TFLOP/s (78% of")
    assert out.index("GPU health, NVIDIA H200") < out.index("[1/2] bs1-il128-ol4 r1")
    assert "SLOW GPU" not in out
    (run_dir,) = [d for d in gpu_box["bench"].iterdir() if d.is_dir()]
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "complete" and [c["id"] for c in run["cases"]] == ["bs1-il128-ol4", "bs8-il128-ol4"]
    assert run["gpu_health"]["matmul"]["fraction_of_nominal"] == pytest.approx(0.78)
    assert run["gpu_health"]["harness_ok"] is True and run["gpu_health"]["exit_status"] == 0
    assert json.loads((run_dir / "gpu_health.json").read_text()) == run["gpu_health"]
    assert run["stack"] == {"name": "fixture"} and run["settings"]["stack"] == "fixture"
    assert run["target"]["modules"]["sglang"]["version"]  # the full preflight ran inside the run too


def test_h200_bench_on_a_throttled_gpu_fails_loudly_before_the_benchmark(tmp_path, gpu_box):
    gpu_box["report"].write_text(json.dumps(health_report(0.45)))
    r = nox(tmp_path, "-s", "h200_bench", "--", *gpu_box["args"], env=gpu_box["env"])
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "Traceback" not in out
    assert "!! SLOW GPU: bf16 matmul at 45% of the data sheet (threshold 60%)" in out
    assert "--allow-slow-gpu" in out and "bench_one_batch" not in out and not gpu_box["bench"].exists()

    r = nox(tmp_path, "-s", "h200_bench", "--", *gpu_box["args"], "--allow-slow-gpu", env=gpu_box["env"])
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "!! SLOW GPU" in out and "[2/2] bs8-il128-ol4 r1" in out
    (run_dir,) = [d for d in gpu_box["bench"].iterdir() if d.is_dir()]
    assert json.loads((run_dir / "run.json").read_text())["gpu_health"]["matmul"]["fraction_of_nominal"] < 0.6


def test_failed_bench_commands_still_keep_the_health_report(tmp_path, gpu_box):
    gpu_box["report"].write_text(json.dumps(health_report(0.75)))
    r = nox(tmp_path, "-s", "h200_bench", "--", *gpu_box["args"], env={**gpu_box["env"], "FAKE_BENCH_FAIL": "1"})
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "2 of 2 bench command(s) failed" in out and "Traceback" not in out
    (run_dir,) = [d for d in gpu_box["bench"].iterdir() if d.is_dir()]
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "failed" and run["gpu_health"]["matmul"]["fraction_of_nominal"] == pytest.approx(0.75)
