"""No-op builds: unchanged inputs skip the build; a touched file, a changed setting or ref rebuilds;
a fresh environment at the same path gets the wheel from the wheelhouse instead of a rebuild."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.envs import make_venv
from tests.gitrepo import commit, git
from tests.integration.test_fixture_builds import inv, repo_of

pytestmark = pytest.mark.slow


def test_noop_touch_setting_and_reuse(tmp_path):
    repo = repo_of(tmp_path, "sglang_like", "sglang", "v0.5.4")
    env_dir = tmp_path / "env"
    make_venv(env_dir)
    py = env_dir / "bin" / "python"
    wd = tmp_path / "wd"
    args = ["build.sgl-kernel", "--python", str(py), "--workdir", str(wd), "--no-checks",
            "--set", f"sglang.url={repo}"]

    first = inv(*args, "--jobs", "2")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert "built in" in first.stdout

    again = inv(*args, "--jobs", "1", "--explain")  # another job count builds the same thing
    assert again.returncode == 0 and "sgl-kernel: up to date (inputs unchanged" in again.stdout, again.stdout

    src = wd / "src" / "sglang" / "sgl-kernel" / "csrc" / "common_extension.cc"
    src.write_text(src.read_text() + "// touched\n")
    touched = inv(*args, "--jobs", "2", "--explain")
    assert "changed since the last build: source.changes" in touched.stdout and "built in" in touched.stdout

    setting = inv(*args, "--jobs", "2", "--explain", "--set", "sgl-kernel.nvcc_threads=4")
    assert "changed since the last build: plan" in setting.stdout and "built in" in setting.stdout

    forced = inv(*args, "--jobs", "2", "--force", "--set", "sgl-kernel.nvcc_threads=4")
    assert "built in" in forced.stdout

    # local edits are built as they are with --ref HEAD (no fetch, no checkout)
    head = inv(*args, "--jobs", "2", "--explain", "--set", "sgl-kernel.nvcc_threads=4", "--ref", "HEAD")
    assert head.returncode == 0 and "built in" in head.stdout, head.stdout + head.stderr
    git(wd / "src" / "sglang", "checkout", "--", ".")

    # a new upstream commit and tag: a new ref rebuilds
    (repo / "python" / "sglang" / "__init__.py").write_text('__version__ = "0.5.5"\n')
    commit(repo, "next")
    git(repo, "tag", "v0.5.5")
    newref = inv(*args, "--jobs", "2", "--explain", "--set", "sgl-kernel.nvcc_threads=4", "--ref", "v0.5.5")
    assert "changed since the last build: plan" in newref.stdout and "built in" in newref.stdout

    # a fresh environment at the same path (what nox does): the wheel is reused, nothing is compiled
    shutil.rmtree(env_dir)
    make_venv(env_dir)
    reuse = inv(*args, "--jobs", "2", "--set", "sgl-kernel.nvcc_threads=4", "--ref", "v0.5.5")
    assert reuse.returncode == 0, reuse.stdout + reuse.stderr
    assert "reused" in reuse.stdout and "sgl_kernel-0.3.16.post3" in reuse.stdout and "built in" not in reuse.stdout
    assert Path(env_dir / "lib").exists()
