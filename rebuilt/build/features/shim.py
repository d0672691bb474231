"""The host-compiler shim: a private folder first on PATH where gcc/g++/cc/c++ are the stack's compiler.

The notes symlink gcc -> gcc-12 inside the conda env's bin; rebuilt never touches the
user's bin: build steps get ``<workdir>/state/shim/<compiler>/`` first on PATH (made
before the recipe runs; the plan only names it, so it prints on any machine) and
``CUDAHOSTCXX``/``NVCC_CCBIN`` naming the C++ compiler for nvcc and CMake.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from rebuilt.core import runner
from rebuilt.errors import ConfigError, ToolMissing

LINKS = (("gcc", 0), ("cc", 0), ("g++", 1), ("c++", 1))  # shim name -> C (0) or C++ (1) compiler


def compilers(host: str) -> tuple[str, str]:
    """``gcc-12`` -> (``gcc-12``, ``g++-12``); ``clang-17`` -> (``clang-17``, ``clang++-17``);
    ``/opt/gcc/bin/gcc`` -> (``/opt/gcc/bin/gcc``, ``/opt/gcc/bin/g++``)."""
    folder, base = os.path.split(host)
    for c, cxx in (("clang", "clang++"), ("gcc", "g++")):
        at = base.rfind(c)
        if at >= 0 and not base.startswith(cxx, at):
            return host, os.path.join(folder, base[:at] + cxx + base[at + len(c):])
    raise ConfigError(f"host_compiler {host!r}: expected a gcc or clang name such as gcc-12, clang-17 or "
                      f"/path/to/gcc", hint="set host_compiler to the C compiler; the C++ one is derived from it")


def package_hint(cc: str, cxx: str = "") -> str:
    """Which packages provide a compiler pair (Debian/Ubuntu, conda)."""
    name = os.path.basename(cc)
    m = re.search(r"-(\d+)$", name)
    major = m.group(1) if m else ""
    if "clang" in name:
        return (f"apt-get install clang{'-' + major if major else ''}   (conda: conda install -c conda-forge "
                f"clangxx{'=' + major if major else ''})")
    debian = f"gcc-{major} g++-{major}" if major else "gcc g++"
    return f"apt-get install {debian}   (conda: conda install -c conda-forge gxx_linux-64{'=' + major if major else ''})"


def resolve_path(name: str) -> str:
    """Where a compiler is: absolute as given, else on PATH, else where Debian puts it (plan on any machine)."""
    if os.path.isabs(name):
        return name
    return runner.which(name) or f"/usr/bin/{name}"


def shim_dir(workdir: Path, host: str) -> Path:
    return Path(workdir) / "state" / "shim" / re.sub(r"[^A-Za-z0-9._+-]", "_", host.strip("/"))


def host_compiler(settings, recipe, step, ctx, workdir, machine) -> dict:
    """Compiling steps (not rebuilt's own actions) see the stack's compiler as gcc/g++/cc/c++."""
    host = settings["host_compiler"]
    if not host or step.action:
        return {}
    _, cxx = compilers(host)
    return {"PATH": f"{shim_dir(workdir, host)}:${{PATH}}", "CUDAHOSTCXX": resolve_path(cxx),
            "NVCC_CCBIN": resolve_path(cxx)}


def make_shim(workdir: Path, host: str) -> Path:
    """Create (or refresh) the shim folder; a compiler that is not installed stops here, with its package."""
    pair = compilers(host)
    real = []
    for name in pair:
        path = name if os.path.isabs(name) else runner.which(name)
        if not path or not os.access(path, os.X_OK):
            raise ToolMissing(f"host_compiler {host}: {name} is not installed", hint=package_hint(*pair))
        real.append(path)
    folder = shim_dir(workdir, host)
    folder.mkdir(parents=True, exist_ok=True)
    for link_name, which in LINKS:
        link, target = folder / link_name, real[which]
        if link.is_symlink() and os.readlink(link) == target:
            continue
        tmp = folder / f".{link_name}.tmp{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target)
        os.replace(tmp, link)  # atomic: a concurrent reader sees the old link or the new one
    return folder


class ShimHook:
    """Makes the shim folder before a recipe that uses one runs."""

    def __init__(self, settings, workdir, console, opts, machine=None):
        self.host, self.workdir = settings["host_compiler"], Path(workdir)

    def before_recipe(self, rp) -> None:
        if self.host:
            make_shim(self.workdir, self.host)

