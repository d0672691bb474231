"""The host-compiler shim: a private folder first on PATH where gcc/g++/cc/c++ are the stack's compiler.

The notes symlink gcc -> gcc-12 inside the conda env's bin; rebuilt never touches
the user's bin: build steps get ``<workdir>/state/shim/<compiler>/`` first on PATH
and ``CUDAHOSTCXX``/``NVCC_CCBIN`` naming the C++ compiler.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from rebuilt import builder, features, runner


def compilers(host: str) -> tuple[str, str]:
    """``gcc-12`` -> (``gcc-12``, ``g++-12``); ``clang-17`` -> (``clang-17``, ``clang++-17``)."""
    cxx = re.sub(r"^gcc", "g++", host) if host.startswith("gcc") else re.sub(r"^clang", "clang++", host)
    return host, cxx


def resolve_path(name: str) -> str:
    return runner.which(name) or f"/usr/bin/{name}"


def shim_dir(workdir: Path, host: str) -> Path:
    return Path(workdir) / "state" / "shim" / host


@features.feature(order=10)
def host_compiler(settings, recipe, step, ctx, workdir, machine) -> dict:
    host = settings["host_compiler"]
    if not host or step.action:
        return {}
    _, cxx = compilers(host)
    return {"PATH": f"{shim_dir(workdir, host)}:${{PATH}}", "CUDAHOSTCXX": resolve_path(cxx),
            "NVCC_CCBIN": resolve_path(cxx)}


def make_shim(workdir: Path, host: str) -> Path:
    """Create (or refresh) the shim folder: gcc, cc -> C compiler; g++, c++ -> C++ compiler."""
    cc, cxx = compilers(host)
    folder = shim_dir(workdir, host)
    folder.mkdir(parents=True, exist_ok=True)
    for name, target in (("gcc", cc), ("cc", cc), ("g++", cxx), ("c++", cxx)):
        link, real = folder / name, resolve_path(target)
        if not link.is_symlink() or os.readlink(link) != real:
            link.unlink(missing_ok=True)
            link.symlink_to(real)
    return folder


class ShimHook:
    """Makes the shim folder before a build that uses one."""

    def __init__(self, settings, workdir, console, opts):
        self.host, self.workdir = settings["host_compiler"], Path(workdir)

    def before_recipe(self, rp) -> None:
        if self.host:
            make_shim(self.workdir, self.host)


builder.HOOKS.append(ShimHook)
