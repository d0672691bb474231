"""A serving benchmark against a profile: use the roles ``serve.up`` started, or start and stop them.

``serving()`` yields the entry role's base URL and the provenance a bench run stores: the
profile, its file, whether the bench started it, and every role's resolved argv, env,
port and GPUs, secrets redacted (state.json holds them redacted already).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from rebuilt.tools.serve import lifecycle
from rebuilt.tools.serve import state as state_mod


def _provenance(state: dict, started: bool) -> dict:
    keep = ("argv", "env", "port", "url", "gpus", "cwd", "pid", "started")
    return {"profile": state.get("profile"), "path": state.get("path"), "entry": state.get("entry"),
            "python": state.get("python"), "host_ip": state.get("host_ip"), "started_by_bench": started,
            "roles": {n: {k: e.get(k) for k in keep} for n, e in (state.get("roles") or {}).items()}}


def _running(state: dict) -> bool:
    roles = state.get("roles") or {}
    return bool(roles) and state.get("entry") in roles and all(state_mod.running(e) for e in roles.values())


def _settings(workdir: Path | str):
    from rebuilt.core import settings as settings_mod

    return settings_mod.resolve({"workdir": str(workdir)})


def entry_url(profile: str, workdir: Path | str) -> str:
    """The entry role's URL: from state.json when started, else as the profile resolves (dry runs)."""
    from rebuilt.tools.serve import profile as profile_mod
    from rebuilt.tools.serve import resolve

    state = state_mod.load_state(Path(workdir), profile)
    if (state.get("roles") or {}).get(state.get("entry")):
        return state["roles"][state["entry"]]["url"]
    prof = profile_mod.load(profile)
    res = resolve.resolve(prof, _settings(workdir), python="python", workdir=str(workdir), only=prof.entry)
    return res.roles[0].url


@contextlib.contextmanager
def serving(profile: str, *, python: str, workdir: Path | str, settings=None,
            echo: Callable[[str], None] = print) -> Iterator[tuple[str, dict]]:
    """(entry URL, provenance); starts the profile when it does not run, and then stops it afterwards."""
    settings = settings if settings is not None else _settings(workdir)
    state = state_mod.load_state(Path(workdir), profile)
    started = not _running(state)
    if started:
        echo(f"starting serving profile {profile} for this run (stopped after it)")
        state = lifecycle.up(settings, profile, python=python, echo=echo)
    else:
        from rebuilt.errors import CheckFailed
        from rebuilt.tools.serve import health

        entry = state["roles"][state["entry"]]
        probe = health.check(entry["url"], entry.get("health", "/health"),
                             tuple(entry.get("ready", ())))
        if not probe.ok:
            raise CheckFailed(f"serving profile {profile} runs but its {state['entry']} does not answer "
                              f"({probe.detail})", hint=f"inv serve.status --profile {profile}; inv serve.logs")
        echo(f"using serving profile {profile} started by serve.up ({entry['url']})")
    try:
        yield state["roles"][state["entry"]]["url"], _provenance(state, started)
    finally:
        if started:
            lifecycle.down(settings, profile, echo=echo)
