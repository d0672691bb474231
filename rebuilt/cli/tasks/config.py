"""`inv config`: the resolved settings and where each value came from."""

from __future__ import annotations

from invoke import Collection, task

from rebuilt.cli.tasks._entry import entry
from rebuilt.cli.tasks.common import BUILD_HELP, resolve


@task(name="config", help={"stack": BUILD_HELP["stack"], "key": "show only keys starting with this prefix",
                           "json": "print JSON (value and source per key)", "set_": BUILD_HELP["set_"]},
      iterable=["set_"])
@entry
def config(c, stack=None, key=None, json=False, set_=None):
    """Print the resolved settings with the layer each value came from (secrets redacted)."""
    import json as json_mod

    from rebuilt.core.secret import shown

    settings = resolve(stack=stack, set_=set_)
    rows = [(k, v.value, v.source) for k, v in settings.items() if not key or k.startswith(key)]
    if key and not rows:
        from rebuilt.core.text import did_you_mean
        from rebuilt.errors import ConfigError

        known = [k for k, _ in settings.items()]
        raise ConfigError(f"--key {key!r}: no setting starts with it{did_you_mean(key, known)}",
                          hint="inv config lists every setting")
    if json:
        print(json_mod.dumps({k: {"value": shown(v), "source": s} for k, v, s in rows},
                             indent=2))
        return
    width = max((len(k) for k, _, _ in rows), default=10)
    print(f"stack {settings.stack.name} ({settings.stack.path})")
    print(f"target python {_target(settings)}")
    from rebuilt.build.patches import patches_dir

    print(f"patches {patches_dir(settings)} (your patches: src.patch-new writes them here, builds apply them)")
    from rebuilt.tools.fleet.inventory import describe

    for k, v, s in rows:
        block = describe(settings, k)  # the inventory: a line per host or group (docs/FLEET.md)
        print(f"{k:<{width}}  {block[0] if block else json_mod.dumps(shown(v)):<40}  {s}")
        for line in block[1:] if block else ():
            print(line)


def _target(settings) -> str:
    """The target interpreter and the rule that chose it; a refused one says why, so config still shows it."""
    from rebuilt.errors import ConfigError

    try:
        return str(settings.target())
    except ConfigError as err:
        return f"none: {err.render()}"


ns = Collection(config)
