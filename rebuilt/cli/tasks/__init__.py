"""Invoke collections, one module per domain, composed into the root namespace.

Each domain module exposes ``ns = Collection(...)``. Modules are imported here
lazily enough that ``inv --list`` stays fast: a task imports its heavy modules
inside its body.
"""

from __future__ import annotations

import sys

from invoke import Collection, Task

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
    ("bisect", None),
    ("serve", "serve"),
    ("fleet", "fleet"),
]


# One flag, one letter, in every task; every other flag is long only (invoke would otherwise give
# each task's flags the first free letter, so -t meant --set in one task and something else in another).
# -f is --force, and --follow in serve.logs, which has no --force (as in `tail -f`).
SHORT_FLAGS = {"stack": "s", "jobs": "j", "python": "p", "workdir": "w", "verbose": "v", "dry_run": "n",
               "force": "f", "set_": "D", "ref": "r", "output": "o", "out": "o", "follow": "f"}


class FixedShortFlags(Task):
    """A task whose short flags come from SHORT_FLAGS only."""

    def __deepcopy__(self, memo):
        # invoke deep-copies the whole namespace when it loads tasks.py (Collection.from_module) and a
        # task is never changed afterwards: sharing it saves most of what `inv --list` spent there
        return self

    def arg_opts(self, name, default, taken_names):
        self.auto_shortflags = False
        opts = super().arg_opts(name, default, taken_names)
        if name in SHORT_FLAGS and name not in self.positional:
            opts["names"] = [*opts["names"], SHORT_FLAGS[name]]
        return opts


def _fixed_short_flags(coll: Collection) -> None:
    for task in coll.tasks.values():
        task.__class__ = FixedShortFlags
    for sub in coll.collections.values():
        _fixed_short_flags(sub)


def namespace() -> Collection:
    """Build the root collection from the domain modules."""
    root = Collection()
    for module, name in DOMAINS:
        __import__(f"rebuilt.cli.tasks.{module}")  # (not importlib: -X importtime sees only the import statement's path)
        mod = sys.modules[f"rebuilt.cli.tasks.{module}"]
        if name is None:
            for task in mod.ns.tasks.values():
                root.add_task(task)
        else:
            mod.ns.name = name  # --list-format json reports the collection's own name
            root.add_collection(mod.ns, name=name)
    root.configure({"rebuilt": {}})
    _fixed_short_flags(root)
    return root
