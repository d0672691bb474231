"""The checks, in the order the doctor prints them; each returns rows (ok / warn / fail, found, what to do).

Every version comes from a real call to the real tool (rebuilt.core.machine / rebuilt.core.runner).
"""

from __future__ import annotations

from rebuilt.build.checks.caches import cmake_caches, flashinfer_cache
from rebuilt.build.checks.model import Check, Context
from rebuilt.build.checks.network import proxy_state, source_hosts
from rebuilt.build.checks.nvshmem import deepep_arch, deepep_cccl, deepep_nvshmem
from rebuilt.build.checks.resources import disk, gpus, memory
from rebuilt.build.checks.toolchain import (
    ccache_check,
    companions,
    cuda,
    host_compiler,
    libnuma,
    nvshmem,
    python_version,
    tools,
    torch_identity,
)

__all__ = ["ALL", "PREFLIGHT", "Check", "Context"]

ALL = (python_version, host_compiler, cuda, torch_identity, companions, cmake_caches, nvshmem, deepep_nvshmem,
       deepep_cccl, deepep_arch, flashinfer_cache, tools, ccache_check, libnuma, disk, memory, gpus, proxy_state,
       source_hosts)
# Before a build: what can stop it early, in seconds (no network probes; the GPU only through `cuda`).
PREFLIGHT = (python_version, host_compiler, cuda, torch_identity, companions, cmake_caches, deepep_nvshmem,
             deepep_cccl, deepep_arch, tools, ccache_check,
             libnuma, disk, proxy_state)
# Before a build, a check named here runs only when a step of the plan needs one of these (the steps'
# `needs` in recipes/*.toml): flashinfer's editable and index modes run no nvcc, so no CUDA check stops
# them. A check not named here runs for every plan.
APPLIES = {host_compiler: ("nvcc", "cxx"), cuda: ("nvcc",), cmake_caches: ("nvcc",), ccache_check: ("nvcc", "cxx"),
           torch_identity: ("torch",), libnuma: ("libnuma",)}


def for_plan(ctx: Context, checks=PREFLIGHT) -> tuple:
    """The checks that apply to the plan's steps."""
    return tuple(fn for fn in checks if fn not in APPLIES or any(ctx.needs.used(n) for n in APPLIES[fn]))
