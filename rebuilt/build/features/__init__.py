"""What every build gets around its steps, as data: one ordered tuple of features.

A feature may give each planned step env changes (``env``), add plan warnings (``warnings``) and
make a builder hook (``hook``: an object with optional methods ``up_to_date(rp)``,
``before_recipe(rp)``, ``before_step(step, env)``, ``after_step(step, result)``,
``after_recipe(rp, status, manifest)``). ``plan`` and ``builder`` take the tuple as a parameter
(default ``FEATURES``); a test passes a subset, or ``()`` for none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from rebuilt.build.features import ccache, offline, protect, proxy, shim, stamps


@dataclass(frozen=True)
class Feature:
    name: str
    # (settings, recipe, step, ctx, workdir, machine) -> {NAME: value, or None to unset}
    env: Callable[..., dict] | None = None
    # (settings, recipe, steps, ctx, workdir, machine) -> [warning, ...]
    warnings: Callable[..., list] | None = None
    # (settings, workdir, console, opts, machine) -> a hook object (machine: the plan's probe, or None)
    hook: Callable | None = None


# THE order, for the env and for the hooks alike:
# - env: each feature sees the env the features before it made and may replace a value; a PATH
#   folder it adds goes IN FRONT of the earlier ones. So ccache's masquerade folder comes before
#   the shim's (ccache runs first, then the compiler the shim chose), and offline's closed proxy
#   replaces the proxy's URL.
# - hooks: called in this order for every event. The guard is first, so its journal is open before
#   any other hook (offline's missing-bundle check) can stop a step; stamps decide "up to date"
#   before the shim and ccache prepare anything.
FEATURES = (
    Feature("guard", env=protect.constraints, hook=protect.Guard),
    Feature("stamps", hook=stamps.Stamps),
    Feature("shim", env=shim.host_compiler, hook=shim.ShimHook),
    Feature("ccache", env=ccache.ccache_env, hook=ccache.CcacheHook),
    Feature("proxy", env=proxy.proxy_env, warnings=proxy.insecure_warning),
    Feature("offline", env=offline.offline_env, warnings=offline.missing_warning, hook=offline.Hook),
)


def apply(features, settings, recipe, step, ctx, workdir: Path, machine):
    """``step`` with the env of each feature merged in, in tuple order (see ``FEATURES``)."""
    for f in features:
        if f.env is None:
            continue
        env = dict(step.env)
        for name, value in f.env(settings, recipe, step, ctx, workdir, machine).items():
            if name == "PATH" and env.get("PATH") and value:  # both prepend: this feature's folders first
                value = value.replace("${PATH}", env["PATH"])
            env[name] = value
        step = replace(step, env=env)
    return step


def warnings(features, settings, recipe, steps, ctx, workdir: Path, machine) -> list[str]:
    return [w for f in features if f.warnings for w in f.warnings(settings, recipe, steps, ctx, workdir, machine)]


def hooks(features, settings, workdir: Path, console, opts, machine=None) -> list:
    """One hook object per feature that has one, in tuple order; ``machine``: the probe the plan was made with."""
    return [f.hook(settings, workdir, console, opts, machine) for f in features if f.hook]
