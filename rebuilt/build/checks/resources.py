"""Checks of the machine's resources: free disk, memory per compile job, GPUs."""

from __future__ import annotations

from rebuilt.build.checks import tables
from rebuilt.build.checks.model import Check, Context
from rebuilt.core import machine as machine_mod


def disk(ctx: Context) -> list[Check]:
    need = sum(tables.DISK_GB.get(r, 1) for r in ctx.recipes)
    free = machine_mod.disk_free_gb(ctx.settings.workdir())
    status = "ok" if free >= need else "fail" if free < need / 2 else "warn"
    parts = ", ".join(f"{r} {tables.DISK_GB.get(r, 1)}" for r in ctx.recipes)
    return [Check("disk", status, f"{free:.0f} GiB free at {ctx.settings.workdir()}; these builds need about "
                  f"{need} GiB ({parts})", "" if status == "ok" else "free space or use another --workdir")]


def memory(ctx: Context) -> list[Check]:
    """Each recipe's job count against memory per job (the plan's choice and why)."""
    rows = []
    for rp in getattr(ctx.plan, "recipes", ()):
        if rp.jobs.warning:
            rows.append(Check(f"jobs {rp.recipe.name}", "warn", rp.jobs.warning,
                              "lower --jobs or the nvcc threads, or use --jobs auto"))
        elif any("nvcc" in s.needs for s in rp.steps):
            rows.append(Check(f"jobs {rp.recipe.name}", "ok", f"{rp.jobs.jobs}: {rp.jobs.explanation}"))
    return rows or [Check("memory", "ok", f"{ctx.machine.mem_available_gb:.0f} GiB available, "
                                          f"{ctx.machine.cpus} CPUs")]


def gpus(ctx: Context) -> list[Check]:
    if not ctx.machine.gpus:
        return [Check("gpu", "warn", "no GPU found (nvidia-smi)", "builds work; benchmarks and GPU tests need one")]
    return [Check("gpu", "ok" if "H200" in g["name"] or "H100" in g["name"] else "warn",
                  f"{g['name']}, compute capability {g['compute_cap']}, driver {g['driver']}",
                  "" if "H200" in g["name"] or "H100" in g["name"] else "the stacks are tuned for H100/H200 (sm_90)")
            for g in ctx.machine.gpus]
