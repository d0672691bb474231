"""What a check returns (a row) and what it looks at (the context)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from rebuilt.build.checks import needs as needs_mod
from rebuilt.core import machine as machine_mod
from rebuilt.core import runner


@dataclass
class Check:
    """One row of any check: before a build (the doctor's) or before a benchmark (rebuilt.tools.bench.preflight)."""

    name: str
    status: str  # ok | warn | fail
    found: str  # what was found
    todo: str = ""  # what to do about it
    data: dict = field(default_factory=dict)  # what was measured, for stored runs and JSON

    def line(self) -> str:
        return f"[{self.status}] {self.name}: {self.found}" + (f" ({self.todo})" if self.todo else "")


@dataclass
class Context:
    settings: object
    machine: machine_mod.Machine
    recipes: list[str]  # the recipes the checks are for
    plan: object = None
    fix: bool = False
    probe_network: bool = True  # may checks reach the network (source hosts, the proxy port)? Not before a build.
    _versions: dict = field(default_factory=dict)
    _needs: needs_mod.Needs | None = None

    @property
    def needs(self) -> needs_mod.Needs:
        """What the plan's steps need from this machine (recipes' ``needs`` less what earlier steps provide)."""
        if self._needs is None:
            self._needs = needs_mod.of_plan(self.plan)
        return self._needs

    @property
    def cuda_build(self) -> bool:
        """Does a step of the plan run nvcc (so CUDA and the host compiler must fit)?"""
        return bool(self.needs.steps("nvcc"))

    def severity(self, *names: str) -> str:
        """``fail`` when a step needs one of ``names`` (default: nvcc) from this machine, else ``warn``."""
        return "fail" if any(self.needs.steps(n) for n in names or ("nvcc",)) else "warn"

    def needed_by(self, *names: str) -> str:
        """`` (needed by sgl-kernel:rebuild, torch:develop)`` for the steps needing ``names``, or ''."""
        who = [w for w in (self.needs.who(n) for n in names) if w]
        return f" (needed by {'; '.join(dict.fromkeys(who))})" if who else ""

    def tool(self, name: str) -> str | None:
        """A tool's version: from the machine probe, else asked of the tool itself (once)."""
        if name in self.machine.tools:
            return self.machine.tools[name]
        if name not in self._versions:
            self._versions[name] = self.machine.tool_version(name)
        return self._versions[name]

    def env_tool(self, name: str) -> tuple[str | None, str]:
        """(version, where) of a tool as the build steps find it: the target environment's bin first
        (pip-installed cmake/ninja/uv), else PATH."""
        local = Path(self.settings.python()).parent / name
        if local.is_file() and os.access(local, os.X_OK):
            return self.tool(str(local)), str(local)
        return self.tool(name), runner.which(name) or name


def major_minor(v: str | None) -> str | None:
    """``12.9.1`` -> ``12.9``; None when no version is in ``v``."""
    m = re.match(r"(\d+)\.(\d+)", v or "")
    return f"{m.group(1)}.{m.group(2)}" if m else None


def version_key(v: str) -> tuple[int, ...]:
    """``12.10`` sorts after ``12.9``."""
    return tuple(int(p) for p in re.findall(r"\d+", v))
