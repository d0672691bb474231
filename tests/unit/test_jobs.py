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
