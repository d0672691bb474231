"""One function per check; each returns Check rows (status ok / warn / fail, what was found, what to do).

Every version comes from a real call to the real tool (rebuilt.machine / rebuilt.runner).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import InvalidVersion, Version

from rebuilt import ccache, machine as machine_mod, recipes, runner, shim
from rebuilt.doctor import tables


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    found: str
    todo: str = ""


@dataclass
class Context:
    settings: object
    machine: machine_mod.Machine
    recipes: list[str]  # the recipes the checks are for
    plan: object = None
    fix: bool = False
    offline: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def cuda_build(self) -> bool:
        return bool(set(self.recipes) & tables.CUDA_RECIPES)


def _major_minor(v: str | None) -> str | None:
    m = re.match(r"(\d+)\.(\d+)", v or "")
    return f"{m.group(1)}.{m.group(2)}" if m else None


def python_version(ctx: Context) -> list[Check]:
    want = ctx.settings["python_version"]
    got = ctx.machine.python.version
    if not got:
        return [Check("python", "fail", f"{ctx.settings.python()} does not run: {ctx.machine.python.error}",
                      "give --python an interpreter that exists")]
    if _major_minor(got) == want:
        return [Check("python", "ok", f"{got} ({ctx.settings.python()})")]
    if _major_minor(got) == "3.13" and "sglang" in ctx.recipes:
        return [Check("python", "fail", f"{got}; the stack wants {want}",
                      "sglang's build fails on 3.13 (no Rust compiler found for its dependencies): use 3.11")]
    return [Check("python", "warn", f"{got}; the stack wants {want}", f"use a Python {want} environment")]


def host_compiler(ctx: Context) -> list[Check]:
    host = ctx.settings["host_compiler"] or "gcc"
    cc, cxx = shim.compilers(host)
    version = ctx.machine.tools.get(host) if host != "gcc" else ctx.machine.tools.get("gcc")
    if version is None and host != "gcc":
        version = machine_mod.tool_version(host)
    if not version:
        major = re.sub(r"\D", "", host) or "12"
        return [Check("host compiler", "fail" if ctx.cuda_build else "warn", f"{host} not found",
                      tables.COMPILER_PACKAGE.format(cc=cc, cxx=cxx, major=major))]
    cuda = _major_minor(ctx.machine.nvcc_version) or ctx.settings["cuda"]
    limit = (tables.CUDA_MAX_CLANG if "clang" in host else tables.CUDA_MAX_GCC).get(cuda)
    major = int(version.split(".")[0])
    found = f"{host} {version}" + (" (via the shim)" if ctx.settings["host_compiler"] else "")
    if limit and major > limit:
        return [Check("host compiler", "fail" if ctx.cuda_build else "warn",
                      f"{found}; CUDA {cuda} accepts {'clang' if 'clang' in host else 'gcc'} <= {limit}",
                      f"nvcc would stop with 'unsupported GNU version': set host_compiler = \"gcc-{limit}\" "
                      f"(apt-get install gcc-{limit} g++-{limit})")]
    return [Check("host compiler", "ok", f"{found}; CUDA {cuda} accepts <= {limit or '?'}")]


def cuda(ctx: Context) -> list[Check]:
    want, got = ctx.settings["cuda"], ctx.machine.nvcc_version
    rows = []
    if not got:
        rows.append(Check("cuda", "fail" if ctx.cuda_build else "warn", "nvcc not found",
                          f"install CUDA {want} (/usr/local/cuda-{want}) or set cuda_home"))
        return rows
    where = ctx.machine.cuda_home
    if got != want:
        rows.append(Check("cuda", "fail" if ctx.cuda_build else "warn", f"nvcc {got} at {where}; the stack wants {want}",
                          f"install CUDA {want} as /usr/local/cuda-{want}, set cuda_home, or --set cuda={got}"))
    else:
        rows.append(Check("cuda", "ok", f"nvcc {got} at {where}"))
    for gpu in ctx.machine.gpus:
        need = tables.ARCH_MIN_CUDA.get(gpu.get("compute_cap", ""))
        if need and Version(got) < Version(need):
            rows.append(Check("cuda vs gpu", "fail", f"{gpu['name']} (sm_{gpu['compute_cap'].replace('.', '')}) "
                              f"needs CUDA >= {need} for its own kernels (sm_90a); nvcc is {got}",
                              f"install CUDA >= {need}"))
    return rows


def torch_identity(ctx: Context) -> list[Check]:
    py = ctx.machine.python
    version = py.torch.get("version")
    if not version:
        keep = ctx.settings.get("torch.mode") == "keep"
        return [Check("torch", "fail" if keep or set(ctx.recipes) - {"torch"} else "ok", "not installed",
                      "inv build.torch, or inv torch.restore a backup" if keep or ctx.recipes != ["torch"] else "")]
    rows = [Check("torch", "ok", f"{version} (CUDA {py.torch.get('cuda') or 'none: CPU build'}) at "
                                 f"{py.torch.get('path')}")]
    tcuda, ncuda = py.torch.get("cuda"), ctx.machine.nvcc_version
    if ctx.cuda_build and "torch" not in ctx.recipes:
        if not tcuda:
            rows.append(Check("nvcc vs torch", "warn", "torch is a CPU build", "CUDA extensions need a CUDA torch"))
        elif ncuda and tcuda.split(".")[0] != ncuda.split(".")[0]:
            rows.append(Check("nvcc vs torch", "fail", f"torch was built with CUDA {tcuda}, nvcc is {ncuda}",
                              f"use CUDA {tcuda} (cuda_home) for extensions of this torch"))
        else:
            rows.append(Check("nvcc vs torch", "ok", f"torch CUDA {tcuda}, nvcc {ncuda}"))
    pins = {"sglang": "torch==2.8.0", "vllm": "torch==2.5.1"}
    for recipe, pin in pins.items():
        if recipe in ctx.recipes:
            try:
                ok = Version(version) in Requirement(pin).specifier
            except InvalidVersion:
                ok = False
            if not ok:
                rows.append(Check(f"{recipe} pin", "warn", f"{recipe} pins {pin}; {version} does not satisfy it",
                                  f"the guard installs {recipe} without deps, then its other requirements"))
    return rows


def companions(ctx: Context) -> list[Check]:
    pk = ctx.machine.python.packages
    torch = pk.get("torch")
    rows = []
    if not torch:
        return rows
    tmm = _major_minor(torch)
    for dist, want in (("torchvision", tables.TORCHVISION_FOR.get(tmm)), ("torchaudio", tmm)):
        got = pk.get(dist)
        if got and want and _major_minor(got) != want:
            rows.append(Check(dist, "fail", f"{got} installed, torch {torch} needs {want}.x",
                              f"pip install {dist}=={want}.0 --no-deps (without --no-deps pip pulls an official torch)"))
        elif got:
            rows.append(Check(dist, "ok", f"{got} matches torch {tmm}"))
    return rows


def _cache_nvcc(cache: Path) -> str | None:
    for line in cache.read_text(errors="replace").splitlines():
        if line.startswith("CMAKE_CUDA_COMPILER:"):
            return line.split("=", 1)[1].strip()
    return None


def cmake_caches(ctx: Context) -> list[Check]:
    wd = ctx.settings.workdir()
    nvcc = f"{ctx.machine.cuda_home}/bin/nvcc" if ctx.machine.cuda_home else None
    rows = []
    for cache in (wd / "src" / "pytorch" / "build" / "CMakeCache.txt",
                  wd / "src" / "sglang" / "sgl-kernel" / "build" / "CMakeCache.txt"):
        if not cache.exists():
            continue
        old = _cache_nvcc(cache)
        if not old or not nvcc or os.path.realpath(old) == os.path.realpath(nvcc):
            rows.append(Check("CMakeCache nvcc", "ok", f"{cache}: {old or 'no CUDA compiler'}"))
            continue
        if ctx.fix:
            text = cache.read_text()
            cache.write_text(re.sub(r"^(CMAKE_CUDA_COMPILER:[A-Z]+=).*$", lambda m: m.group(1) + nvcc, text,
                                    flags=re.M))
            rows.append(Check("CMakeCache nvcc", "ok", f"{cache}: was {old}, fixed to {nvcc}"))
        else:
            rows.append(Check("CMakeCache nvcc", "fail", f"{cache} remembers {old}; the stack's nvcc is {nvcc}",
                              "inv doctor --fix rewrites the entry (or delete the build folder)"))
    return rows


def nvshmem(ctx: Context) -> list[Check]:
    if not {"flashinfer", "deepep"} & set(ctx.recipes):
        return []
    found = ctx.settings["nvshmem_dir"] or ctx.machine.python.nvshmem
    if found:
        return [Check("nvshmem", "ok", found)]
    return [Check("nvshmem", "warn", "neither nvshmem_dir nor the nvidia.nvshmem package",
                  "pip install nvidia-nvshmem-cu12 (flashinfer show-config and DeepEP internode need it)")]


def flashinfer_cache(ctx: Context) -> list[Check]:
    base = Path(os.environ.get("FLASHINFER_WORKSPACE_BASE") or Path.home()) / ".cache" / "flashinfer"
    if not base.is_dir():
        return []
    want = ctx.settings.get("flashinfer.version") or ""
    stale = [p for p in base.iterdir() if p.is_dir() and p.name != want]
    if not stale:
        return [Check("flashinfer JIT cache", "ok", f"{base}: only {want or 'no'} kernels")]
    if ctx.fix:
        for p in stale:
            shutil.rmtree(p)
        return [Check("flashinfer JIT cache", "ok", f"removed {', '.join(p.name for p in stale)} from {base}")]
    return [Check("flashinfer JIT cache", "warn", f"{base} holds kernels of {', '.join(p.name for p in stale)}",
                  "stale JIT kernels of other builds are a known source of wrong results: inv doctor --fix")]


def tools(ctx: Context) -> list[Check]:
    t = ctx.machine.tools
    need = {"git": bool(ctx.recipes), "make": "sgl-kernel" in ctx.recipes, "uv": False,
            "ninja": ctx.cuda_build, "cmake": ctx.cuda_build}
    rows = []
    for tool in ("git", "make", "cmake", "ninja", "uv"):
        v = t.get(tool)
        if not v:
            hint = "pip install uv (the sgl-kernel recipe installs it)" if tool == "uv" else \
                f"apt-get install {tool}" + (" (or pip install cmake ninja)" if tool in ("cmake", "ninja") else "")
            rows.append(Check(tool, "fail" if need.get(tool) else "warn", "not found", hint))
        elif tool == "cmake" and "sgl-kernel" in ctx.recipes and Version(v) < Version("3.26"):
            rows.append(Check(tool, "fail", f"{v}; sgl-kernel needs >= 3.26", "pip install 'cmake>=3.26'"))
        else:
            rows.append(Check(tool, "ok", v))
    return rows


def ccache_check(ctx: Context) -> list[Check]:
    version = ctx.machine.tools.get("ccache")
    problems = ccache.problems(ctx.settings, version)
    if problems:
        return [Check("ccache", "fail", problems[0])]
    if ctx.settings["ccache.enabled"]:
        return [Check("ccache", "ok", f"{version}; CCACHE_DIR={ccache.cache_dir(ctx.settings, ctx.settings.workdir())}")]
    return [Check("ccache", "warn" if version else "ok", f"{version or 'not installed'}, not enabled",
                  "sgl-kernel uses ccache only when CCACHE_DIR is set: --set ccache.enabled=true" if version else "")]


def libnuma(ctx: Context) -> list[Check]:
    if "sgl-kernel" not in ctx.recipes:
        return []
    if Path("/usr/include/numa.h").exists():
        return [Check("libnuma", "ok", "/usr/include/numa.h")]
    return [Check("libnuma", "fail", "numa.h not found", "apt-get install libnuma-dev (mscclpp in sgl-kernel)")]


def disk(ctx: Context) -> list[Check]:
    need = sum(tables.DISK_GB.get(r, 1) for r in ctx.recipes)
    free = machine_mod.disk_free_gb(ctx.settings.workdir())
    status = "ok" if free >= need else "fail" if free < need / 2 else "warn"
    return [Check("disk", status, f"{free:.0f} GiB free at {ctx.settings.workdir()}; these builds need ~{need} GiB",
                  "" if status == "ok" else "free space or use another --workdir")]


def memory(ctx: Context) -> list[Check]:
    rows = []
    for rp in getattr(ctx.plan, "recipes", ()):
        if rp.jobs.warning:
            rows.append(Check(f"memory ({rp.recipe.name})", "warn", rp.jobs.warning,
                              "lower --jobs or the nvcc threads, or use --jobs auto"))
    return rows or [Check("memory", "ok", f"{ctx.machine.mem_available_gb:.0f} GiB available, "
                                          f"{ctx.machine.cpus} CPUs")]


def gpus(ctx: Context) -> list[Check]:
    if not ctx.machine.gpus:
        return [Check("gpu", "warn", "no GPU found (nvidia-smi)", "builds work; benchmarks and GPU checks need one")]
    return [Check("gpu", "ok" if "H200" in g["name"] or "H100" in g["name"] else "warn",
                  f"{g['name']}, compute capability {g['compute_cap']}, driver {g['driver']}") for g in ctx.machine.gpus]


def source_hosts(ctx: Context) -> list[Check]:
    if ctx.offline:
        return []
    import urllib.parse

    import requests

    from rebuilt import proxy

    hosts = set()
    for name in ctx.recipes:
        r = recipes.get(name)
        owner = recipes.get(r.source.from_) if r.source and r.source.from_ else r
        url = ctx.settings.get(f"{owner.name}.url") or ""
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme in ("http", "https") and parsed.hostname:
            hosts.add(f"{parsed.scheme}://{parsed.hostname}")
    rows = []
    proxies = proxy.requests_proxies(ctx.settings)
    for host in sorted(hosts):
        try:
            requests.head(host, timeout=3, proxies=proxies, allow_redirects=False)
            rows.append(Check(f"reach {host}", "ok", "answers" + (" (through the proxy)" if proxies else "")))
        except requests.RequestException as exc:
            rows.append(Check(f"reach {host}", "warn", f"no answer: {type(exc).__name__}",
                              "inv proxy.on (with proxy.url set), or check the network; --offline skips this"))
    return rows


ALL = (python_version, host_compiler, cuda, torch_identity, companions, cmake_caches, nvshmem, flashinfer_cache,
       tools, ccache_check, libnuma, disk, memory, gpus, source_hosts)
# Before a build: what can stop it early (no network probes, no GPU requirement).
PREFLIGHT = (python_version, host_compiler, cuda, torch_identity, companions, cmake_caches, tools, ccache_check,
             libnuma, disk)
