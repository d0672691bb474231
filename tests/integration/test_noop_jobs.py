"""The job count reaches the build but not the no-op stamp: -j 8 then -j 4 is up to date, while nvcc threads
changed from 8 to 4 (a value that equals the old job count) rebuilds."""

from __future__ import annotations

import pytest

from tests.envs import make_venv
from tests.integration.test_fixture_builds import inv, repo_of

pytestmark = pytest.mark.slow


def test_the_job_count_alone_does_not_rebuild_and_nvcc_threads_do(tmp_path):
    repo = repo_of(tmp_path, "sglang_like", "sglang", "v0.5.4")
    env_dir = tmp_path / "env"
    make_venv(env_dir)
    args = ["build.sgl-kernel", "--python", str(env_dir / "bin" / "python"), "--workdir", str(tmp_path / "wd"),
            "--no-checks", "--set", f"sglang.url={repo}"]

    first = inv(*args, "--jobs", "8")  # nvcc_threads is 8 by default: the same number as the job count
    assert first.returncode == 0 and "built in" in first.stdout, first.stdout[-2000:] + first.stderr[-2000:]

    fewer = inv(*args, "--jobs", "4", "--explain")
    assert fewer.returncode == 0, fewer.stdout + fewer.stderr
    assert "sgl-kernel: up to date (inputs unchanged" in fewer.stdout and "built in" not in fewer.stdout

    threads = inv(*args, "--jobs", "4", "--explain", "--set", "sgl-kernel.nvcc_threads=4")
    assert threads.returncode == 0, threads.stdout + threads.stderr
    assert "changed since the last build: plan" in threads.stdout and "built in" in threads.stdout
