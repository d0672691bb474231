"""Checks of what earlier builds left behind: a CMakeCache.txt remembering another nvcc, and
flashinfer JIT kernels of other versions. ``--fix`` repairs both and says what it did."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from packaging.version import InvalidVersion, Version

from rebuilt.build.checks.model import Check, Context
from rebuilt.core import recipes
from rebuilt.core.fs import write_text

_NVCC_ENTRY = re.compile(r"^CMAKE_CUDA_COMPILER:(?:STRING|FILEPATH|PATH)=(.*)$", re.M)


def build_caches(workdir: Path) -> list[Path]:
    """The CMakeCache.txt files of the known build folders: torch's checkout and sgl-kernel's."""
    found = []
    for name, build in (("torch", "build"), ("sgl-kernel", "build")):
        try:
            r = recipes.get(name)
        except Exception:  # a recipes folder without it (private or test recipes)
            continue
        owner = recipes.get(r.source.from_) if r.source and r.source.from_ else r
        if owner.source and owner.source.dir:
            found.append(Path(workdir) / "src" / owner.source.dir / (r.source.subdir or "") / build / "CMakeCache.txt")
    return found


def cached_nvcc(text: str) -> str | None:
    m = _NVCC_ENTRY.search(text)
    return m.group(1).strip() if m else None


def retarget(text: str, old_nvcc: str, new_nvcc: str) -> tuple[str, int]:
    """Point a cache at ``new_nvcc``: the compiler entry, and every entry under the old CUDA root."""
    old_root, new_root = str(Path(old_nvcc).parent.parent), str(Path(new_nvcc).parent.parent)
    count = 0

    def line(m: re.Match) -> str:
        nonlocal count
        key, value = m.group(1), m.group(2)
        if key.startswith("CMAKE_CUDA_COMPILER:"):
            new = new_nvcc
        elif old_root != new_root and (value == old_root or value.startswith(old_root + "/")):
            new = new_root + value[len(old_root):]
        else:
            return m.group(0)
        count += new != value
        return key + new

    out = re.sub(r"^([A-Za-z0-9_.+-]+:[A-Z]+=)(.*)$", line, text, flags=re.M)
    return out, count


def cmake_caches(ctx: Context) -> list[Check]:
    home = ctx.machine.cuda_home
    nvcc = f"{home}/bin/nvcc" if home else None
    rows = []
    for cache in build_caches(ctx.settings.workdir()):
        if not cache.is_file():
            continue
        text = cache.read_text(errors="replace")
        old = cached_nvcc(text)
        if not old:
            rows.append(Check("CMakeCache nvcc", "ok", f"{cache}: no CUDA compiler remembered"))
        elif not nvcc:
            rows.append(Check("CMakeCache nvcc", "warn", f"{cache} remembers {old}; no nvcc found to compare"))
        elif os.path.realpath(old) == os.path.realpath(nvcc):
            rows.append(Check("CMakeCache nvcc", "ok", f"{cache}: {old}"))
        elif ctx.fix:
            new_text, changed = retarget(text, old, nvcc)
            write_text(cache.with_name(cache.name + ".rebuilt-bak"), text)
            write_text(cache, new_text)
            rows.append(Check("CMakeCache nvcc", "ok", f"fixed {cache}: {changed} entries moved from {old} to "
                              f"{nvcc} (the old file is {cache.name}.rebuilt-bak); CMake reconfigures at the "
                              f"next build"))
        else:
            rows.append(Check("CMakeCache nvcc", "fail", f"{cache} remembers {old}; the stack's nvcc is {nvcc}",
                              "inv doctor --fix rewrites the entry (or delete that build folder)"))
    return rows


def flashinfer_base() -> Path:
    return Path(os.environ.get("FLASHINFER_WORKSPACE_BASE") or Path.home()) / ".cache" / "flashinfer"


def _kind(name: str) -> str:
    """``0.4.1`` -> version; ``75_80_89`` / ``90`` / ``noarch`` -> arch (the layout before versioned
    folders); ``cubins`` and anything else -> keep (downloaded artifacts, not JIT output)."""
    if re.fullmatch(r"\d+\.\d+.*", name):
        return "version"
    if re.fullmatch(r"\d+[a-z]?(_\d+[a-z]?)*|noarch", name):
        return "arch"
    return "keep"


def _same(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def flashinfer_cache(ctx: Context) -> list[Check]:
    base = flashinfer_base()
    if not base.is_dir():
        return []
    current = ctx.machine.python.packages.get("flashinfer-python") or ctx.settings.get("flashinfer.version") or ""
    if not current:
        return [Check("flashinfer JIT cache", "ok", f"{base}: flashinfer is neither installed nor pinned, "
                      f"nothing to compare")]
    stale = sorted(p for p in base.iterdir() if p.is_dir() and (
        _kind(p.name) == "arch" or (_kind(p.name) == "version" and not _same(p.name, current))))
    if not stale:
        return [Check("flashinfer JIT cache", "ok", f"{base}: only flashinfer {current} kernels")]
    names = ", ".join(p.name for p in stale)
    if ctx.fix:
        for p in stale:
            shutil.rmtree(p)
        return [Check("flashinfer JIT cache", "ok", f"removed {names} from {base} (kept {current} and "
                      f"downloaded cubins)")]
    return [Check("flashinfer JIT cache", "warn", f"{base} holds JIT kernels of other builds: {names} "
                  f"(current: {current})", "stale JIT kernels are a known source of wrong results: "
                  "inv doctor --fix removes them")]
