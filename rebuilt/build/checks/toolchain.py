"""Checks of the toolchain: Python, the host compiler against CUDA, CUDA against the stack and the GPU,
torch and its companions, nvshmem, build tools, ccache, libnuma.

Versions come from the machine probe or, for tools it does not know, from the tool itself
(``Context.tool``): always a real call to the real program through rebuilt.core.runner.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import InvalidVersion, Version

from rebuilt.build import companions as pairing
from rebuilt.build.checks import tables
from rebuilt.build.checks.model import Check, Context, major_minor, version_key
from rebuilt.build.features import ccache, shim
from rebuilt.core import runner


def python_version(ctx: Context) -> list[Check]:
    want, got = ctx.settings["python_version"], ctx.machine.python.version
    if not got:
        return [Check("python", "fail", f"{ctx.settings.python()} does not run: {ctx.machine.python.error}",
                      "give --python an interpreter that exists")]
    if major_minor(got) == want:
        return [Check("python", "ok", f"{got} ({ctx.settings.python()})")]
    if major_minor(got) == "3.13" and {"sglang", "sgl-kernel"} & set(ctx.recipes):
        return [Check("python", "fail", f"{got}; the stack wants {want}",
                      f"sglang's build fails on 3.13 (it cannot find a Rust compiler for dependencies that "
                      f"have no 3.13 wheels): use a Python {want} environment")]
    return [Check("python", "warn", f"{got}; the stack wants {want}", f"use a Python {want} environment")]


def _limit(table: dict, cuda: str) -> tuple[int | None, bool]:
    """(limit, assumed) for ``cuda``: the table's entry, or the newest one for a newer CUDA (assumed)."""
    if cuda in table:
        return table[cuda], cuda in tables.ASSUMED_CUDA
    newest = max(table, key=version_key)
    if version_key(cuda) > version_key(newest):
        return table[newest], True
    return None, False


def host_compiler(ctx: Context) -> list[Check]:
    """gcc/g++ (or the stack's host_compiler pair) present, and accepted by the CUDA found."""
    named = ctx.settings["host_compiler"]
    cc, cxx = shim.compilers(named or "gcc")
    versions = {n: ctx.tool(n) for n in (cc, cxx)}
    missing = [n for n, v in versions.items() if not v]
    if missing:
        return [Check("host compiler", ctx.severity("nvcc", "cxx"),
                      f"{' and '.join(missing)} not found{ctx.needed_by('nvcc', 'cxx')}", shim.package_hint(cc, cxx))]
    if not re.match(r"\d", versions[cc]):
        return [Check("host compiler", "warn", f"{cc} printed no version: {versions[cc]!r}",
                      f"check `{cc} --version` by hand")]
    cuda = major_minor(ctx.machine.nvcc_version) or ctx.settings["cuda"]
    clang = "clang" in Path(cc).name
    limit, assumed = _limit(tables.CUDA_CLANG_BELOW if clang else tables.CUDA_MAX_GCC, cuda)
    major = int(version_key(versions[cc])[0])
    found = f"{Path(cc).name} {versions[cc]}, {Path(cxx).name} {versions[cxx]}" + (" (through the shim)" if named
                                                                                  else "")
    guess = " (an assumption)" if assumed else ""
    if limit is None:
        return [Check("host compiler", "warn", f"{found}; no known limit for CUDA {cuda}",
                      "nvcc will say 'unsupported GNU version' if it is too new")]
    too_new = major >= limit if clang else major > limit
    accepts = f"clang < {limit}" if clang else f"gcc <= {limit}"
    if too_new:
        pick = f"clang-{limit - 1}" if clang else f"gcc-{limit}"
        cxx_pick = f"clang++-{limit - 1}" if clang else f"g++-{limit}"
        return [Check("host compiler", ctx.severity("nvcc"), f"{found}; CUDA {cuda} accepts {accepts}{guess}"
                      f"{ctx.needed_by('nvcc')}",
                      f"nvcc would stop with 'unsupported {'clang' if clang else 'GNU'} version': set "
                      f"host_compiler = \"{pick}\" ({shim.package_hint(pick, cxx_pick)})")]
    return [Check("host compiler", "ok", f"{found}; CUDA {cuda} accepts {accepts}{guess}")]


def cuda(ctx: Context) -> list[Check]:
    """nvcc is the stack's CUDA, new enough for the GPU, and the driver runs it."""
    want, got = ctx.settings["cuda"], ctx.machine.nvcc_version
    if not got:
        return [Check("cuda", ctx.severity(), f"nvcc not found{ctx.needed_by('nvcc')}",
                      f"install CUDA {want} (/usr/local/cuda-{want}) or set cuda_home")]
    rows = []
    where = ctx.machine.cuda_home
    if got != want:
        rows.append(Check("cuda", ctx.severity(), f"nvcc {got} at {where}; the stack wants {want}"
                          f"{ctx.needed_by('nvcc')}",
                          f"install CUDA {want} as /usr/local/cuda-{want}, set cuda_home, or --set cuda={got}"))
    else:
        rows.append(Check("cuda", "ok", f"nvcc {got} at {where}"))
    arch_list = str(ctx.settings["torch_cuda_arch_list"])
    for gpu in ctx.machine.gpus:
        cap = gpu.get("compute_cap", "")
        sm = f"sm_{cap.replace('.', '')}"
        need = tables.ARCH_MIN_CUDA.get(cap)
        if need and version_key(got) < version_key(need):
            rows.append(Check("cuda vs gpu", ctx.severity(), f"{gpu['name']} ({sm}) needs CUDA >= {need} for its own "
                              f"kernels ({sm}a); nvcc is {got}", f"install CUDA >= {need}"))
        if ctx.cuda_build and cap and cap not in re.split(r"[;\s,]+", arch_list.replace("+PTX", "")):
            rows.append(Check("arch list vs gpu", "warn", f"torch_cuda_arch_list={arch_list!r} leaves out "
                              f"{gpu['name']} ({cap})", f"--set torch_cuda_arch_list={cap}"))
        rows += _driver(gpu, got)
    return rows


def _driver(gpu: dict, cuda_version: str) -> list[Check]:
    shipped, oldest = tables.CUDA_DRIVER.get(major_minor(cuda_version), (None, None))
    driver = gpu.get("driver") or ""
    if not shipped or not driver:
        return []
    if version_key(driver) < version_key(oldest):
        return [Check("driver", "fail", f"{driver}; CUDA {cuda_version} needs >= {oldest}",
                      f"update the NVIDIA driver (>= {shipped}) or use an older CUDA")]
    if version_key(driver) < version_key(shipped):
        return [Check("driver", "warn", f"{driver}: runs CUDA {cuda_version} through minor-version "
                      f"compatibility only (released with {shipped})", "PTX built by this nvcc cannot be JIT-"
                      "compiled by this driver; build SASS for the GPU's arch (TORCH_CUDA_ARCH_LIST)")]
    return [Check("driver", "ok", f"{driver} (CUDA {cuda_version} needs >= {oldest})")]


def _satisfies(version: str, pin: str) -> bool:
    try:
        return Requirement(pin).specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


def _tool_satisfies(version: str, spec) -> bool:
    """``3.25.1`` against ``>=3.26``; a tool's odd version (``1.11.1.git.kitware.jobserver-1``) by its numbers."""
    m = re.match(r"\d+(\.\d+)*", version.strip())
    return bool(m) and spec.contains(Version(m.group(0)), prereleases=True)


def _same(a: str, b: str) -> bool:
    """Equal as versions (``nv25.06`` == ``nv25.6``), else as text."""
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def _prerelease_or_local(v: str) -> bool:
    try:
        return Version(v).is_prerelease or bool(Version(v).local)
    except InvalidVersion:
        return True


def torch_identity(ctx: Context) -> list[Check]:
    """torch present (or built first), which one, its CUDA against nvcc, and the stack's pins on it."""
    py, opts = ctx.machine.python, ctx.settings.recipe("torch")
    version = py.torch.get("version")
    keep = opts.get("mode") == "keep"
    provider = ctx.needs.provider("torch")
    built_here = provider is not None  # an earlier step of this plan installs it: the installed one is replaced
    if not version:
        return _torch_missing(ctx, provider)
    rows = [Check("torch", "ok", f"{version} (CUDA {py.torch.get('cuda') or 'none: a CPU build'}) at "
                                 f"{py.torch.get('path')}" + (f"; {provider} replaces it" if built_here else ""))]
    expect = opts.get("expect") or ""
    if keep and expect and not _same(version, expect):
        rows.append(Check("torch expected", "fail", f"the stack keeps torch {expect}; this environment has "
                          f"{version}", "inv torch.restore the stack's torch, or use the environment that has it"))
    tcuda, ncuda = py.torch.get("cuda"), ctx.machine.nvcc_version
    if ctx.cuda_build and not built_here:
        if not tcuda:
            rows.append(Check("nvcc vs torch", "warn", "torch is a CPU build",
                              "CUDA extensions (sgl-kernel, DeepEP, flashinfer JIT) need a CUDA torch"))
        elif ncuda and tcuda.split(".")[0] != ncuda.split(".")[0]:
            rows.append(Check("nvcc vs torch", "fail", f"torch was built with CUDA {tcuda}, nvcc is {ncuda}",
                              f"torch's cpp_extension refuses a CUDA major mismatch: use CUDA {tcuda} "
                              f"(set cuda_home) for extensions of this torch"))
        else:
            rows.append(Check("nvcc vs torch", "ok", f"torch CUDA {tcuda}, nvcc {ncuda}"))
    for recipe in ctx.recipes:
        pin = tables.TORCH_PINS.get((recipe, ctx.settings.get(f"{recipe}.version") or ""))
        if pin and not built_here and not _satisfies(version, pin):
            why = " (a pre-release or local build does not match an exact pin)" if _prerelease_or_local(version) \
                else ""
            rows.append(Check(f"{recipe} pin", "warn", f"{recipe} pins {pin}; torch {version} does not "
                              f"satisfy it{why}", f"pip would replace this torch; the guard installs {recipe} "
                              f"without deps, then its other requirements, so torch stays"))
    return rows


def _torch_missing(ctx: Context, provider: str | None) -> list[Check]:
    """No torch in the target environment: fine when the plan installs it before every step needing it."""
    if not ctx.needs.steps("torch"):  # every step that needs torch comes after the one that installs it
        if provider:
            return [Check("torch", "ok", f"not installed yet: {provider} installs it before the steps that need it")]
        return [Check("torch", "warn", "not installed; no step of this build needs it",
                      "inv build.torch (or inv torch.restore a backup) before building anything against it")]
    late = f"; {provider} installs it only after them" if provider else ""
    return [Check("torch", "fail", f"not installed{ctx.needed_by('torch')}{late}",
                  "inv build.torch (or inv torch.restore a backup), or put the torch recipe first in the build")]


def companions(ctx: Context) -> list[Check]:
    """torchvision/torchaudio built for the installed torch (else pip pulls an official torch)."""
    pk = ctx.machine.python.packages
    torch = pk.get("torch")
    if ctx.needs.provider("torch"):  # the build replaces torch: compare with the one it builds
        torch = ctx.settings.get("torch.version") or ""
    if not torch:
        return []
    tmm = major_minor(torch)
    rows = []
    for dist, want in (("torchvision", pairing.torchvision_minor(torch)), ("torchaudio", tmm)):
        got = pk.get(dist)
        if not got:
            if dist in ctx.recipes:
                rows.append(Check(dist, "ok", "not installed yet: this build installs it"))
            elif dist == "torchvision" and "sglang" in ctx.recipes and want:
                rows.append(Check(dist, "warn", "not installed; sglang imports it",
                                  f"pip install {dist}=={want}.0 --no-deps (without --no-deps pip pulls an "
                                  f"official torch)"))
            continue
        if want and major_minor(got) != want:
            guess = " (by the release step: an assumption)" if dist == "torchvision" and pairing.assumed(torch) else ""
            rows.append(Check(dist, "fail", f"{got} installed; torch {torch} goes with {want}.x{guess}",
                              f"pip install {dist}=={want}.0 --no-deps (without --no-deps pip pulls an "
                              f"official torch)"))
        else:
            rows.append(Check(dist, "ok", f"{got} goes with torch {tmm}"))
    return rows


def nvshmem(ctx: Context) -> list[Check]:
    if not {"flashinfer", "deepep"} & set(ctx.recipes):
        return []
    configured = ctx.settings["nvshmem_dir"]
    if configured:
        ok = Path(configured).is_dir()
        return [Check("nvshmem", "ok" if ok else "fail", f"nvshmem_dir={configured}" + ("" if ok else
                      " does not exist"), "" if ok else "DeepEP's setup.py stops when NVSHMEM_DIR is missing")]
    found = ctx.machine.python.nvshmem
    if not found:
        return [Check("nvshmem", "warn", "neither nvshmem_dir nor the nvidia.nvshmem package",
                      "pip install nvidia-nvshmem-cu12 (flashinfer show-config fails without it; DeepEP builds "
                      "intranode kernels only)")]
    version = ctx.machine.python.packages.get("nvidia-nvshmem-cu12")
    if "deepep" in ctx.recipes and version and version_key(version) < version_key(tables.NVSHMEM_MIN):
        return [Check("nvshmem", "warn", f"nvidia-nvshmem-cu12 {version} at {found}; DeepEP wants >= "
                      f"{tables.NVSHMEM_MIN}", f"pip install 'nvidia-nvshmem-cu12>={tables.NVSHMEM_MIN}'")]
    return [Check("nvshmem", "ok", f"{found}" + (f" ({version})" if version else ""))]


def tools(ctx: Context) -> list[Check]:
    """git, make, cmake, ninja, uv: needed (and how new) by the plan's steps, unless an earlier step installs them."""
    rows = []
    for tool in ("git", "make", "cmake", "ninja", "uv"):
        v, where = ctx.env_tool(tool) if tool in ("cmake", "ninja", "uv") else (ctx.tool(tool), tool)
        provider, needed = ctx.needs.provider(tool), ctx.needs.steps(tool)
        if not v:
            if tool in ("cmake", "ninja", "uv") and not ctx.needs.used(tool):
                continue  # the recipes declare these in their steps' `needs`: no step of this plan uses it
            if provider and not needed:
                rows.append(Check(tool, "ok", f"not installed yet: {provider} installs it"))
                continue
            hint = {"uv": "pip install uv",
                    "ninja": "pip install ninja (without it sgl-kernel's CMake falls back to Makefiles, 1 job)",
                    "cmake": "pip install 'cmake>=3.26'"}.get(tool, f"apt-get install {tool}")
            rows.append(Check(tool, "fail" if needed else "warn", f"not found{ctx.needed_by(tool)}", hint))
            continue
        old = [(step, spec) for step, spec in ctx.needs.minimums(tool) if not _tool_satisfies(v, spec)]
        if old:
            step, spec = old[0]
            rows.append(Check(tool, "fail", f"{v} ({where}); {step} needs {tool}{spec}",
                              f"pip install '{tool}{spec}' into the target environment (its bin comes first on "
                              f"PATH in the build steps)"))
        elif provider and not needed:
            rows.append(Check(tool, "ok", f"{v} ({where}); {provider} installs its own for the steps after it"))
        else:
            rows.append(Check(tool, "ok", v if where == tool else f"{v} ({where})"))
    return rows


def ccache_check(ctx: Context) -> list[Check]:
    version = ctx.tool("ccache")
    problems = ccache.problems(ctx.settings, version)
    if problems:
        return [Check("ccache", "fail", problems[0])]
    if ctx.settings["ccache.enabled"]:
        where = ccache.cache_dir(ctx.settings, ctx.settings.workdir())
        return [Check("ccache", "ok", f"{version}; build steps get CCACHE_DIR={where}")]
    if not version:
        return [Check("ccache", "ok", "not installed, not enabled")]
    exported = os.environ.get("CCACHE_DIR")
    if exported and "sgl-kernel" in ctx.recipes:
        return [Check("ccache", "ok", f"{version}, not enabled; CCACHE_DIR={exported} is exported, so "
                      "sgl-kernel's CMake uses it anyway")]
    return [Check("ccache", "warn", f"{version}, not enabled",
                  "sgl-kernel uses ccache only when CCACHE_DIR is set: --set ccache.enabled=true sets it")]


def libnuma(ctx: Context) -> list[Check]:
    if not ctx.needs.steps("libnuma"):
        return []
    prefix = ctx.machine.python.prefix
    headers = list(tables.NUMA_HEADERS) + ([f"{prefix}/include/numa.h"] if prefix else [])
    header = next((h for h in headers if Path(h).exists()), None)
    if header:
        return [Check("libnuma", "ok", header)]
    lib = ""
    if runner.which("ldconfig") or Path("/sbin/ldconfig").exists():  # it prints /etc/ld.so.cache: remembered
        out = ctx.machine.command_output([runner.which("ldconfig") or "/sbin/ldconfig", "-p"], ("/etc/ld.so.cache",))
        lib = next((ln.split("=>")[-1].strip() for ln in (out or "").splitlines() if "libnuma.so" in ln), "")
    found = f"{lib} but no numa.h" if lib else "neither numa.h nor libnuma.so"
    return [Check("libnuma", "fail", f"{found}{ctx.needed_by('libnuma')}",
                  "apt-get install libnuma-dev (sgl-kernel's mscclpp includes numa.h)")]
