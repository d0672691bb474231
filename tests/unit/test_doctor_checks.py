"""The doctor's toolchain checks against fake machines: each upstream rule gives the status it should.

No process starts here: the machine is faked, and runner.capture refuses to run anything.
"""

from __future__ import annotations

import json

import pytest

from rebuilt.build import builder
from rebuilt.build.checks import catalog as checks
from rebuilt.build.checks import report, resources, toolchain
from rebuilt.build.checks.model import Context
from rebuilt.core import runner
from tests.conftest import fake_machine

GCC12 = {"gcc-12": "12.3.0", "g++-12": "12.3.0"}


@pytest.fixture(autouse=True)
def no_processes(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError(f"a unit test started a process: {a}")

    monkeypatch.setattr(runner, "capture", refuse)


def ctx_for(settings, names, machine=None, **kw) -> Context:
    machine = machine or fake_machine(**GCC12)
    plan, _ = builder.make_plan(settings, names, machine)
    return Context(settings=settings, machine=machine, recipes=[rp.recipe.name for rp in plan.recipes], plan=plan,
                   probe_network=False, **kw)


def one(rows, name):
    found = [r for r in rows if r.name == name]
    assert len(found) == 1, [r.name for r in rows]
    return found[0]


@pytest.mark.parametrize("cuda, gcc, status", [
    ("12.4", "13.3.0", "ok"), ("12.4", "14.2.0", "fail"), ("12.6", "13.1.0", "ok"), ("12.6", "14.1.0", "fail"),
    ("12.8", "14.2.0", "ok"), ("12.8", "15.1.0", "fail"), ("12.9", "14.2.0", "ok"), ("12.9", "15.0.1", "fail"),
    ("12.2", "13.1.0", "fail"), ("13.0", "15.1.0", "ok"), ("13.0", "16.0.0", "fail"),
])
def test_gcc_against_each_cuda(resolve, cuda, gcc, status):
    m = fake_machine(gcc=gcc, **{"g++": gcc})
    m.nvcc_version = cuda
    row = one(toolchain.host_compiler(ctx_for(resolve({"host_compiler": "", "cuda": cuda}), ["sgl-kernel"], m)),
              "host compiler")
    assert row.status == status, row
    if status == "fail":
        assert "unsupported GNU version" in row.todo and "apt-get install gcc-" in row.todo


def test_cuda_13_limit_is_marked_an_assumption_and_newer_cuda_uses_the_newest_entry(resolve):
    m = fake_machine(gcc="15.1.0", **{"g++": "15.1.0"})
    m.nvcc_version = "13.0"
    row = toolchain.host_compiler(ctx_for(resolve({"host_compiler": "", "cuda": "13.0"}), ["torch"], m))[0]
    assert row.status == "ok" and "an assumption" in row.found
    m.nvcc_version = "13.2"
    row = toolchain.host_compiler(ctx_for(resolve({"host_compiler": "", "cuda": "13.2"}), ["torch"], m))[0]
    assert "gcc <= 15 (an assumption)" in row.found


def test_clang_limit_is_strictly_below(resolve):
    m = fake_machine(**{"clang-18": "18.1.8", "clang++-18": "18.1.8", "clang-17": "17.0.6", "clang++-17": "17.0.6"})
    m.nvcc_version = "12.4"
    bad = toolchain.host_compiler(ctx_for(resolve({"host_compiler": "clang-18", "cuda": "12.4"}), ["torch"], m))[0]
    assert bad.status == "fail" and "clang < 18" in bad.found and "clang-17" in bad.todo
    ok = toolchain.host_compiler(ctx_for(resolve({"host_compiler": "clang-17", "cuda": "12.4"}), ["torch"], m))[0]
    assert ok.status == "ok"


def test_the_stacks_gcc_12_is_checked_through_the_shim(resolve):
    row = toolchain.host_compiler(ctx_for(resolve(), ["sgl-kernel"]))[0]  # the stack sets host_compiler = gcc-12
    assert row.status == "ok" and "gcc-12 12.3.0, g++-12 12.3.0 (through the shim)" in row.found


def test_a_missing_compiler_names_its_packages(resolve):
    m = fake_machine(**{"gcc-12": "12.3.0", "g++-12": None})  # gcc-12 without g++-12: a common half install
    row = toolchain.host_compiler(ctx_for(resolve(), ["sgl-kernel"], m))[0]
    assert row.status == "fail" and row.found == "g++-12 not found (needed by sgl-kernel:rebuild)"
    assert "apt-get install gcc-12 g++-12" in row.todo and "gxx_linux-64=12" in row.todo
    # nothing compiles CUDA (sglang is pure Python): only a warning
    assert toolchain.host_compiler(ctx_for(resolve(), ["sglang"], m))[0].status == "warn"


@pytest.mark.parametrize("version, names, status", [
    ("3.11.9", ["sglang"], "ok"), ("3.13.1", ["sglang"], "fail"), ("3.13.1", ["torch"], "warn"),
    ("3.12.3", ["sglang"], "warn"),
])
def test_python_version(resolve, version, names, status):
    m = fake_machine(**GCC12)
    m.python.version = version
    row = toolchain.python_version(ctx_for(resolve(), names, m))[0]
    assert row.status == status
    if status == "fail":
        assert "Rust compiler" in row.todo and "3.11" in row.todo


def test_cuda_against_the_stack_the_gpu_and_the_driver(resolve):
    m = fake_machine(**GCC12)
    rows = toolchain.cuda(ctx_for(resolve(), ["sgl-kernel"], m))
    assert one(rows, "cuda").status == "ok" and one(rows, "driver").status == "ok"
    m.nvcc_version = "12.3"
    m.gpus[0]["driver"] = "550.54.14"
    rows = toolchain.cuda(ctx_for(resolve({"cuda": "12.3"}), ["sgl-kernel"], m))
    gpu = one(rows, "cuda vs gpu")
    assert gpu.status == "fail" and "sm_90" in gpu.found and "CUDA >= 12.4" in gpu.found
    m.nvcc_version = "13.0"
    rows = toolchain.cuda(ctx_for(resolve(), ["sgl-kernel"], m))
    assert one(rows, "cuda").status == "fail" and "the stack wants 12.9" in one(rows, "cuda").found
    assert one(rows, "driver").status == "fail"  # 550 cannot run CUDA 13
    m.nvcc_version = None
    assert one(toolchain.cuda(ctx_for(resolve(), ["sglang"], m)), "cuda").status == "warn"


def test_arch_list_that_leaves_out_the_gpu_warns(resolve):
    a100 = {"name": "NVIDIA A100-SXM4-80GB", "compute_cap": "8.0", "memory_mib": "81920", "driver": "580.65.06"}
    rows = toolchain.cuda(ctx_for(resolve(), ["sgl-kernel"], fake_machine(gpus=(a100,), **GCC12)))
    assert one(rows, "arch list vs gpu").status == "warn"


def test_nvcc_against_torch_cuda(resolve):
    m = fake_machine(**GCC12)
    m.python.torch["cuda"] = "11.8"
    row = one(toolchain.torch_identity(ctx_for(resolve(), ["sgl-kernel"], m)), "nvcc vs torch")
    assert row.status == "fail" and "11.8" in row.found
    m.python.torch["cuda"] = "12.8"
    assert one(toolchain.torch_identity(ctx_for(resolve(), ["sgl-kernel"], m)), "nvcc vs torch").status == "ok"


def test_a_source_torch_against_sglangs_pin_is_explained(resolve):
    rows = toolchain.torch_identity(ctx_for(resolve(), ["sglang"], fake_machine(torch="2.8.0a0+git5228986")))
    pin = one(rows, "sglang pin")
    assert pin.status == "warn" and "torch==2.8.0" in pin.found and "pre-release" in pin.found
    assert "without deps" in pin.todo
    rows = toolchain.torch_identity(ctx_for(resolve(), ["sglang"], fake_machine(torch="2.8.0")))
    assert not [r for r in rows if r.name == "sglang pin"]


def test_torch_missing(resolve):
    m = fake_machine(torch=None)
    m.python.torch = {"version": None}
    assert toolchain.torch_identity(ctx_for(resolve(), ["sgl-kernel"], m))[0].status == "fail"
    built = toolchain.torch_identity(ctx_for(resolve(), ["torch", "sgl-kernel"], m))[0]
    assert built.status == "ok" and "torch:develop installs it before the steps that need it" in built.found


def test_kept_torch_must_be_the_expected_one(resolve):
    s = resolve({"stack": "aiak"})
    m = fake_machine(torch="2.8.0a0+5228986c39.nv25.6")  # pip's normalised form of .nv25.06
    assert not [r for r in toolchain.torch_identity(ctx_for(s, ["deepep"], m)) if r.name == "torch expected"]
    m = fake_machine(torch="2.8.0")
    assert one(toolchain.torch_identity(ctx_for(s, ["deepep"], m)), "torch expected").status == "fail"


def test_torchvision_and_torchaudio_against_torch(resolve):
    m = fake_machine(torch="2.8.0")
    m.python.packages.update({"torchvision": "0.22.1", "torchaudio": "2.8.0"})
    rows = toolchain.companions(ctx_for(resolve(), ["sglang"], m))
    tv = one(rows, "torchvision")
    assert tv.status == "fail" and "0.23" in tv.found and "--no-deps" in tv.todo
    assert one(rows, "torchaudio").status == "ok"
    m.python.packages["torchvision"] = "0.23.0"
    assert one(toolchain.companions(ctx_for(resolve(), ["sglang"], m)), "torchvision").status == "ok"


def test_nvshmem(resolve, tmp_path):
    s = resolve()
    row = toolchain.nvshmem(ctx_for(s, ["flashinfer"]))[0]
    assert row.status == "warn" and "pip install nvidia-nvshmem-cu12" in row.todo
    assert toolchain.nvshmem(ctx_for(s, ["sgl-kernel"])) == []  # only flashinfer and DeepEP use it
    m = fake_machine(nvshmem="/env/nvidia/nvshmem", **GCC12)
    m.python.packages["nvidia-nvshmem-cu12"] = "3.2.5"
    assert toolchain.nvshmem(ctx_for(resolve({"stack": "aiak"}), ["deepep"], m))[0].status == "warn"
    m.python.packages["nvidia-nvshmem-cu12"] = "3.3.20"
    assert toolchain.nvshmem(ctx_for(resolve({"stack": "aiak"}), ["deepep"], m))[0].status == "ok"
    missing = toolchain.nvshmem(ctx_for(resolve({"nvshmem_dir": str(tmp_path / "nope")}), ["flashinfer"]))[0]
    assert missing.status == "fail"


def test_cmake_too_old_for_sgl_kernel_and_missing_tools(resolve):
    rows = toolchain.tools(ctx_for(resolve(), ["sgl-kernel"], fake_machine(cmake="3.25.1", **GCC12)))
    cmake = one(rows, "cmake")
    assert cmake.status == "fail" and "sgl-kernel:rebuild needs cmake>=3.26" in cmake.found
    rows = toolchain.tools(ctx_for(resolve(), ["torch"], fake_machine(cmake="3.25.1", **GCC12)))
    assert one(rows, "cmake").status == "ok"  # torch has no such minimum here
    rows = toolchain.tools(ctx_for(resolve(), ["sgl-kernel"], fake_machine(ninja=None, uv=None, **GCC12)))
    assert one(rows, "ninja").status == "fail" and "needed by sgl-kernel:rebuild" in one(rows, "ninja").found
    uv = one(rows, "uv")  # the plan's sgl-kernel:install-uv step installs it before sgl-kernel:rebuild needs it
    assert uv.status == "ok" and uv.found == "not installed yet: sgl-kernel:install-uv installs it"


def test_ccache_and_ccache_dir(resolve, monkeypatch):
    monkeypatch.delenv("CCACHE_DIR", raising=False)
    row = toolchain.ccache_check(ctx_for(resolve(), ["sgl-kernel"]))[0]
    assert row.status == "warn" and "CCACHE_DIR" in row.todo
    row = toolchain.ccache_check(ctx_for(resolve({"ccache.enabled": True}), ["sgl-kernel"]))[0]
    assert row.status == "ok" and "CCACHE_DIR=" in row.found
    row = toolchain.ccache_check(ctx_for(resolve({"ccache.enabled": True}), ["sgl-kernel"],
                                         fake_machine(ccache=None, **GCC12)))[0]
    assert row.status == "fail"


def test_libnuma(resolve, monkeypatch, tmp_path):
    header = tmp_path / "numa.h"
    header.write_text("")
    monkeypatch.setattr(toolchain.tables, "NUMA_HEADERS", (str(header),))
    assert toolchain.libnuma(ctx_for(resolve(), ["sgl-kernel"]))[0].status == "ok"
    assert toolchain.libnuma(ctx_for(resolve(), ["torch"])) == []


def test_memory_rows_come_from_the_plans_job_choice(resolve):
    rows = resources.memory(ctx_for(resolve({"jobs": 64}), ["sgl-kernel"], fake_machine(cpus=128, mem=64.0, **GCC12)))
    row = one(rows, "jobs sgl-kernel")
    assert row.status == "warn" and "exceeds what memory allows" in row.found
    rows = resources.memory(ctx_for(resolve(), ["sgl-kernel"], fake_machine(cpus=128, mem=64.0, **GCC12)))
    assert one(rows, "jobs sgl-kernel").status == "ok"


def test_gpus(resolve):
    assert resources.gpus(ctx_for(resolve(), ["torch"]))[0].status == "ok"
    row = resources.gpus(ctx_for(resolve(), ["torch"], fake_machine(gpus=(), **GCC12)))[0]
    assert row.status == "warn" and "no GPU" in row.found


def test_report_keeps_going_when_a_check_breaks_and_redacts(resolve):
    def broken(ctx):
        raise KeyError("boom")

    def leaky(ctx):
        return [checks.Check("leaky", "ok", "via http://u:s3cret@proxy:3128")]

    rows = report.run(ctx_for(resolve(), ["torch"]), (broken, leaky, toolchain.python_version))
    assert [r.status for r in rows] == ["fail", "ok", "ok"] and "KeyError" in rows[0].found
    assert "s3cret" not in report.table(rows) and "s3cret" not in report.as_json(rows)
    assert json.loads(report.as_json(rows))[1] == {"name": "leaky", "status": "ok", "found": "via http://***@proxy:3128",
                                                   "todo": ""}
    assert report.table(rows).splitlines()[-1] == "1 failed, 0 warnings, 2 ok"


def test_preflight_stops_on_a_failure_and_prints_warnings(resolve, monkeypatch, tmp_path):
    from rebuilt.build.checks import preflight
    from rebuilt.errors import CheckFailed

    (tmp_path / "numa.h").write_text("")
    monkeypatch.setattr(toolchain.tables, "NUMA_HEADERS", (str(tmp_path / "numa.h"),))
    monkeypatch.setattr(resources.machine_mod, "disk_free_gb", lambda path: 500.0)

    said = []

    class Console:
        def say(self, text):
            said.append(text)

    s = resolve({"host_compiler": ""})
    m = fake_machine(gcc="14.2.0", **{"g++": "14.2.0"})
    m.nvcc_version = "12.4"
    plan, _ = builder.make_plan(s, ["sgl-kernel"], m)
    with pytest.raises(CheckFailed) as err:
        preflight.before_build(plan, m, resolve({"host_compiler": "", "cuda": "12.4"}), Console())
    assert "host compiler" in str(err.value) and "gcc <= 13" in str(err.value)
    m = fake_machine(**GCC12)
    plan, _ = builder.make_plan(resolve(), ["sgl-kernel"], m)
    preflight.before_build(plan, m, resolve(), Console())
    assert said[-1].startswith("checks: 0 failed")


# ---------------------------------------------------------------- checks judge the plan, step by step


@pytest.fixture
def roomy(monkeypatch, tmp_path):
    """A machine with libnuma's header and plenty of disk, so the rows under test are the only failures."""
    (tmp_path / "numa.h").write_text("")
    monkeypatch.setattr(toolchain.tables, "NUMA_HEADERS", (str(tmp_path / "numa.h"),))
    monkeypatch.setattr(resources.machine_mod, "disk_free_gb", lambda path: 5000.0)


def preflight_rows(settings, names, machine):
    from rebuilt.build.checks import preflight

    plan, _ = builder.make_plan(settings, names, machine)
    return preflight.run(plan, machine, settings)


def fails(rows):
    return {r.name: r.found for r in rows if r.status == "fail"}


def test_a_fresh_environment_builds_the_stack_torch_first(resolve, roomy):
    """A new venv has no torch, torchvision or uv: the plan's torch:develop and sgl-kernel:install-uv
    provide them before any step needs them, so nothing fails."""
    m = fake_machine(torch=None, **GCC12)
    m.python.torch, m.python.packages = {"version": None}, {}
    rows = preflight_rows(resolve(), ["stack"], m)
    assert fails(rows) == {}
    assert one(rows, "torch").found == "not installed yet: torch:develop installs it before the steps that need it"


def test_torch_needed_before_the_step_that_provides_it_fails(resolve, roomy):
    m = fake_machine(torch=None, **GCC12)
    m.python.torch, m.python.packages = {"version": None}, {}
    row = one(preflight_rows(resolve({"torch.mode": "keep"}), ["stack"], m), "torch")  # keep: nothing builds it
    assert row.status == "fail" and "needed by torch:keep, torchvision" not in row.found
    assert row.found.startswith("not installed (needed by torch:keep, flashinfer:verify, sgl-kernel:rebuild")


def test_flashinfer_editable_and_index_modes_run_no_nvcc_so_no_cuda_check_stops_them(resolve, roomy):
    """nvcc 13.0 where the stack wants 12.9, and a gcc 16 newer than it accepts: nothing in these modes
    compiles, so neither stops them; AOT compiles, so there it does."""
    m = fake_machine(gcc="16.1.0", **{"g++": "16.1.0"})
    m.nvcc_version = "13.0"
    for mode in ("editable", "index"):
        rows = preflight_rows(resolve({"flashinfer.mode": mode, "host_compiler": ""}), ["flashinfer"], m)
        assert fails(rows) == {}, mode
        assert not [r for r in rows if r.name in ("cuda", "host compiler")], mode
    rows = preflight_rows(resolve({"flashinfer.aot": True, "host_compiler": ""}), ["flashinfer"], m)
    assert "needed by flashinfer:aot" in fails(rows)["cuda"] and "host compiler" in fails(rows)


def test_vllm_build_requirements_provide_cmake_and_ninja(resolve, roomy):
    """vLLM's requirements-build.txt installs cmake>=3.26 and ninja before the wheel step needs them."""
    s = resolve({"stack": "aiak"})
    m = fake_machine(torch="2.8.0a0+5228986c39.nv25.6", cmake=None, ninja=None, **GCC12)
    m.python.version = "3.12.3"
    rows = toolchain.tools(ctx_for(s, ["vllm"], m))
    assert one(rows, "ninja").found == "not installed yet: vllm:build-requirements installs it"
    assert one(rows, "cmake").status == "ok"
    assert "ninja" not in fails(preflight_rows(s, ["vllm"], m))
    # sgl-kernel has no step that installs cmake: an old one on PATH fails, naming the step and the need
    row = one(toolchain.tools(ctx_for(s, ["sgl-kernel"], fake_machine(cmake="3.25.1", **GCC12))), "cmake")
    assert row.status == "fail" and "sgl-kernel:rebuild needs cmake>=3.26" in row.found


def test_a_dry_run_ends_with_the_verdict_and_does_not_fail(resolve, roomy):
    from rebuilt.build.checks import preflight

    said = []

    class Console:
        def say(self, text):
            said.append(text)

    m = fake_machine(**GCC12)
    m.nvcc_version = "13.0"
    s = resolve()
    plan, _ = builder.make_plan(s, ["sgl-kernel"], m)
    preflight.before_build(plan, m, s, Console(), dry_run=True)  # no CheckFailed
    text = "\n".join(said)
    assert "would stop the build (exit 3):\n  cuda: nvcc 13.0" in text
    assert text.splitlines()[-1].startswith("verdict: a real build would stop at the checks")


def test_needs_in_recipes_are_validated(tmp_path):
    from rebuilt.core import recipes
    from rebuilt.errors import ConfigError

    base = '[recipe]\nname = "x"\nsummary = "s"\n[[steps]]\nname = "a"\nrun = ["true"]\n'
    for extra, message in (('needs = ["nvc"]', "unknown need 'nvc'.*nvcc"),
                           ('needs = ["cmake[x]>=3"]', "a name with an optional version"),
                           ('needs = [{ need = "nvcc", when = "fast" }]', "condition names unknown 'fast'"),
                           ('provides = ["cmake>=3.26"]', "provides: the name only")):
        path = tmp_path / "x.toml"
        path.write_text(base + extra + "\n")
        with pytest.raises(ConfigError, match=message):
            recipes.parse_recipe(path)
    path.write_text(base + 'needs = ["cmake>=3.26", { need = "nvcc", when = "gpu" }]\nprovides = ["torch"]\n')
    step = recipes.parse_recipe(path).steps[0]
    assert step.needs == ("cmake>=3.26", {"need": "nvcc", "when": "gpu"}) and step.provides == ("torch",)


def test_torchs_requirements_provide_cmake_for_the_steps_after_them(resolve, roomy):
    """PyTorch's requirements.txt installs cmake into the target environment: an old cmake on PATH does not
    stop a stack whose torch is built from source, but does stop sgl-kernel alone."""
    m = fake_machine(torch=None, cmake="3.25.1", **GCC12)
    m.python.torch, m.python.packages = {"version": None}, {}
    rows = preflight_rows(resolve(), ["stack"], m)
    assert fails(rows) == {} and "torch:requirements installs its own" in one(rows, "cmake").found
    assert "sgl-kernel:rebuild needs cmake>=3.26" in fails(preflight_rows(resolve(), ["sgl-kernel"], m))["cmake"]
