"""What a plan needs from the machine: each step's ``needs`` (recipes/*.toml) less what an earlier step
of the same plan ``provides``.

The checks judge the state the plan will produce: ``torch:develop`` provides torch, so the steps after
it that need torch do not need it from the machine; ``vllm:build-requirements`` pip-installs cmake and
ninja (vLLM's requirements-build.txt), so vLLM's wheel step does not need them on PATH. A check whose
need no step has is not run before a build (flashinfer's editable and index modes run no nvcc).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet


@dataclass
class Needs:
    machine: dict[str, list[tuple[str, SpecifierSet]]] = field(default_factory=dict)  # need -> [(step, spec)]
    planned: dict[str, list[str]] = field(default_factory=dict)  # need -> steps an earlier step satisfies
    providers: dict[str, list[str]] = field(default_factory=dict)  # need -> steps that provide it, in order

    def steps(self, name: str) -> list[str]:
        """The steps that need ``name`` from the machine (no earlier step provides it)."""
        return [title for title, _ in self.machine.get(name, [])]

    def used(self, name: str) -> bool:
        """Does any step of the plan need ``name`` (from the machine or from an earlier step)?"""
        return bool(self.machine.get(name) or self.planned.get(name))

    def provider(self, name: str) -> str | None:
        return (self.providers.get(name) or [None])[0]

    def minimums(self, name: str) -> list[tuple[str, SpecifierSet]]:
        """(step, specifier) of the steps that need a version of ``name`` from the machine."""
        return [(title, spec) for title, spec in self.machine.get(name, []) if str(spec)]

    def who(self, name: str, limit: int = 3) -> str:
        """``sgl-kernel:rebuild, torch:develop`` (and how many more)."""
        titles = self.steps(name)
        more = f" and {len(titles) - limit} more" if len(titles) > limit else ""
        return ", ".join(titles[:limit]) + more


def of_plan(plan) -> Needs:
    """Walk the plan's steps in order: a need is met by the machine unless an earlier step provides it."""
    out = Needs()
    provided: set[str] = set()
    for step in getattr(plan, "steps", ()) or ():
        for text in getattr(step, "needs", ()):
            req = Requirement(text)
            if req.name in provided:
                out.planned.setdefault(req.name, []).append(step.title)
            else:
                out.machine.setdefault(req.name, []).append((step.title, req.specifier))
        for name in getattr(step, "provides", ()):
            out.providers.setdefault(name, []).append(step.title)
            provided.add(name)
    return out
