"""Real builds of small projects shaped like the upstreams, through the real recipes and the real CLI.

The target is a virtual environment that sees this machine's CPU torch (system site
packages); sources are local git repositories made by the test; nothing reaches the network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.envs import make_venv
from tests.gitrepo import GIT_ENV, git, make_repo

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def target(tmp_path_factory) -> Path:
    """A venv that sees the test interpreter's torch 2.13.0 CPU, scikit-build-core, uv and ninja."""
    path = tmp_path_factory.mktemp("venv") / "env"
    return make_venv(path)


def repo_of(tmp_path: Path, fixture: str, name: str, tag: str) -> Path:
    repo = make_repo(tmp_path / "upstream" / name, copy_from=FIXTURES / fixture)
    git(repo, "tag", tag)
    return repo


def inv(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real CLI, offline (PIP_NO_INDEX), torch backups off (the guard's own tests cover them)."""
    full = {**os.environ, **GIT_ENV, "PIP_NO_INDEX": "1", "INVOKE_REBUILT_AUTO_BACKUP": "false", **(env or {})}
    full.pop("PIP_CONSTRAINT", None)
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=full, capture_output=True,
                          text=True, timeout=900)


def run_py(python: Path, code: str) -> str:
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True,
                          cwd="/").stdout.strip()


def manifest_of(wd: Path, recipe: str) -> dict:
    files = sorted((wd / "manifests").glob(f"*-{recipe}.json"))
    assert files, f"no manifest for {recipe} in {wd}"
    return json.loads(files[-1].read_text())


def test_sgl_kernel_make_rebuild_gets_the_job_count(tmp_path, target):
    repo = repo_of(tmp_path, "sglang_like", "sglang", "v0.5.4")
    wd = tmp_path / "wd"
    # upstream's Makefile as it is: $(nproc) is empty, so MAX_JOBS= overrides whatever the user exported
    dry = subprocess.run(["make", "-n", "build"], cwd=repo / "sgl-kernel", capture_output=True, text=True)
    assert "MAX_JOBS= CMAKE_BUILD_PARALLEL_LEVEL= uv build" in dry.stdout
    r = inv("build.sgl-kernel", "--python", str(target), "--workdir", str(wd), "--jobs", "2", "--no-checks",
            "--set", f"sglang.url={repo}")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    info = json.loads((wd / "src" / "sglang" / "sgl-kernel" / "build" / "rebuilt_build_info.json").read_text())
    assert info == {"MAX_JOBS": "2", "CMAKE_BUILD_PARALLEL_LEVEL": "2", "SGL_KERNEL_COMPILE_THREADS": "8",
                    "ENABLE_BELOW_SM90": "0"}
    assert run_py(target, "import torch, sgl_kernel; print(sgl_kernel.add_one(torch.zeros(2)).tolist())") == \
        "[1.0, 1.0]"
    m = manifest_of(wd, "sgl-kernel")
    assert m["status"] == "done" and m["source"]["ref"] == "v0.5.4" and m["source"]["dirty"] is False
    [wheel] = m["artifacts"]
    assert wheel["path"].endswith("sgl_kernel-0.3.16.post3-cp310-abi3-linux_x86_64.whl")
    assert Path(wheel["path"]).exists() and len(wheel["sha256"]) == 64
    assert [s["name"] for s in m["steps"]] == ["fetch", "install-uv", "rebuild", "install-wheel", "verify", "collect"]
    assert all(Path(s["log"]).exists() for s in m["steps"])
    assert m["toolchain"]["tools"]["gcc"] and m["jobs"]["jobs"] == 2


def test_deepep_reads_nvshmem_dir_and_arch_list(tmp_path, target):
    repo = repo_of(tmp_path, "deepep_like", "DeepEP", "v1.2.1")
    nvshmem = tmp_path / "nvshmem"
    (nvshmem / "include").mkdir(parents=True)
    (nvshmem / "include" / "nvshmem.h").write_text("#define NVSHMEM_FIXTURE 1\n")
    wd = tmp_path / "wd"
    r = inv("build.deepep", "--stack", "aiak", "--python", str(target), "--workdir", str(wd), "--jobs", "2",
            "--no-checks", "--set", f"deepep.url={repo}", "--set", f"nvshmem_dir={nvshmem}",
            "--set", "deepep.torch_cuda_arch_list=8.0;9.0")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = run_py(target, "import deep_ep; print(deep_ep.internode_enabled(), deep_ep.arch_list(), "
                         "deep_ep.aggressive_ptx())")
    assert out == "True 8.0;9.0 False"  # the notes' arch list forces DISABLE_AGGRESSIVE_PTX_INSTRS
    assert manifest_of(wd, "deepep")["artifacts"][0]["path"].endswith(".whl")


def test_deepep_without_nvshmem_warns_and_builds_intranode_only(tmp_path, target):
    repo = repo_of(tmp_path, "deepep_like", "DeepEP", "v1.2.1")
    wd = tmp_path / "wd"
    r = inv("build.deepep", "--python", str(target), "--workdir", str(wd), "--jobs", "2", "--no-checks",
            "--set", f"deepep.url={repo}", "--force")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "internode and low-latency kernels will be missing" in r.stdout
    assert run_py(target, "import deep_ep; print(deep_ep.internode_enabled())") == "False"


def test_vllm_existing_torch_by_requirement_name(tmp_path, target):
    repo = repo_of(tmp_path, "vllm_like", "vllm", "v0.6.4.post1")
    wd = tmp_path / "wd"
    torch_before = run_py(target, "import torch; print(torch.__version__)")
    r = inv("build.vllm", "--stack", "aiak", "--python", str(target), "--workdir", str(wd), "--jobs", "4",
            "--no-checks", "--set", f"vllm.url={repo}", "--set", "vllm.nvcc_threads=2")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    checkout = wd / "src" / "vllm"
    cuda_reqs = (checkout / "requirements-cuda.txt").read_text()
    assert "torch ==" not in cuda_reqs and "torchvision" not in cuda_reqs
    assert "setuptools>=61  # stands in for xformers" in cuda_reqs  # upstream's substring match drops this
    assert "torch" not in (checkout / "pyproject.toml").read_text().split("requires")[1].split("]")[0]
    assert "dropped requirements-cuda.txt:5: torch == 2.5.1  <- names protected torch" in r.stdout
    assert run_py(target, "import vllm._build_info as b; print(b.MAX_JOBS, b.NVCC_THREADS, b.JOBS)") == "4 2 2"
    assert run_py(target, "import torch; print(torch.__version__)") == torch_before
    m = manifest_of(wd, "vllm")
    assert m["source"]["dirty"] is True  # like upstream's script, the checkout is edited in place


def test_upstream_use_existing_torch_also_drops_unrelated_lines(tmp_path):
    """Why the recipe does not run upstream's script by default: on the same file, upstream's substring match
    drops a line that names no protected distribution; rebuilt's reading by requirement name keeps it."""
    from rebuilt.build import reqlines

    repo = repo_of(tmp_path, "vllm_like", "vllm", "v0.6.4.post1")
    path = repo / "requirements-cuda.txt"
    before = path.read_text().splitlines()
    ours = {ln.text.strip() for ln in reqlines.read_lines(path, path.name)
            if ln.requirement and ln.name in {"torch", "torchvision", "torchaudio", "triton"}}
    subprocess.run([sys.executable, "use_existing_torch.py"], cwd=repo, check=True, capture_output=True)
    upstream = {line.strip() for line in before} - {line.strip() for line in path.read_text().splitlines()}
    assert ours and ours < upstream
    [extra] = upstream - ours
    assert extra.startswith("setuptools>=61") and "stands in for xformers" in extra
