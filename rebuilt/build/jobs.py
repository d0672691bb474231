"""How many compile jobs: min(CPUs this process may use, available memory / memory per job)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JobChoice:
    jobs: int
    explanation: str
    warning: str | None = None


def mem_per_job(base_gb: float, nvcc_threads: int | None) -> float:
    """Memory one compile job needs: the recipe's figure, times nvcc's threads when it has them."""
    return base_gb * max(1, nvcc_threads or 1)


def choose(setting: int | str, cpus: int, mem_available_gb: float, per_job_gb: float, per_job_note: str = "") -> JobChoice:
    """Resolve the ``jobs`` setting against the machine; explicit numbers win but warn.

    ``setting`` is the value the settings parsed once (rebuilt/core/flags.py): "auto" or a whole number."""
    by_mem = max(1, int(mem_available_gb // per_job_gb)) if per_job_gb > 0 and mem_available_gb > 0 else cpus
    basis = (f"{cpus} CPUs, {mem_available_gb:.1f} GiB available / {per_job_gb:.1f} GiB per job"
             f"{' (' + per_job_note + ')' if per_job_note else ''} = {by_mem}")
    if setting == "auto":
        jobs = max(1, min(cpus, by_mem))
        return JobChoice(jobs, f"auto: min({basis}) -> {jobs}")
    jobs = setting
    warning = None
    if jobs > by_mem:
        warning = (f"jobs={jobs} exceeds what memory allows ({by_mem}: {basis}); "
                   f"the build may run out of memory")
    return JobChoice(jobs, f"explicit ({basis})", warning)
