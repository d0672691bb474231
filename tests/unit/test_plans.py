"""The plan of every recipe in both stacks, checked against the upstream facts (the upstream files cited in each recipe).

Plans are pure: these tests use a fake machine and start no process.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rebuilt.build import builder
from rebuilt.build import plan as plan_mod
from rebuilt.errors import ConfigError
from tests.conftest import fake_machine

PY = "/opt/env/bin/python"


def steps_of(settings, names, machine=None):
    plan, _ = builder.make_plan(settings, names, machine or fake_machine())
    return plan, {s.name: s for s in plan.steps}


def test_sgl_kernel_plan(resolve):
    s = resolve()
    plan, st = steps_of(s, ["sgl-kernel"])
    assert [x.name for x in plan.steps] == ["fetch", "install-uv", "rebuild", "install-wheel", "verify", "collect"]
    wd = Path(s.workdir())
    assert st["fetch"].args == {"url": "https://github.com/sgl-project/sglang.git", "ref": "v0.5.4",
                                "dest": str(wd / "src" / "sglang"), "submodules": False}
    assert st["install-uv"].argv == (PY, "-m", "pip", "install", "uv")
    rebuild = st["rebuild"]
    assert rebuild.cwd == str(wd / "src" / "sglang" / "sgl-kernel")
    jobs = plan.recipes[0].jobs.jobs
    assert rebuild.argv == ("make", "rebuild", f"nproc={jobs}")  # $(nproc) made real
    assert rebuild.env["MAX_JOBS"] == str(jobs) and rebuild.env["CMAKE_BUILD_PARALLEL_LEVEL"] == str(jobs)
    assert rebuild.env["CMAKE_ARGS"] == "-DSGL_KERNEL_COMPILE_THREADS=8 -DENABLE_BELOW_SM90=0"
    assert rebuild.env["PATH"] == f"{wd}/state/shim/gcc-12:/opt/env/bin:${{PATH}}"  # the stack's gcc-12, then pip3
    assert rebuild.env["CUDAHOSTCXX"].endswith("g++-12")
    assert rebuild.env["UV_PYTHON"] == PY and rebuild.network and rebuild.installs
    assert st["install-wheel"].shell == f"{PY} -m pip install --no-deps --force-reinstall dist/*.whl"
    assert st["collect"].args["dest"] == str(wd / "wheels")
    # memory: 512 GiB / (1 GiB x 8 nvcc threads) = 64; 64 CPUs
    assert jobs == 64 and "8 nvcc threads" in plan.recipes[0].jobs.explanation


def test_sgl_kernel_jobs_limited_by_memory_and_explicit_jobs_warn(resolve):
    plan, _ = builder.make_plan(resolve(), ["sgl-kernel"], fake_machine(cpus=128, mem=64.0))
    assert plan.recipes[0].jobs.jobs == 8  # 64 GiB / 8 GiB per job
    plan, _ = builder.make_plan(resolve({"jobs": 64}), ["sgl-kernel"], fake_machine(cpus=128, mem=64.0))
    assert plan.recipes[0].jobs.jobs == 64
    assert any("exceeds what memory allows" in w for w in plan.warnings)


def test_sgl_kernel_options_reach_cmake_args(resolve):
    s = resolve({"sgl-kernel.nvcc_threads": 4, "sgl-kernel.below_sm90": True,
                 "sgl-kernel.cmake_args": "-DFOO=1"})
    _, st = steps_of(s, ["sgl-kernel"])
    assert st["rebuild"].env["CMAKE_ARGS"] == "-DSGL_KERNEL_COMPILE_THREADS=4 -DENABLE_BELOW_SM90=1 -DFOO=1"


def test_torch_develop_plan(resolve, monkeypatch):
    monkeypatch.setenv("CONDA_PREFIX", "/opt/conda/envs/x")
    _, st = steps_of(resolve(), ["torch"])
    assert list(st) == ["fetch", "requirements", "develop", "verify"]
    assert st["fetch"].args["ref"] == "v2.8.0" and st["fetch"].args["submodules"] is True
    dev = st["develop"]
    assert dev.argv == (PY, "setup.py", "develop")
    assert dev.env["CMAKE_PREFIX_PATH"] == "/opt/conda/envs/x:${CMAKE_PREFIX_PATH}"
    assert dev.env["CUDACXX"] == dev.env["CMAKE_CUDA_COMPILER"] == "/usr/local/cuda-12.9/bin/nvcc"
    assert dev.env["TORCH_CUDA_ARCH_LIST"] == "9.0" and dev.env["MAX_JOBS"] == "64"
    assert dev.env["CMAKE_INSTALL_PREFIX"] is None  # setting it aborts torch's build
    assert "PYTORCH_BUILD_VERSION" not in dev.env
    assert st["requirements"].replaces == ()


def test_torch_wheel_mode_with_build_version(resolve):
    s = resolve({"torch.mode": "wheel", "torch.build_version": "2.8.0", "torch.build_number": "1"})
    _, st = steps_of(s, ["torch"])
    assert list(st) == ["fetch", "requirements", "wheel", "install-wheel", "verify", "collect"]
    assert st["wheel"].argv == (PY, "setup.py", "bdist_wheel")
    assert st["wheel"].env["PYTORCH_BUILD_VERSION"] == "2.8.0" and st["wheel"].env["PYTORCH_BUILD_NUMBER"] == "1"
    assert st["install-wheel"].replaces == ("torch",)


def test_flashinfer_editable_plan(resolve):
    _, st = steps_of(resolve(), ["flashinfer"])
    assert list(st) == ["fetch", "build-requirements", "install", "verify"]
    assert st["build-requirements"].argv == (PY, "-m", "pip", "install", "setuptools>=77", "packaging>=24",
                                             "apache-tvm-ffi==0.1.0b15")
    # upstream's editable install, --no-deps, then requirements.txt without the protected distributions
    assert st["install"].action == "pip-protected" and st["install"].installs
    assert st["install"].args["target"] == ["--no-build-isolation", "-e", ".", "-v"]
    assert st["fetch"].args["ref"] == "v0.4.1"


def test_flashinfer_aot_without_and_with_nvshmem(resolve):
    s = resolve({"flashinfer.aot": True})
    plan, st = steps_of(s, ["flashinfer"])
    assert st["aot"].argv == (PY, "-m", "flashinfer.aot", "--add-comm", "false")
    assert st["aot"].env["FLASHINFER_CUDA_ARCH_LIST"] == "9.0a"
    assert any("nvidia.nvshmem is not installed" in w for w in plan.warnings)
    plan, st = steps_of(s, ["flashinfer"], fake_machine(nvshmem="/opt/env/lib/nvidia/nvshmem"))
    assert st["aot"].argv == (PY, "-m", "flashinfer.aot")
    assert not any("nvshmem" in w for w in plan.warnings)


def test_flashinfer_wheel_mode(resolve):
    _, st = steps_of(resolve({"flashinfer.mode": "wheel"}), ["flashinfer"])
    assert st["build-requirements"].argv[-1] == "build"
    assert st["wheel"].argv == (PY, "-m", "build", "--no-isolation", "--wheel", "-o", "dist")
    assert "collect" in st


def test_sglang_is_installed_through_the_guard(resolve):
    _, st = steps_of(resolve(), ["sglang"])
    assert list(st) == ["fetch", "upgrade-pip", "install", "verify"]
    assert st["install"].action == "pip-protected" and st["install"].args["target"] == ["-e", "python"]
    assert set(st["install"].args["protected"]) == {"torch", "torchvision", "torchaudio", "triton"}


def test_torchvision_no_deps(resolve):
    _, st = steps_of(resolve(), ["torchvision"])
    assert st["install"].argv == (PY, "-m", "pip", "install", "torchvision==0.23.0", "--no-deps")


def test_deepep_nvshmem_from_settings_pip_or_warning(resolve):
    s = resolve({"stack": "aiak", "nvshmem_dir": "/usr/local/nvshmem"})
    plan, st = steps_of(s, ["deepep"])
    assert st["fetch"].args["ref"] == "v1.2.1"
    build = st["wheel"]  # one step, as DeepEP's install.sh: bdist_wheel runs build_ext itself
    assert "build" not in st and build.argv == (PY, "setup.py", "bdist_wheel")
    assert build.env["NVSHMEM_DIR"] == "/usr/local/nvshmem"
    assert build.env["TORCH_CUDA_ARCH_LIST"] == "9.0" and build.env["CUDA_ARCH"] == "sm_90"
    # the pip package: NVSHMEM_DIR unset, so setup.py finds it and links its soname (libnvshmem_host.so.3)
    _, st = steps_of(resolve({"stack": "aiak"}), ["deepep"], fake_machine(nvshmem="/opt/env/nvidia/nvshmem"))
    assert st["wheel"].env["NVSHMEM_DIR"] is None
    plan, st = steps_of(resolve({"stack": "aiak"}), ["deepep"])
    assert st["wheel"].env["NVSHMEM_DIR"] is None
    assert any("internode and low-latency kernels will be missing" in w for w in plan.warnings)


def test_speedgate_needs_its_url(resolve):
    with pytest.raises(ConfigError, match="speedgate.url is empty") as err:
        builder.make_plan(resolve({"stack": "aiak"}), ["speedgate"], fake_machine())
    assert "INVOKE_REBUILT_SPEEDGATE_URL" in err.value.hint
    s = resolve({"stack": "aiak", "speedgate.url": "https://git.example/speedgate.git"})
    _, st = steps_of(s, ["speedgate"])
    assert st["fetch"].args["submodules"] is True
    assert st["benchmark"].argv == (PY, "script/gemm/benchmark.py") and st["benchmark"].gpu
    plan, st = steps_of(s, ["speedgate"], fake_machine(gpus=()))
    assert "benchmark" not in st and any("needs a GPU" in w for w in plan.warnings)


def test_vllm_plan(resolve):
    _, st = steps_of(resolve({"stack": "aiak"}), ["vllm"])
    assert list(st) == ["fetch", "use-existing-torch", "build-requirements", "wheel", "install", "verify", "collect"]
    assert st["fetch"].args["ref"] == "v0.6.4.post1"
    assert st["use-existing-torch"].args["files"] == ["requirements*.txt", "pyproject.toml"]
    assert st["build-requirements"].argv == (PY, "-m", "pip", "install", "-r", "requirements-build.txt")
    assert st["wheel"].env["MAX_JOBS"] == "64" and st["wheel"].env["NVCC_THREADS"] == "1"
    _, st = steps_of(resolve({"stack": "aiak", "vllm.use_existing_torch": "upstream"}), ["vllm"])
    assert st["use-existing-torch-upstream"].argv == (PY, "use_existing_torch.py")


def test_aiak_stack_keeps_torch_and_installs_extras(resolve):
    s = resolve({"stack": "aiak", "speedgate.url": "file:///srv/speedgate.git"})
    plan, _ = builder.make_plan(s, ["stack"], fake_machine())
    names = [s.title for s in plan.steps]
    assert names[0] == "torch:keep" and "torch:fetch" not in names
    assert "flashinfer:install-index" in names and "flashinfer:fetch" not in names
    idx = {n: i for i, n in enumerate(names)}
    assert idx["deepep:install"] > idx["torch:keep"]
    extras = [x for x in plan.steps if x.title == "extras:install"][0]
    assert extras.argv == (PY, "-m", "pip", "install", "setproctitle")
    flash = [x for x in plan.steps if x.title == "flashinfer:install-index"][0]
    # built here (0.3.1's backend wants torch in an isolated build env), --no-deps, then its requirements
    assert flash.action == "pip-protected"
    assert flash.args["target"] == ["--no-build-isolation", "flashinfer-python==0.3.1"]
    assert idx["flashinfer:build-requirements-index"] < idx["flashinfer:install-index"]


def test_default_stack_in_dependency_order(resolve):
    plan, _ = builder.make_plan(resolve(), ["stack"], fake_machine())
    order = [rp.recipe.name for rp in plan.recipes]
    assert order.index("torch") == 0 and order[-1] == "sglang"


def test_installing_steps_get_constraints_others_do_not(resolve):
    plan, _ = builder.make_plan(resolve(), ["sgl-kernel"], fake_machine())
    for step in plan.steps:
        assert ("PIP_CONSTRAINT" in step.env) == step.installs


def test_ref_flag_and_pr_refs_reach_the_fetch(resolve):
    _, st = steps_of(resolve({"sglang.ref": "pr/12345"}), ["sgl-kernel"])
    assert st["fetch"].args["ref"] == "pr/12345"


def test_dry_run_rendering_redacts_and_shows_every_step(resolve):
    s = resolve({"sglang.url": "https://user:hunter2@git.example/sglang.git"})
    plan, m = builder.make_plan(s, ["sgl-kernel"], fake_machine())
    text = plan_mod.render(plan, m)
    assert "hunter2" not in text and "https://***@git.example/sglang.git" in text
    for i, step in enumerate(plan.steps, 1):
        assert f"[{i}/{len(plan.steps)}] {step.title}" in text
    assert "$ make rebuild nproc=64" in text and "env  CMAKE_BUILD_PARALLEL_LEVEL=64" in text


PLACEHOLDER = re.compile(r"(?<!\$)\{[A-Za-z_][\w.]*\}")  # a recipe's {option} left unrendered (not ${PATH})


def test_every_recipe_plans_in_both_stacks(resolve):
    """Each recipe alone: its own steps only, each with a command and every {placeholder} filled in, the
    checkout first, into the recipe's source folder, from a https URL at a ref."""
    for stack in ("sglang-0.5.4", "aiak"):
        s = resolve({"stack": stack, "speedgate.url": "https://git.example/sg.git"})
        for name in ("torch", "torchvision", "flashinfer", "sgl-kernel", "sglang", "deepep", "speedgate", "vllm",
                     "extras"):
            plan, _ = builder.make_plan(s, [name], fake_machine())
            assert plan.steps or (name == "extras" and stack == "sglang-0.5.4"), (stack, name)
            [rp] = plan.recipes
            assert rp.recipe.name == name and all(step.recipe == name for step in rp.steps)
            own = {spec.name for spec in rp.recipe.steps} | {"fetch", "patches", "collect"}
            assert {step.name for step in rp.steps} <= own, (stack, name)
            for step in rp.steps:
                assert step.argv or step.shell or step.action, step.title
                texts = [step.command_text(), step.cwd, *(v for v in step.env.values() if v)]
                assert not [t for t in texts if PLACEHOLDER.search(t)], (step.title, texts)
            fetches = [step for step in rp.steps if step.name == "fetch"]
            assert bool(fetches) == (rp.recipe.source is not None and rp.source_dir is not None), (stack, name)
            if fetches:
                assert rp.steps[0] is fetches[0] and fetches[0].args["dest"] == rp.source_dir
                assert fetches[0].args["url"].startswith("https://") and fetches[0].args["ref"], fetches[0].args


def test_ccache_enabled_reaches_every_compiling_step(resolve):
    s = resolve({"ccache.enabled": True, "ccache.remote": "redis://cache.example:6379"})
    plan, st = steps_of(s, ["sgl-kernel"])
    wd = Path(s.workdir())
    rebuild = st["rebuild"]
    assert rebuild.env["CCACHE_DIR"] == str(wd / "ccache")  # without it sgl-kernel's CMake ignores ccache
    assert rebuild.env["CCACHE_BASEDIR"] == str(wd / "src" / "sglang")
    assert rebuild.env["CCACHE_REMOTE_STORAGE"] == "redis://cache.example:6379"
    assert rebuild.env["CMAKE_CUDA_COMPILER_LAUNCHER"] == "ccache"
    assert rebuild.env["PATH"].startswith(f"{wd}/state/ccache-bin:{wd}/state/shim/gcc-12:")  # ccache, then gcc-12
    assert "CCACHE_DIR" not in st["fetch"].env
    _, st = steps_of(resolve(), ["sgl-kernel"])
    assert "CCACHE_DIR" not in st["rebuild"].env
