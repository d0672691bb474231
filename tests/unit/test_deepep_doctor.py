"""`inv doctor`'s DeepEP checks: NVSHMEM as DeepEP v1.2.1's setup.py links it, CUDA 13's include/cccl,
and the arch list its SM90 kernels accept. Fake machines, real folders under tmp_path, no process.

The layouts are the real ones: the nvidia-nvshmem-cu13 3.4.5 package's lib/ holds libnvshmem_host.so.3,
libnvshmem_device.a and the bootstrap/transport plugins, no unversioned libnvshmem_host.so (seen on an H200
machine, docs/GPU.md); a full NVSHMEM install (/usr/local/nvshmem) has the unversioned link.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from rebuilt.build import builder
from rebuilt.build.checks import catalog as checks
from rebuilt.build.checks.model import Context
from rebuilt.build.checks.nvshmem import deepep_arch, deepep_cccl, deepep_nvshmem
from rebuilt.core import runner
from tests.conftest import fake_machine


@pytest.fixture(autouse=True)
def no_processes(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError(f"a unit test started a process: {a}")

    monkeypatch.setattr(runner, "capture", refuse)


def pip_layout(root):
    lib = root / "nvidia" / "nvshmem" / "lib"
    lib.mkdir(parents=True)
    for name in ("libnvshmem_host.so.3", "libnvshmem_device.a", "nvshmem_bootstrap_uid.so.3"):
        (lib / name).write_bytes(b"")
    (root / "nvidia" / "nvshmem" / "include").mkdir()
    return root / "nvidia" / "nvshmem"


def machine(nvshmem=None, cu13=True, cccl=None, version="3.4.5"):
    m = fake_machine(nvshmem=str(nvshmem) if nvshmem else None, **{"gcc-12": "12.3.0", "g++-12": "12.3.0"})
    if cu13:
        m = replace(m, cuda_home="/usr/local/cuda-13.0", nvcc_version="13.0", cuda_cccl=cccl)
    if nvshmem and version:
        m.python.packages["nvidia-nvshmem-cu13" if cu13 else "nvidia-nvshmem-cu12"] = version
    return m


def ctx(settings, m, names=("deepep",)):
    plan, _ = builder.make_plan(settings, list(names), m)
    return Context(settings=settings, machine=m, recipes=list(names), plan=plan, probe_network=False)


def row(rows):
    assert len(rows) == 1, rows
    return rows[0]


def test_registered_for_doctor_and_before_builds():
    for fn in (deepep_nvshmem, deepep_cccl, deepep_arch):
        assert fn in checks.ALL and fn in checks.PREFLIGHT


def test_pip_package_ok_and_names_the_soname(resolve, tmp_path, monkeypatch):
    monkeypatch.setenv("NVSHMEM_DIR", "/somewhere/else")  # the plan unsets it, so it does not matter
    pip = pip_layout(tmp_path)
    r = row(deepep_nvshmem(ctx(resolve({"stack": "aiak"}), machine(pip))))
    assert r.status == "ok", r
    assert "NVSHMEM_DIR stays unset" in r.found and "-l:libnvshmem_host.so.3" in r.found
    assert "nvidia-nvshmem-cu13 3.4.5" in r.found


def test_nvshmem_dir_at_the_pip_layout_fails(resolve, tmp_path):
    pip = pip_layout(tmp_path)
    r = row(deepep_nvshmem(ctx(resolve({"stack": "aiak", "nvshmem_dir": str(pip)}), machine(pip))))
    assert r.status == "fail"
    assert "libnvshmem_host.so.3 but no lib/libnvshmem_host.so" in r.found
    assert "ld: cannot find -l:libnvshmem_host.so" in r.found and "clear nvshmem_dir" in r.todo


def test_full_install_with_the_unversioned_link_is_ok(resolve, tmp_path):
    full = tmp_path / "nvshmem"
    (full / "lib").mkdir(parents=True)
    (full / "lib" / "libnvshmem_host.so.3").write_bytes(b"")
    (full / "lib" / "libnvshmem_host.so").symlink_to("libnvshmem_host.so.3")
    r = row(deepep_nvshmem(ctx(resolve({"stack": "aiak", "nvshmem_dir": str(full)}), machine())))
    assert r.status == "ok" and f"NVSHMEM_DIR={full}" in r.found
    gone = row(deepep_nvshmem(ctx(resolve({"stack": "aiak", "nvshmem_dir": str(tmp_path / "nope")}), machine())))
    assert gone.status == "fail" and "does not exist" in gone.found


def test_package_without_its_host_library_fails_and_none_warns(resolve, tmp_path):
    pip = pip_layout(tmp_path)
    (pip / "lib" / "libnvshmem_host.so.3").unlink()
    assert row(deepep_nvshmem(ctx(resolve({"stack": "aiak"}), machine(pip)))).status == "fail"
    none = row(deepep_nvshmem(ctx(resolve({"stack": "aiak"}), machine())))
    assert none.status == "warn" and "nvidia-nvshmem-cu13" in none.todo


def test_old_or_wrong_cuda_package_warns(resolve, tmp_path):
    pip = pip_layout(tmp_path)
    old = row(deepep_nvshmem(ctx(resolve({"stack": "aiak"}), machine(pip, version="3.2.5"))))
    assert old.status == "warn" and ">= 3.3.9" in old.found
    m = machine(pip, version=None)
    m.python.packages["nvidia-nvshmem-cu12"] = "3.3.20"
    wrong = row(deepep_nvshmem(ctx(resolve({"stack": "aiak", "cuda": "13.0"}), m)))
    assert wrong.status == "warn" and "pip install nvidia-nvshmem-cu13" in wrong.todo


def test_cccl_on_the_include_path_for_every_setup_step(resolve, tmp_path):
    cccl = str(tmp_path / "cuda-13.0" / "include" / "cccl")
    s = resolve({"stack": "aiak", "cuda": "13.0"})
    m = machine(pip_layout(tmp_path), cccl=cccl)
    assert row(deepep_cccl(ctx(s, m))).status == "ok"
    c = ctx(s, m)  # a recipe that forgets it (e.g. a private copy of the old one)
    c.plan = replace(c.plan, recipes=tuple(replace(rp, steps=tuple(
        replace(st, env={k: v for k, v in st.env.items() if k != "CPLUS_INCLUDE_PATH"}) for st in rp.steps))
        for rp in c.plan.recipes))
    r = row(deepep_cccl(c))
    assert r.status == "fail" and "cuda/std/tuple" in r.found and "deepep:wheel" in r.found
    assert row(deepep_cccl(ctx(s, machine(cccl=None)))).status == "fail"  # CUDA 13 without include/cccl
    assert deepep_cccl(ctx(resolve({"stack": "aiak"}), machine(cu13=False))) == []  # CUDA 12: nothing to do


def test_arch_below_9_with_sm90_features_fails(resolve):
    bad = row(deepep_arch(ctx(resolve({"stack": "aiak", "deepep.torch_cuda_arch_list": "8.0;9.0"}), machine())))
    assert bad.status == "fail" and "compute_80" in bad.found and "9.0" in bad.todo
    assert deepep_arch(ctx(resolve({"stack": "aiak"}), machine())) == []  # the stack's 9.0
    a100 = resolve({"stack": "aiak", "deepep.torch_cuda_arch_list": "8.0", "deepep.disable_sm90_features": True})
    assert deepep_arch(ctx(a100, machine())) == []


def test_only_for_deepep(resolve, tmp_path):
    s, m = resolve({"stack": "aiak"}), machine(pip_layout(tmp_path), cccl="/usr/local/cuda-13.0/include/cccl")
    for fn in (deepep_nvshmem, deepep_cccl, deepep_arch):
        assert fn(ctx(s, m, names=("extras",))) == []
