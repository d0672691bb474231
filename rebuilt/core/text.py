"""Text helpers: did-you-mean, secret redaction, durations, templates."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping

# user[:password]@ up to the last @ before the path: a raw "@" in a password is redacted whole.
_URL_CREDS = re.compile(r"""(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<creds>[^/\s"'<>]*)@""")
# user:password@host without a scheme (a mistyped proxy URL, an export line): the userinfo is masked too.
_BARE_CREDS = re.compile(r"""(?<![\w.%+\-/:@])[\w.%+\-]+:[^\s/"'<>]*@(?=[\w\[])""")
_MIN_SECRET = 4  # shorter values would mask ordinary words; their URL form is still masked
_secrets: set[str] = set()
_secret_re: re.Pattern | None = None


def register_secret(value: str) -> None:
    """Mask ``value`` (and its percent-encoded form) wherever ``redact`` sees it from now on."""
    global _secret_re
    import urllib.parse

    value = str.__str__(value) if isinstance(value, str) else ""
    forms = {value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value, safe="")}
    new = {f for f in forms if len(f) >= _MIN_SECRET} - _secrets
    if new:
        _secrets.update(new)
        _secret_re = re.compile("|".join(re.escape(v) for v in sorted(_secrets, key=len, reverse=True)))


def forget_secrets() -> None:
    """Drop every registered value (tests)."""
    global _secret_re
    _secrets.clear()
    _secret_re = None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean X?)' when a close match exists, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def redact(text: str) -> str:
    """Mask credentials: the whole userinfo of every URL (``http://u:p@h`` -> ``http://***@h``), a
    ``user:password@host`` without scheme, and every registered secret value (``register_secret``)."""
    if not isinstance(text, str):
        return text
    text = str.__str__(text)
    if "@" in text:
        text = _URL_CREDS.sub(lambda m: f"{m.group('scheme')}***@", text)
        text = _BARE_CREDS.sub("***@", text)
    if _secret_re is not None:
        text = _secret_re.sub("***", text)
    return text


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
        return str.__str__(value) if isinstance(value, str) else str(value)  # a Secret's value, not its redacted text

    return _TEMPLATE.sub(sub, template)


def expand_env(value: str, environ: Mapping[str, str]) -> str:
    """Expand ``${NAME}`` against ``environ`` (missing -> ''), and drop empty ``:`` path items."""
    out = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: environ.get(m.group(1), ""), value)
    if ":" in out:
        parts = out.split(":")
        if any(p == "" for p in parts) and not out.startswith(("http", "redis")):
            out = ":".join(p for p in parts if p != "")
    return out
