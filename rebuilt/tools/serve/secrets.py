"""Which serving values are secret, and a redactor that masks them in every text rebuilt writes.

Secret settings are the keys ending in ``password``, ``token``, ``secret`` or ``api_key``
(``serve.mooncake.password``) and the userinfo of any URL (``serve.mooncake.url``).
Environment variables whose name holds PASSWORD or SECRET, or ends in TOKEN or API_KEY, are masked
whole wherever an environment is shown. A profile may not hold such a value itself: it
takes it from a setting (``{serve.mooncake.password}``) or the caller's environment
(``${NAME}``).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from rebuilt.core.text import redact

SECRET_KEY = re.compile(r"(^|[._])(password|passwd|token|secret|api_key)$")
SECRET_ENV = re.compile(r"PASSWORD|PASSWD|SECRET|(^|_)(TOKEN|API_KEY|ACCESS_KEY|AUTH)$")
MASK = "***"
_MIN = 3  # shorter values would mask ordinary text; their URL form is masked all the same


def plain(value: Any) -> Any:
    """The real value of a setting (a secret setting may print redacted but hands over its value)."""
    reveal = getattr(value, "reveal", None)
    return reveal() if callable(reveal) else value


def secret_key(key: str) -> bool:
    return bool(SECRET_KEY.search(key))


def secret_env(name: str) -> bool:
    return bool(SECRET_ENV.search(name.upper()))


def url_password(text: str) -> str | None:
    """The password (or token user) in a URL's userinfo, or None."""
    if "://" not in text:
        return None
    netloc = text.split("://", 1)[1].split("/", 1)[0]
    if "@" not in netloc:
        return None
    user, _, password = netloc.rsplit("@", 1)[0].partition(":")
    return urllib.parse.unquote(password or user) or None


class Redactor:
    """Masks known secret values, then the userinfo of every URL (``rebuilt.core.text.redact``)."""

    def __init__(self, values: Iterable[str] = ()):
        self._values: set[str] = set()
        for v in values:
            self.add(v)

    def add(self, value: Any) -> None:
        value = plain(value)
        if isinstance(value, str) and len(value) >= _MIN:
            self._values.update({value, urllib.parse.quote(value, safe="")})
            inner = url_password(value)
            if inner and len(inner) >= _MIN:
                self._values.add(inner)

    def values(self) -> list[str]:
        """The known secret values (handed to the log pipe through its environment, never argv)."""
        return sorted(self._values)

    def __call__(self, text: Any) -> Any:
        if not isinstance(text, str):
            return text
        text = str.__str__(text)
        for v in sorted(self._values, key=len, reverse=True):
            text = text.replace(v, MASK)
        return redact(text)

    def env(self, env: Mapping[str, str | None]) -> dict[str, str | None]:
        """An environment for display: secret-named variables masked whole, the rest redacted."""
        return {k: (MASK if v and secret_env(k) else (v if v is None else self(v))) for k, v in env.items()}

    def argv(self, argv: Iterable[str]) -> list[str]:
        return [self(a) for a in argv]

    def deep(self, data: Any) -> Any:
        """Redact every string inside dicts and lists (state files, run provenance)."""
        if isinstance(data, dict):
            return {k: self.deep(v) for k, v in data.items()}
        if isinstance(data, (list, tuple)):
            return [self.deep(v) for v in data]
        return self(data)


def from_settings(items: Iterable[tuple[str, Any]]) -> Redactor:
    """A redactor knowing every secret setting's value (``items``: key, value pairs)."""
    r = Redactor()
    for key, value in items:
        value = plain(value)
        if not isinstance(value, str) or not value:
            continue
        if secret_key(key):
            r.add(value)
        elif url_password(value):
            r.add(url_password(value))
    return r
