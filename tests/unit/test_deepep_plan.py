"""DeepEP v1.2.1's plan against what its setup.py does with NVSHMEM and CUDA 13 (fake machines, no process).

Upstream (github.com/deepseek-ai/DeepEP, tag v1.2.1, setup.py): with ``NVSHMEM_DIR`` set it links
``-l:libnvshmem_host.so`` from ``$NVSHMEM_DIR/lib``; with it unset it finds the pip package
``nvidia.nvshmem`` and links the soname it ships (``-l:libnvshmem_host.so.3``). The pip package has no
unversioned library, so ``NVSHMEM_DIR`` must stay unset for it. CUDA 13 keeps ``cuda/std/...`` under
``$CUDA_HOME/include/cccl``, which NVSHMEM's headers include from host-compiled ``csrc/deep_ep.cpp``.
"""

from __future__ import annotations

from dataclasses import replace

from rebuilt.build import builder
from rebuilt.build.plan import env_diff, render
from rebuilt.core.runner import step_environment
from tests.conftest import fake_machine

PIP = "/opt/env/lib/python3.11/site-packages/nvidia/nvshmem"
CCCL = "/usr/local/cuda-13.0/include/cccl"


def cuda13(**kw):
    return replace(fake_machine(**kw), cuda_home="/usr/local/cuda-13.0", nvcc_version="13.0", cuda_cccl=CCCL)


def steps_of(settings, machine):
    plan, _ = builder.make_plan(settings, ["deepep"], machine)
    return plan, {s.name: s for s in plan.steps}


def test_pip_nvshmem_leaves_nvshmem_dir_unset(resolve):
    plan, st = steps_of(resolve({"stack": "aiak"}), fake_machine(nvshmem=PIP))
    assert "build" not in st  # one `setup.py bdist_wheel`, as DeepEP's install.sh
    assert st["wheel"].argv[-1] == "bdist_wheel"
    assert st["wheel"].env.get("NVSHMEM_DIR", "absent") is None  # unset, also if the caller exported it
    caller = {"NVSHMEM_DIR": PIP, "PATH": "/usr/bin"}
    assert "NVSHMEM_DIR" not in step_environment(caller, st["wheel"].env)
    assert not any("internode" in w for w in plan.warnings)  # the package counts as NVSHMEM found
    assert "unset NVSHMEM_DIR" in env_diff({}, st["wheel"].env)


def test_real_install_sets_nvshmem_dir(resolve):
    _, st = steps_of(resolve({"stack": "aiak", "nvshmem_dir": "/usr/local/nvshmem"}), fake_machine(nvshmem=PIP))
    assert st["wheel"].env["NVSHMEM_DIR"] == "/usr/local/nvshmem"


def test_no_nvshmem_warns_and_unsets(resolve):
    plan, st = steps_of(resolve({"stack": "aiak"}), fake_machine())
    assert st["wheel"].env.get("NVSHMEM_DIR", "absent") is None
    assert any("internode and low-latency kernels will be missing" in w for w in plan.warnings)
    assert any("nvidia-nvshmem-cu13" in w for w in plan.warnings)  # names the CUDA 13 package too


def test_cuda13_puts_cccl_first_on_the_host_include_path(resolve):
    plan, st = steps_of(resolve({"stack": "aiak", "cuda": "13.0"}), cuda13(nvshmem=PIP))
    assert st["wheel"].env["CPLUS_INCLUDE_PATH"] == CCCL + ":${CPLUS_INCLUDE_PATH}"
    assert step_environment({}, st["wheel"].env)["CPLUS_INCLUDE_PATH"] == CCCL  # no empty item (= cwd)
    assert step_environment({"CPLUS_INCLUDE_PATH": "/opt/inc"}, st["wheel"].env)["CPLUS_INCLUDE_PATH"] == \
        CCCL + ":/opt/inc"
    assert f"CPLUS_INCLUDE_PATH='{CCCL}:${{CPLUS_INCLUDE_PATH}}'" in render(plan, cuda13(nvshmem=PIP))


def test_cuda12_leaves_the_include_path_alone(resolve):
    _, st = steps_of(resolve({"stack": "aiak"}), fake_machine(nvshmem=PIP))
    assert "CPLUS_INCLUDE_PATH" not in st["wheel"].env


def test_probe_finds_cccl(tmp_path, monkeypatch):
    from rebuilt.core import machine as machine_mod

    home = tmp_path / "cuda-13.0"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "nvcc").write_text("")
    monkeypatch.setattr(machine_mod, "probe_python", lambda p: machine_mod.PythonInfo(executable=p))
    monkeypatch.setattr(machine_mod, "nvcc_version", lambda n: "13.0")
    monkeypatch.setattr(machine_mod, "tool_version", lambda n: None)
    monkeypatch.setattr(machine_mod, "gpus", lambda: [])
    assert machine_mod.probe("python3", "13.0", str(home)).cuda_cccl is None
    (home / "include" / "cccl" / "cuda" / "std").mkdir(parents=True)
    assert machine_mod.probe("python3", "13.0", str(home)).cuda_cccl == str(home / "include" / "cccl")
