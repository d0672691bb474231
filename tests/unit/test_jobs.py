"""Job counts: auto = min(CPUs, memory / memory per job); explicit wins with a warning; cgroup limits read."""

from __future__ import annotations

from rebuilt.build import jobs
from rebuilt.core import machine


def test_auto_is_limited_by_cpus_or_memory():
    assert jobs.choose("auto", cpus=64, mem_available_gb=512, per_job_gb=8).jobs == 64
    c = jobs.choose("auto", cpus=128, mem_available_gb=64, per_job_gb=jobs.mem_per_job(1.0, 32))
    assert c.jobs == 2 and "64.0 GiB available / 32.0 GiB per job = 2" in c.explanation  # 32 nvcc threads each
    assert jobs.choose("auto", cpus=8, mem_available_gb=1, per_job_gb=4).jobs == 1


def test_explicit_jobs_win_but_warn():
    c = jobs.choose(64, cpus=128, mem_available_gb=64, per_job_gb=8)
    assert c.jobs == 64 and "exceeds what memory allows (8" in c.warning
    assert jobs.choose(4, cpus=128, mem_available_gb=64, per_job_gb=8).warning is None


def test_cgroup_limits(tmp_path):
    (tmp_path / "cpu.max").write_text("400000 100000\n")
    (tmp_path / "memory.max").write_text(str(16 * 1024**3))
    (tmp_path / "memory.current").write_text(str(4 * 1024**3))
    assert machine.cgroup_cpu_limit(str(tmp_path)) == 4.0
    assert machine.cgroup_memory_gb(str(tmp_path)) == 12.0
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    (v1 / "memory").mkdir()
    (v1 / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert machine.cgroup_cpu_limit(str(v1)) is None and machine.cgroup_memory_gb(str(v1)) is None


def _plan_inputs(resolve, recipe: str, jobs: str, threads: str) -> dict:
    """What the no-op stamp compares for ``recipe`` (rebuilt.build.features.stamps: ``plan``)."""
    import json
    from pathlib import Path

    from rebuilt.build import plan
    from rebuilt.core import recipes
    from tests.conftest import fake_machine

    s = resolve({"jobs": jobs, f"{recipe}.nvcc_threads": threads})
    rp = plan.plan_recipe(s, recipes.get(recipe), fake_machine(), Path(s.workdir()))
    assert rp.jobs.jobs == int(jobs)  # an int from the settings to the step
    return json.loads(json.dumps(rp.inputs, sort_keys=True, default=str))


def test_the_stamp_leaves_out_the_job_count_and_only_the_job_count(resolve):
    # sgl-kernel: MAX_JOBS, CMAKE_BUILD_PARALLEL_LEVEL and `make rebuild nproc=N` come from the job count;
    # -DSGL_KERNEL_COMPILE_THREADS comes from nvcc_threads, even when it equals the job count
    at_8 = _plan_inputs(resolve, "sgl-kernel", "8", "8")
    assert _plan_inputs(resolve, "sgl-kernel", "4", "8") == at_8  # the job count alone changes nothing
    assert _plan_inputs(resolve, "sgl-kernel", "4", "4") != at_8  # nvcc threads 8 -> 4 is a rebuild
    rebuild = next(s for s in at_8["steps"] if s[0] == "rebuild")
    assert rebuild[1] == "make rebuild 'nproc={jobs}'"
    assert ["CMAKE_ARGS", "-DSGL_KERNEL_COMPILE_THREADS=8 -DENABLE_BELOW_SM90=0"] in rebuild[2]
    assert ["MAX_JOBS", "{jobs}"] in rebuild[2]
    # vLLM: NVCC_THREADS="8" next to MAX_JOBS="8" is a value, not the job count
    vllm_8 = _plan_inputs(resolve, "vllm", "8", "8")
    assert _plan_inputs(resolve, "vllm", "4", "8") == vllm_8
    assert _plan_inputs(resolve, "vllm", "4", "4") != vllm_8
