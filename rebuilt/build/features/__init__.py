"""Cross-cutting step features applied to every planned step: one function each.

Each feature looks at a planned step and returns env changes (and may add
plan warnings). Features: protected-install constraints (guard), and the hooks
where the host-compiler shim, ccache and the proxy plug in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

# A feature: (settings, recipe, step, ctx, workdir, machine) -> dict of env changes
Feature = Callable[..., dict]
# (order, feature): applied by order whatever the import order; a later one's PATH folders come first.
FEATURES: list[tuple[int, Feature]] = []
# A warning source: (settings, recipe, steps, ctx, workdir, machine) -> list of strings
WARNINGS: list[Callable[..., list]] = []


def feature(order: int = 50):
    """Register a step feature; ``order`` decides PATH precedence (higher = earlier on PATH)."""

    def register(fn: Feature) -> Feature:
        FEATURES.append((order, fn))
        return fn

    return register


def apply(settings, recipe, step, ctx, workdir: Path, machine):
    env = dict(step.env)
    for _, fn in sorted(FEATURES, key=lambda f: f[0]):
        for name, value in fn(settings, recipe, step, ctx, workdir, machine).items():
            if name == "PATH" and env.get("PATH") and value:
                # both prepend: keep the feature's dirs first
                value = value.replace("${PATH}", env["PATH"])
            env[name] = value
    return replace(step, env=env)


def warnings(settings, recipe, steps, ctx, workdir: Path, machine) -> list[str]:
    out: list[str] = []
    for fn in WARNINGS:
        out += fn(settings, recipe, steps, ctx, workdir, machine)
    return out


@feature(order=0)
def constraints(settings, recipe, step, ctx, workdir, machine) -> dict:
    """Installing steps run with a pip constraints file pinning the protected distributions."""
    if step.installs and settings["protected"]:
        return {"PIP_CONSTRAINT": str(workdir / "state" / "constraints.txt")}
    return {}
