"""What every build-like task shares: its flags, their help, and settings from flags."""

from __future__ import annotations

from typing import Any

BUILD_HELP = {
    "stack": "stack to build from (recipes/stacks/<name>.toml); default from settings: sglang-0.5.4",
    "jobs": "parallel compile jobs, a number or 'auto' (min of CPUs and memory / memory per job)",
    "python": "target interpreter (a path or a name on PATH); default: the active virtual or conda environment, "
              "else python3 on PATH (rebuilt's own tool environment only when named here)",
    "ref": "git ref to build: tag, branch, commit or pr/NNNN (a pull request) - how you bisect",
    "force": "rebuild even when the inputs are unchanged since the last successful build",
    "dry_run": "print every step (cwd, env changes, command) and run nothing",
    "explain": "say which inputs changed since the last successful build",
    "no_checks": "skip the pre-build toolchain checks",
    "verbose": "show each step's output on the terminal as well as in its log",
    "set_": "override any setting: --set KEY=VALUE (repeatable), e.g. --set sgl-kernel.nvcc_threads=8",
    "workdir": "work directory (checkouts, logs, wheels, manifests); default .rebuilt",
    "offline": "build from the unpacked bundle only (inv src.unbundle): git, CMake, pip and uv never reach the network",
}


def resolve(stack=None, jobs=None, python=None, workdir=None, set_=None, **extra: Any):
    """The settings with the task's flags on top (None means: not given) and its ``--set`` pairs above them."""
    from rebuilt.core import settings

    flags: dict[str, Any] = {"stack": stack, "jobs": jobs, "python": python, "workdir": workdir, **extra}
    return settings.resolve(flags, assignments=settings.parse_assignments(set_))
