"""Invoke collections, one module per domain, composed into the root namespace.

Each domain module exposes ``ns = Collection(...)``. Modules are imported here
lazily enough that ``inv --list`` stays fast: a task imports its heavy modules
inside its body.
"""

from __future__ import annotations

import importlib

from invoke import Collection

# (module, name in the root namespace or None to merge its tasks at the top level)
DOMAINS: list[tuple[str, str | None]] = [
    ("build", "build"),
    ("src", "src"),
    ("config", None),
    ("bench", "bench"),
    ("profile", "profile"),
    ("torch", "torch"),
    ("cache", "cache"),
    ("doctor", None),
    ("proxy", "proxy"),
    ("serve", "serve"),
]


def namespace() -> Collection:
    """Build the root collection from the domain modules."""
    root = Collection()
    for module, name in DOMAINS:
        mod = importlib.import_module(f"rebuilt.tasks.{module}")
        if name is None:
            for task in mod.ns.tasks.values():
                root.add_task(task)
        else:
            root.add_collection(mod.ns, name=name)
    root.configure({"rebuilt": {}})
    return root
