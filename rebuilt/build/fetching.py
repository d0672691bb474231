"""src.fetch and src.status: checkouts of the stack's components."""

from __future__ import annotations

import json

from rebuilt.build import builder, sources
from rebuilt.core import recipes
from rebuilt.core.settings import Settings


def fetch(settings: Settings, names: list[str], *, ref: str | None, dry_run: bool, verbose: bool) -> None:
    """Fetch (and patch) the sources of ``names`` (default: every component of the stack)."""
    names = names or [n for n in settings.stack.components if recipes.get(n).source]
    if ref:
        if len(names) != 1:
            from rebuilt.errors import ConfigError

            raise ConfigError("--ref needs exactly one --recipe")
        from rebuilt.core import settings as settings_mod

        owner = recipes.get(names[0]).source.from_ or names[0]
        settings = settings_mod.resolve({**_flags(settings), f"{owner}.ref": ref})
    builder.build(settings, names, builder.Options(dry_run=dry_run, checks=False, verbose=verbose, source_only=True))


def _flags(settings: Settings) -> dict:
    return {k: v.value for k, v in settings.items() if v.source.startswith("flag")}


def rows(settings: Settings) -> list[dict]:
    """One status row per checkout of the stack's components."""
    workdir = settings.workdir()
    out, seen = [], set()
    others = [n for n, r in recipes.all_recipes().items() if n not in settings.stack.components and r.source
              and (workdir / "src" / r.source.dir / ".git").exists()]  # fetched by hand, outside the stack
    for name in [*settings.stack.components, *others]:
        src = recipes.get(name).source
        if not src:
            continue
        owner = recipes.get(src.from_) if src.from_ else recipes.get(name)
        path = workdir / "src" / owner.source.dir
        if path in seen:
            continue
        seen.add(path)
        out.append({"recipe": owner.name, "pinned": settings[f"{owner.name}.ref"], **sources.status(path)})
    return out


def status(settings: Settings, *, as_json: bool) -> None:
    data = rows(settings)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    print(f"{'recipe':<12} {'pinned':<14} {'checked out':<22} {'commit':<12} {'dirty':<6} patches")
    for r in data:
        if not r["present"]:
            print(f"{r['recipe']:<12} {r['pinned']:<14} {'(not fetched)':<22}")
            continue
        print(f"{r['recipe']:<12} {r['pinned']:<14} {(r['ref'] or r['describe'] or '?'):<22} "
              f"{(r['commit'] or '?')[:12]:<12} {'yes' if r['dirty'] else 'no':<6} {', '.join(r['patches']) or '-'}")
