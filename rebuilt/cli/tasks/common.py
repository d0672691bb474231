"""What every build-like task shares: its flags, their help, and settings from flags."""

from __future__ import annotations

from typing import Any

BUILD_HELP = {
    "stack": "stack to build from (recipes/stacks/<name>.toml); default from settings: sglang-0.5.4",
    "jobs": "parallel compile jobs, a number or 'auto' (min of CPUs and memory / memory per job)",
    "python": "target interpreter (absolute path); default: the one running inv",
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


def flag_settings(stack=None, jobs=None, python=None, workdir=None, set_=None, **extra: Any) -> dict:
    """Task flags -> the `flags` layer of the settings cascade (None means: not given)."""
    from rebuilt.core.settings import parse_assignments

    flags: dict[str, Any] = {"stack": stack, "jobs": jobs, "python": python, "workdir": workdir}
    flags.update(extra)
    flags.update(parse_assignments(set_))
    return flags


def resolve(**flags):
    from rebuilt.core import settings

    return settings.resolve(flag_settings(**flags))
