"""Text helpers: did-you-mean, durations, templates (the redaction of secrets is rebuilt/core/secret.py)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean X?)' when a close match exists, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def fmt_seconds(seconds: float) -> str:
    """``75.3`` -> ``1m15s``; short durations keep one decimal."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


_TEMPLATE = re.compile(r"(?<!\$)\{([A-Za-z_][A-Za-z0-9_.\-]*)\}")


def render(template: str, context: Mapping[str, object], *, where: str = "") -> str:
    """Fill ``{name}`` placeholders from ``context``; ``${VAR}`` (shell/env) is left alone."""
    from rebuilt.core.secret import Secret, reveal
    from rebuilt.errors import ConfigError

    def sub(m: re.Match) -> str:
        key = m.group(1)
        if key not in context:
            raise ConfigError(f"{where}unknown placeholder {{{key}}}{did_you_mean(key, context)}")
        value = context[key]
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, (list, tuple)):
            return " ".join(str(v) for v in value)
        return reveal(value) if isinstance(value, Secret) else str(value)  # a filled template goes to a program

    return _TEMPLATE.sub(sub, template)


def expand_env(value: str, environ: Mapping[str, str]) -> str:
    """Expand ``${NAME}`` against ``environ`` (missing -> ''), and drop empty ``:`` path items."""
    out = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: environ.get(m.group(1), ""), value)
    if ":" in out:
        parts = out.split(":")
        if any(p == "" for p in parts) and not out.startswith(("http", "redis")):
            out = ":".join(p for p in parts if p != "")
    return out
