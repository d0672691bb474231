"""The doctor against fake toolchains (scripts on a temporary PATH printing real tools' version text)
and against this machine; the pre-build checks stop a build in seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

NVCC = "nvcc: NVIDIA (R) Cuda compiler driver\nCuda compilation tools, release {v}, V{v}.131\nBuild cuda_{v}\n"
GCC = "gcc (GCC) {v}\nCopyright (C) 2024 Free Software Foundation, Inc.\n"
PY313 = ('{"version": "3.13.0", "executable": "%s", "prefix": "/x", "base_prefix": "/x", "purelib": "/x", '
         '"packages": {}, "torch": {"version": null}, "nvshmem": null}')


def fake(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\ncat <<'EOF'\n" + text + "EOF\n")
    path.chmod(0o755)
    return path


def toolchain(tmp_path, cuda="12.4", gcc="14.2.0", cmake="3.31.6") -> tuple[dict, Path]:
    bin_ = tmp_path / "bin"
    cuda_home = tmp_path / f"cuda-{cuda}"
    fake(cuda_home / "bin", "nvcc", NVCC.format(v=cuda))
    fake(bin_, "gcc", GCC.format(v=gcc))
    fake(bin_, "g++", GCC.format(v=gcc).replace("gcc", "g++", 1))
    fake(bin_, "cmake", f"cmake version {cmake}\n")
    env = {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}"}
    return env, cuda_home


def inv(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=env or os.environ,
                          capture_output=True, text=True, timeout=timeout)


def rows(result) -> dict:
    return {r["name"]: r for r in json.loads(result.stdout)}


def test_cuda_12_4_with_gcc_14_fails_the_host_compiler(tmp_path):
    env, cuda_home = toolchain(tmp_path, cuda="12.4", gcc="14.2.0")
    r = inv("doctor", "--json", "--offline", "--set", f"cuda_home={cuda_home}", "--set", "cuda=12.4",
            "--set", "host_compiler=", "--workdir", str(tmp_path / "wd"), env=env)
    assert r.returncode == 3, r.stderr
    hc = rows(r)["host compiler"]
    assert hc["status"] == "fail" and "CUDA 12.4 accepts gcc <= 13" in hc["found"] and "gcc-13" in hc["todo"]
    assert rows(r)["cuda"]["status"] == "ok"


def test_cuda_12_9_accepts_gcc_14_and_old_cmake_fails_for_sgl_kernel(tmp_path):
    env, cuda_home = toolchain(tmp_path, cuda="12.9", gcc="14.2.0", cmake="3.25.1")
    args = ("doctor", "--json", "--offline", "--set", f"cuda_home={cuda_home}", "--set", "host_compiler=",
            "--workdir", str(tmp_path / "wd"))
    got = rows(inv(*args, "--recipe", "sgl-kernel", env=env))
    assert got["host compiler"]["status"] == "ok" and got["cuda"]["status"] == "ok"
    assert got["cmake"]["status"] == "fail" and "sgl-kernel:rebuild needs cmake>=3.26" in got["cmake"]["found"]
    # the whole stack builds torch first, whose requirements.txt installs a newer cmake into the environment
    cmake = rows(inv(*args, env=env))["cmake"]
    assert cmake["status"] == "ok" and "torch:requirements installs its own" in cmake["found"]


def test_python_3_13_is_explained(tmp_path):
    env, cuda_home = toolchain(tmp_path, cuda="12.9", gcc="12.3.0")
    py = fake(tmp_path / "py", "python3.13", PY313 % (tmp_path / "py" / "python3.13") + "\n")
    r = inv("doctor", "--json", "--offline", "--python", str(py), "--set", f"cuda_home={cuda_home}",
            "--set", "host_compiler=", "--workdir", str(tmp_path / "wd"), env=env)
    p = rows(r)["python"]
    assert p["status"] == "fail" and "Rust compiler" in p["todo"]


def test_stale_nvcc_in_cmake_cache_and_fix(tmp_path):
    env, cuda_home = toolchain(tmp_path, cuda="12.9", gcc="12.3.0")
    cache = tmp_path / "wd" / "src" / "pytorch" / "build" / "CMakeCache.txt"
    cache.parent.mkdir(parents=True)
    cache.write_text("CMAKE_BUILD_TYPE:STRING=Release\nCMAKE_CUDA_COMPILER:STRING=/usr/local/cuda-12.4/bin/nvcc\n")
    args = ("doctor", "--json", "--offline", "--set", f"cuda_home={cuda_home}", "--set", "host_compiler=",
            "--workdir", str(tmp_path / "wd"))
    got = rows(inv(*args, env=env))["CMakeCache nvcc"]
    assert got["status"] == "fail" and "/usr/local/cuda-12.4/bin/nvcc" in got["found"]
    fixed = rows(inv(*args, "--fix", env=env))["CMakeCache nvcc"]
    assert fixed["status"] == "ok" and "fixed" in fixed["found"]
    assert f"CMAKE_CUDA_COMPILER:STRING={cuda_home}/bin/nvcc" in cache.read_text()


def test_this_machine_table(tmp_path):
    """Whatever this machine holds, the table, the JSON rows, the summary line and the exit status agree:
    exit 3 and one message naming exactly the failed checks when one fails, exit 0 when none does."""
    args = ("doctor", "--offline", "--workdir", str(tmp_path / "wd"))
    r = inv(*args)
    assert "Traceback" not in r.stderr
    for name in ("python", "host compiler", "cuda", "torch", "cmake", "ninja", "ccache", "libnuma", "disk", "gpu"):
        assert name in r.stdout
    got = rows(inv(*args, "--json"))
    failed = [name for name, row in got.items() if row["status"] == "fail"]
    warned = [name for name, row in got.items() if row["status"] == "warn"]
    assert f"{len(failed)} failed, {len(warned)} warnings, {len(got) - len(failed) - len(warned)} ok" in r.stdout
    if failed:
        assert r.returncode == 3, r.stderr
        assert f"rebuilt: {len(failed)} check(s) failed: {', '.join(failed)}" in r.stderr
    else:
        assert r.returncode == 0 and "failed:" not in r.stderr, r.stderr


def test_preflight_stops_the_build_before_any_step(tmp_path):
    env, cuda_home = toolchain(tmp_path, cuda="12.4", gcc="14.2.0")
    wd = tmp_path / "wd"
    r = inv("build.sgl-kernel", "--set", f"cuda_home={cuda_home}", "--set", "cuda=12.4", "--set", "host_compiler=",
            "--workdir", str(wd), env=env)
    assert r.returncode == 3 and "pre-build checks failed" in r.stderr and "host compiler" in r.stderr
    assert "[1/" not in r.stdout  # no step started: not even the checkout
    assert not (wd / "src").exists() or not any((wd / "src").iterdir())
    assert not list(wd.glob("logs/*/*.log")) and not list(wd.glob("manifests/*.json"))


def test_shim_puts_the_host_compiler_first(tmp_path):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "which-gcc.toml").write_text(
        '[recipe]\nsummary = "prints gcc --version"\n[[steps]]\nname = "gcc"\n'
        'shell = "gcc --version | head -1 && c++ --version | head -1 && echo CUDAHOSTCXX=$CUDAHOSTCXX"\n'
        'cwd = "{workdir}"\n')
    env, _ = toolchain(tmp_path, gcc="14.2.0")  # a gcc 14 first on the caller's PATH
    env["REBUILT_RECIPES_DIR"] = f"{recipes}{os.pathsep}{ROOT / 'recipes'}"
    r = inv("build.which-gcc", "--no-checks", "--verbose", "--set", "host_compiler=gcc-12",
            "--workdir", str(tmp_path / "wd"), env=env)
    assert r.returncode == 0, r.stderr
    assert "gcc-12" in r.stdout.split("[1/1]")[1] and "14.2.0" not in r.stdout.split("[1/1]")[1]
    assert "CUDAHOSTCXX=/usr/bin/g++-12" in r.stdout
    assert os.readlink(tmp_path / "wd" / "state" / "shim" / "gcc-12" / "gcc") == "/usr/bin/gcc-12"


# ---------------------------------------------------------------- checks judge the plan (and dry runs end with them)


def test_a_fresh_venv_builds_the_stack_torch_first(tmp_path):
    """A new virtualenv has no torch: the plan's torch:develop makes it before any step needs it, so the
    checks pass and a real build starts (its first step, the checkout, fails on a URL that is not there)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    env, cuda_home = toolchain(tmp_path, cuda="12.9", gcc="12.3.0")
    args = ["build.stack", "--python", str(venv / "bin" / "python"), "--workdir", str(tmp_path / "wd"),
            "--set", f"cuda_home={cuda_home}"]
    dry = inv(*args, "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "torch: not installed" not in dry.stdout and "verdict: a real build would pass the checks" in dry.stdout
    real = inv(*args, "--set", f"torch.url=file://{tmp_path}/no-such-repo", env=env)
    assert "pre-build checks failed" not in real.stderr and "checks: 0 failed" in real.stdout, real.stderr
    assert real.returncode == 2 and "ref 'v2.8.0' does not exist in file://" in real.stderr  # past the checks


def test_flashinfer_editable_runs_no_nvcc_so_a_wrong_cuda_does_not_stop_it(tmp_path):
    env, cuda_home = toolchain(tmp_path, cuda="13.0", gcc="16.1.0")  # neither fits the stack's CUDA 12.9
    args = ["build.flashinfer", "--dry-run", "--workdir", str(tmp_path / "wd"), "--set", f"cuda_home={cuda_home}",
            "--set", "host_compiler="]
    r = inv(*args, env=env)
    assert r.returncode == 0 and "verdict: a real build would pass the checks" in r.stdout, r.stdout[-2000:]
    r = inv(*args, "--set", "flashinfer.aot=true", env=env)  # AOT compiles: now the checks would stop it
    verdict = r.stdout.split("(dry run: nothing was executed)")[1]
    assert r.returncode == 0 and "cuda: nvcc 13.0" in verdict and "(needed by flashinfer:aot)" in verdict
    assert "host compiler" in verdict and verdict.rstrip().splitlines()[-1].startswith(
        "verdict: a real build would stop at the checks")


def test_a_dry_run_shows_an_unset_url_as_a_placeholder_and_a_real_run_stops(tmp_path):
    r = inv("build.stack", "--stack", "aiak", "--dry-run", "--workdir", str(tmp_path / "wd"))
    assert r.returncode == 0, r.stderr
    assert "git fetch <speedgate.url: not set> main" in r.stdout
    assert "! setting speedgate.url is not set: a real build stops here" in r.stdout
    assert "  settings: speedgate.url is not set\n    -> set it in invoke.yaml" in r.stdout
    r = inv("build.stack", "--stack", "aiak", "--workdir", str(tmp_path / "wd"))
    assert r.returncode == 2 and "setting speedgate.url is empty" in r.stderr
    assert "INVOKE_REBUILT_SPEEDGATE_URL=<git url>" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "wd" / "logs").exists()


def test_a_python_that_does_not_run_is_bad_input_also_in_a_dry_run(tmp_path):
    for extra in (["--dry-run"], []):
        r = inv("build.sgl-kernel", "--python", "/nonexistent/bin/python", "--workdir", str(tmp_path / "wd"), *extra)
        assert r.returncode == 2 and "python /nonexistent/bin/python does not run" in r.stderr, r.stderr
        assert "--python" in r.stderr and "Traceback" not in r.stderr and "[1/" not in r.stdout
