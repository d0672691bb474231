"""The real DeepEP v1.2.1 setup.py driven by `inv build.deepep`, as far as a machine without a GPU goes.

Sources: DeepEP's GitHub tree at tag v1.2.1 (a git checkout named by ``$REBUILT_DEEPEP_SRC``, else
a git repository tagged v1.2.1 made from ``tests/fixtures/upstream_src/DeepEP-v1.2.1.tar.gz``, the
``git archive`` of that tag), and the nvidia-nvshmem-cu13 3.4.5 wheel from the package index
(cached under ``~/.cache/rebuilt-tests/wheels``): its real headers, installed into a throw-away venv with a
``lib/`` that holds only the soname ``libnvshmem_host.so.3``, as the package ships it (the library's bytes
do not matter here: setup.py only looks for the name).

What a CPU machine can show:
- setup.py's own build summary: NVSHMEM found through the package, linked as ``-l:libnvshmem_host.so.3``,
  also when the caller's shell exports ``NVSHMEM_DIR`` at the package (the step unsets it). The CPU torch
  then stops the extension at ``CUDA_HOME`` (torch.utils.cpp_extension has no CUDA for a CPU build).
- the host compiler on NVSHMEM's headers, as DeepEP's ``csrc/kernels/configs.cuh`` includes them, with
  the environment the build step really got: CUDA 13's ``include/cccl`` makes ``<cuda/std/tuple>`` found.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.envs import make_venv
from tests.gitrepo import GIT_ENV

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path.home() / ".cache" / "rebuilt-tests" / "wheels"
NVSHMEM = "nvidia-nvshmem-cu13==3.4.5"  # the version on the H200 machine of docs/GPU.md
TAG = "v1.2.1"

pytestmark = pytest.mark.upstream


ARCHIVE = ROOT / "tests" / "fixtures" / "upstream_src" / f"DeepEP-{TAG}.tar.gz"


def _has_tag(tree: Path) -> bool:
    return subprocess.run(["git", "-C", str(tree), "rev-parse", "--verify", "-q", f"{TAG}^{{commit}}"],
                          capture_output=True, text=True).returncode == 0


@pytest.fixture(scope="module")
def deepep_tree(tmp_path_factory) -> Path:
    """A git repository with DeepEP's tag v1.2.1: $REBUILT_DEEPEP_SRC, else one made from the archive."""
    named = os.environ.get("REBUILT_DEEPEP_SRC")
    if named:
        assert _has_tag(Path(named)), f"REBUILT_DEEPEP_SRC={named} is not a git checkout with tag {TAG}"
        return Path(named)
    tree = tmp_path_factory.mktemp("deepep-src") / "DeepEP"
    tree.mkdir()
    with tarfile.open(ARCHIVE) as tar:
        tar.extractall(tree, filter="data")
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-qm", f"DeepEP {TAG} (git archive of 9af0e0d)"],
                 ["tag", TAG]):
        subprocess.run(["git", "-C", str(tree), *argv], env={**os.environ, **GIT_ENV}, check=True,
                       capture_output=True)
    assert (tree / "setup.py").is_file() and _has_tag(tree)
    return tree


def nvshmem_wheel() -> Path:
    found = sorted(CACHE.glob("nvidia_nvshmem_cu13-3.4.5-*.whl"))
    if not found:
        CACHE.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                            "--platform", "manylinux2014_x86_64", "--python-version", "3.12", "-d", str(CACHE),
                            NVSHMEM], capture_output=True, text=True, timeout=900)
        found = sorted(CACHE.glob("nvidia_nvshmem_cu13-3.4.5-*.whl"))
        assert found, f"could not fetch {NVSHMEM} from the package index (needed once, then cached):\n{r.stderr}"
    return found[0]


@pytest.fixture(scope="module")
def target(tmp_path_factory) -> tuple[Path, Path]:
    """(python, nvidia/nvshmem folder): a venv seeing the CPU torch, with the package's pip layout."""
    path = tmp_path_factory.mktemp("deepep") / "env"
    python = make_venv(path, with_pip=False)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    with zipfile.ZipFile(nvshmem_wheel()) as whl:
        names = whl.namelist()
        assert "nvidia/nvshmem/lib/libnvshmem_host.so.3" in names
        assert "nvidia/nvshmem/lib/libnvshmem_host.so" not in names  # why NVSHMEM_DIR must stay unset
        whl.extractall(purelib, [n for n in names if n.startswith("nvidia/nvshmem/include/") or ".dist-info/" in n])
    lib = Path(purelib) / "nvidia" / "nvshmem" / "lib"
    lib.mkdir()
    (lib / "libnvshmem_host.so.3").write_bytes(b"")
    return python, lib.parent


def inv(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, **GIT_ENV, "PIP_NO_INDEX": "1", "INVOKE_REBUILT_AUTO_BACKUP": "false", **(env or {})}
    full.pop("PIP_CONSTRAINT", None)
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=full, capture_output=True,
                          text=True, timeout=900)


def build_log(tmp_path: Path, python: Path, tree: Path, *extra: str, **env: str) -> str:
    """Run the real task; return the build step's log (what setup.py printed, and the env it got)."""
    wd = tmp_path / "wd"
    r = inv("build.deepep", "--stack", "aiak", "--python", str(python), "--workdir", str(wd), "--jobs", "1",
            "--no-checks", "--set", f"deepep.url=file://{tree}", *extra, env=env)
    logs = sorted(wd.glob("logs/*/02-deepep-wheel.log"))
    assert logs, r.stdout[-3000:] + r.stderr[-3000:]
    return logs[-1].read_text(errors="replace")


def test_setup_py_finds_the_pip_package_and_links_its_soname(tmp_path, target, deepep_tree):
    python, pkg = target
    log = build_log(tmp_path, python, deepep_tree, NVSHMEM_DIR=str(pkg))  # as a user's shell may export it
    assert "# env NVSHMEM_DIR=(unset)" in log
    assert f" > NVSHMEM path: {pkg}" in log
    link = re.search(r" > Link flags: (.*)", log).group(1)
    assert "'-l:libnvshmem_host.so.3'" in link and "'-l:libnvshmem_host.so'" not in link, link
    assert f"-Wl,-rpath,{pkg}/lib" in link
    assert "csrc/kernels/internode.cu" in re.search(r" > Sources: (.*)", log).group(1)  # NVSHMEM kernels on


def test_nvshmem_dir_setting_reaches_setup_py(tmp_path, target, deepep_tree):
    python, _ = target
    full = tmp_path / "nvshmem"  # a full install's layout: the unversioned link beside the soname
    (full / "include").mkdir(parents=True)
    (full / "lib").mkdir()
    log = build_log(tmp_path, python, deepep_tree, "--set", f"nvshmem_dir={full}")
    assert f"# env NVSHMEM_DIR={full}" in log and f" > NVSHMEM path: {full}" in log
    assert "'-l:libnvshmem_host.so'" in re.search(r" > Link flags: (.*)", log).group(1)


def test_host_compiler_finds_cuda_std_with_the_step_env(tmp_path, target, deepep_tree):
    python, pkg = target
    log = build_log(tmp_path, python, deepep_tree)
    m = re.search(r"# env CUDA_HOME=(\S+)", log)
    home = Path(m.group(1)) if m else None
    if not home or not (home / "include" / "cccl").is_dir():
        pytest.skip(f"needs CUDA 13 (an include/cccl folder) for the host-compiler half; CUDA_HOME={home}")
    inc = re.search(r"# env CPLUS_INCLUDE_PATH=(\S+)", log)
    assert inc, "the build step got no CPLUS_INCLUDE_PATH on CUDA 13"
    assert inc.group(1).split(":")[0] == str(home / "include" / "cccl")
    # NVSHMEM's includes exactly as DeepEP's csrc/kernels/configs.cuh has them (host compile of deep_ep.cpp)
    configs = (tmp_path / "wd" / "src" / "DeepEP" / "csrc" / "kernels" / "configs.cuh").read_text()
    lines = [ln for ln in configs.splitlines() if re.match(r"#include <nvshmemx?\.h>", ln.strip())]
    assert len(lines) == 2, lines
    src = tmp_path / "nvshmem_includes.cpp"
    src.write_text("\n".join(lines) + "\n")
    argv = ["g++", "-E", "-x", "c++", f"-I{pkg}/include", f"-I{home}/include", str(src), "-o", os.devnull]
    base = {k: v for k, v in os.environ.items() if k != "CPLUS_INCLUDE_PATH"}
    bare = subprocess.run(argv, env=base, capture_output=True, text=True)
    assert bare.returncode != 0 and "fatal error: cuda/std/" in bare.stderr  # what CUDA 13 does without it
    fixed = subprocess.run(argv, env={**base, "CPLUS_INCLUDE_PATH": inc.group(1)}, capture_output=True, text=True)
    assert fixed.returncode == 0, fixed.stderr[-2000:]
