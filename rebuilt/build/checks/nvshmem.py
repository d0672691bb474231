"""DeepEP's NVSHMEM and CUDA 13 header checks: what its setup.py will link and include, read off the plan.

DeepEP v1.2.1 ``setup.py`` (github.com/deepseek-ai/DeepEP/blob/v1.2.1/setup.py):
- ``NVSHMEM_DIR`` set: it links ``-l:libnvshmem_host.so`` from ``$NVSHMEM_DIR/lib``. A full NVSHMEM
  install (e.g. /usr/local/nvshmem) has that file; the pip package ``nvidia-nvshmem-cu12``/``-cu13``
  ships only the soname ``libnvshmem_host.so.3``, so pointing ``NVSHMEM_DIR`` at it ends in
  ``ld: cannot find -l:libnvshmem_host.so``.
- ``NVSHMEM_DIR`` unset: it finds ``nvidia.nvshmem`` in the building interpreter and links the soname
  it finds in its ``lib/`` (``-l:libnvshmem_host.so.3``); without either, intranode kernels only.
CUDA 13 keeps ``cuda/std/...`` in ``$CUDA_HOME/include/cccl``; NVSHMEM 3.x's headers include
``<cuda/std/tuple>`` from the host-compiled ``csrc/deep_ep.cpp``, and only nvcc adds that folder itself.
"""

from __future__ import annotations

import os
from pathlib import Path

from rebuilt.build.checks import tables
from rebuilt.build.checks.model import Check, Context, major_minor, version_key

PACKAGES = ("nvidia-nvshmem-cu13", "nvidia-nvshmem-cu12")


def _applies(ctx: Context) -> bool:
    if "deepep" not in ctx.recipes:
        return False
    try:
        return not ctx.settings["deepep.disable_sm90_features"]  # that mode builds without NVSHMEM
    except Exception:  # noqa: BLE001 - a recipe without the option
        return True


def _setup_steps(ctx: Context) -> list:
    """DeepEP's steps that run setup.py (compile and link), from the plan the build will run."""
    steps = ctx.plan.steps if ctx.plan is not None else []
    return [s for s in steps if s.recipe == "deepep" and s.argv and "setup.py" in s.argv]


def _sonames(lib: Path) -> list[str]:
    return sorted(p.name for p in lib.glob("libnvshmem_host.so.*")) if lib.is_dir() else []


def _nvshmem_dir(ctx: Context) -> tuple[str | None, str]:
    """(NVSHMEM_DIR as setup.py will see it, where it comes from)."""
    steps = _setup_steps(ctx)
    declared = [s.env["NVSHMEM_DIR"] for s in steps if "NVSHMEM_DIR" in s.env]
    if steps and len(declared) == len(steps):
        return declared[0], "nvshmem_dir"
    caller = os.environ.get("NVSHMEM_DIR")  # a step that does not declare it inherits the caller's
    return (caller, "your environment") if caller is not None else (None, "")


def deepep_nvshmem(ctx: Context) -> list[Check]:
    """NVSHMEM found (pip package or a full install) and linkable the way DeepEP's setup.py links it."""
    if not _applies(ctx):
        return []
    nv_dir, origin = _nvshmem_dir(ctx)
    if nv_dir is not None:
        lib = Path(nv_dir) / "lib"
        if (lib / "libnvshmem_host.so").exists():
            return [Check("deepep nvshmem", "ok", f"NVSHMEM_DIR={nv_dir} ({origin}): setup.py links "
                          f"-l:libnvshmem_host.so from {lib}")]
        if not Path(nv_dir).is_dir():
            return [Check("deepep nvshmem", "fail", f"NVSHMEM_DIR={nv_dir} ({origin}) does not exist",
                          "DeepEP's setup.py stops on a missing NVSHMEM_DIR: fix nvshmem_dir, or clear it to use "
                          "the nvidia.nvshmem pip package")]
        has = _sonames(lib)
        return [Check("deepep nvshmem", "fail",
                      f"NVSHMEM_DIR={nv_dir} ({origin}) has {', '.join(has) or 'no libnvshmem_host.so*'} but no "
                      f"lib/libnvshmem_host.so, which setup.py links when NVSHMEM_DIR is set "
                      f"(ld: cannot find -l:libnvshmem_host.so)",
                      "for the pip package's layout, clear nvshmem_dir (and unset NVSHMEM_DIR): setup.py then "
                      "finds nvidia.nvshmem and links its soname; else point nvshmem_dir at a full NVSHMEM install")]
    pip = ctx.machine.python.nvshmem
    if not pip:
        return [Check("deepep nvshmem", "warn", f"neither nvshmem_dir nor the nvidia.nvshmem package in "
                      f"{ctx.settings.python()}",
                      "pip install nvidia-nvshmem-cu13 (CUDA 13; -cu12 for CUDA 12) or set nvshmem_dir to a full "
                      "install: without NVSHMEM DeepEP builds intranode kernels only")]
    has = _sonames(Path(pip) / "lib")
    if not has:
        return [Check("deepep nvshmem", "fail", f"nvidia.nvshmem at {pip} has no lib/libnvshmem_host.so.*: "
                      f"setup.py would quietly build without internode and low-latency kernels",
                      "reinstall the package: pip install --force-reinstall nvidia-nvshmem-cu13 (or -cu12)")]
    dist = next((d for d in PACKAGES if ctx.machine.python.packages.get(d)), None)
    version = ctx.machine.python.packages.get(dist) if dist else None
    found = f"{dist} {version} at {pip}" if dist else f"nvidia.nvshmem at {pip}"
    if version and version_key(version) < version_key(tables.NVSHMEM_MIN):
        return [Check("deepep nvshmem", "warn", f"{found}; DeepEP wants >= {tables.NVSHMEM_MIN}",
                      f"pip install '{dist}>={tables.NVSHMEM_MIN}'")]
    cuda = major_minor(ctx.machine.nvcc_version)
    if dist and cuda and f"cu{cuda.split('.')[0]}" not in dist:
        return [Check("deepep nvshmem", "warn", f"{found}, but nvcc is CUDA {cuda}",
                      f"pip install nvidia-nvshmem-cu{cuda.split('.')[0]} (the build for your CUDA)")]
    return [Check("deepep nvshmem", "ok", f"{found}: NVSHMEM_DIR stays unset, setup.py links -l:{has[0]}")]


def deepep_cccl(ctx: Context) -> list[Check]:
    """On CUDA 13, $CUDA_HOME/include/cccl on the host compiler's include path for DeepEP's build steps."""
    if "deepep" not in ctx.recipes:
        return []
    cuda = major_minor(ctx.machine.nvcc_version)
    cccl = ctx.machine.cuda_cccl
    if not cccl:
        if cuda and version_key(cuda) >= (13,):
            return [Check("deepep cuda headers", "fail", f"CUDA {cuda} at {ctx.machine.cuda_home} has no include/cccl",
                          "reinstall the CUDA toolkit (its cuda/std headers live in include/cccl since 13.0)")]
        return []  # CUDA 12: cuda/std/... sits in $CUDA_HOME/include, which torch's extension adds
    steps = _setup_steps(ctx)
    missing = [s.title for s in steps if cccl not in (s.env.get("CPLUS_INCLUDE_PATH") or "").split(":")]
    if missing:
        return [Check("deepep cuda headers", "fail", f"{cccl} is not on CPLUS_INCLUDE_PATH in {', '.join(missing)}: "
                      f"g++ stops with fatal error: cuda/std/tuple: No such file or directory",
                      f"put {cccl} first on CPLUS_INCLUDE_PATH for those steps (recipes/deepep.toml does)")]
    return [Check("deepep cuda headers", "ok", f"CUDA {cuda or '?'}: {cccl} first on CPLUS_INCLUDE_PATH for "
                  f"{', '.join(s.name for s in steps) or 'no setup.py step'}")]


def _archs(text: str) -> list[str]:
    return [a.strip().removesuffix("+PTX") for a in text.replace(";", " ").replace(",", " ").split() if a.strip()]


def deepep_arch(ctx: Context) -> list[Check]:
    """With SM90 features on, every arch must be 9.0 or newer: v1.2.1's intranode.cu uses TMA and mbarrier
    instructions that ptxas refuses for compute_80 (seen on CUDA 13.0 with "8.0;9.0")."""
    if not _applies(ctx):
        return []
    lists = {s.env.get("TORCH_CUDA_ARCH_LIST") for s in _setup_steps(ctx)} - {None}
    old = sorted({a for lst in lists for a in _archs(lst) if version_key(a) < (9, 0)})
    if not old:
        return []
    return [Check("deepep arch", "fail", f"TORCH_CUDA_ARCH_LIST={';'.join(sorted(lists))} with SM90 features: ptxas "
                  f"stops on compute_{old[0].replace('.', '')[:2]} (Feature 'cp.async.bulk' requires .target sm_90 "
                  f"or higher)", "--set deepep.torch_cuda_arch_list=9.0 (DeepEP's default), or "
                  "--set deepep.disable_sm90_features=true for an A100 build (intranode kernels only)")]


CHECKS = (deepep_nvshmem, deepep_cccl, deepep_arch)
