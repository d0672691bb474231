"""``serve.smoke``: the chat completion people send by hand after a launch, with its timings.

The request is the one people send with curl after a launch (``max_tokens: 1``, not streamed)
to the profile's entry role (the router, or the single server), retried while the server answers
502/503/504, all within ``--timeout`` (``rebuilt.core.net``). A profile whose role no longer runs is
reported at once: nothing is sent to whatever else may listen on its port now.
"""

from __future__ import annotations

from collections.abc import Callable

from rebuilt.core import net
from rebuilt.core.secret import Redactor
from rebuilt.errors import CheckFailed, ConfigError
from rebuilt.tools.serve import health
from rebuilt.tools.serve.state import load_state, running


def target(settings, name: str, role: str | None = None, url: str | None = None) -> tuple[str, str]:
    """(URL, model) of the role to ask: --url, else the started role (entry by default) from state.json."""
    state = load_state(settings.workdir(), name)
    model = settings["serve.served_model_name"] or state.get("model") or ""
    if url:
        return url, model
    roles = state.get("roles") or {}
    if not roles:
        raise ConfigError(f"profile {name} was never started in {settings.workdir()}",
                          hint=f"inv serve.up {name}, or pass --url http://host:port")
    role = role or state.get("entry")
    if role not in roles:
        raise ConfigError(f"role {role!r} of profile {name} was not started in {settings.workdir()}",
                          hint=f"inv serve.up {name}, or pass --url http://host:port")
    if not running(roles[role]):
        raise CheckFailed(f"profile {name} is not running: its {role} (pid {roles[role].get('pid')}) has "
                          f"{'been stopped' if roles[role].get('status') == 'stopped' else 'died'}; nothing was sent",
                          hint=f"inv serve.status {name}; inv serve.up {name}")
    return roles[role]["url"], model


def run(settings, name: str, *, role: str | None = None, url: str | None = None, prompt: str = health.PROMPT,
        max_tokens: int = 1, timeout: float = 60, retries: int = 10, expect: str | None = None,
        red: Redactor | None = None, echo: Callable[[str], None] = print) -> health.Answer:
    """Send the request, print answer, time to first byte and total latency; CheckFailed on an error answer."""
    red = red or Redactor()
    deadline = net.Deadline(timeout)  # the whole command: the model lookup, the request and its retries
    base, model = target(settings, name, role, url)
    model = model or health.served_model(base, deadline) or "default"
    echo(f"POST {red(base)}/v1/chat/completions (model {red(model)}, max_tokens {max_tokens})")
    ans = health.chat(base, model, prompt=prompt, max_tokens=max_tokens, deadline=deadline, retries=retries)
    ttfb = f"{ans.ttfb_s * 1000:.1f} ms" if ans.ttfb_s is not None else "-"
    if not ans.ok and ans.status is None:
        spent = deadline.seconds - deadline.left()
        raise CheckFailed(f"no answer from {red(base)} after {spent:.1f} s (--timeout {timeout:g}): "
                          f"{red(ans.error)}", hint="inv serve.status; inv serve.logs")
    if not ans.ok:
        detail = f"\n  body: {red(ans.body)}" if ans.body else ""
        raise CheckFailed(f"the server answered with an error: {red(ans.error)} "
                          f"(after {ans.total_s * 1000:.1f} ms){detail}")
    echo(f"answer: {red(ans.text)!r}")
    echo(f"time to first byte {ttfb}, total {ans.total_s * 1000:.1f} ms, HTTP {ans.status}")
    if expect and expect.lower() not in ans.text.lower():
        raise CheckFailed(f"the answer {red(ans.text)!r} does not contain {expect!r}")
    return ans
