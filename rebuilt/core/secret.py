"""Secret settings: which keys carry credentials, and a ``str`` that never prints them.

A setting is secret when its key matches ``SECRET_KEYS`` (one list for every module: a
new credential-bearing setting only needs a pattern here). URL-like secrets
(``proxy.url``, ``<recipe>.url``, ``ccache.remote``) hide their userinfo; the others
(``*.password``, ``*.token``, ...) hide the whole value.

``Secret`` is a ``str`` holding the real value, so it can be passed to programs and
parsed like any URL, but ``str()``, ``repr()``, f-strings and ``%s`` show it redacted.
``reveal()`` returns the plain value for the few places that hand it to a program as
text. Every Secret registers its sensitive parts with ``rebuilt.core.text`` so that
``redact()`` masks them in any text, tool output included.
"""

from __future__ import annotations

import fnmatch
import re
import urllib.parse

# key patterns (fnmatch) of credential-bearing settings, and whether the value is a URL
SECRET_KEYS: tuple[tuple[str, str], ...] = (
    ("proxy.url", "url"),
    ("*.url", "url"),
    ("*.remote", "url"),
    ("*.password", "value"),
    ("*.passwd", "value"),
    ("*.token", "value"),
    ("*.api_key", "value"),
    ("*.secret", "value"),
)

# schemes whose userinfo is a login name only (ssh keys do the authentication)
_LOGIN_ONLY = ("ssh", "git+ssh", "ssh+git", "git")
# user:password@host with no scheme: the form a shell export often takes, and never a valid URL
_SCHEMELESS_CREDS = re.compile(r"^[^\s/@:]+:[^\s/]*@[^\s@/]+")


def kind_of(key: str) -> str | None:
    """"url", "value" or None (not a secret) for a setting key."""
    for pattern, kind in SECRET_KEYS:
        if fnmatch.fnmatchcase(key, pattern):
            return kind
    return None


def userinfo(url: str) -> tuple[str, str] | None:
    """(user, password) of a URL, percent-decoded; None without userinfo."""
    if "://" not in url:
        return None
    netloc = url.split("://", 1)[1].split("/", 1)[0]
    if "@" not in netloc:
        return None
    info = netloc.rsplit("@", 1)[0]
    user, _, password = info.partition(":")
    return urllib.parse.unquote(user), urllib.parse.unquote(password)


def carries_credentials(url: str) -> bool:
    """True when ``url`` holds a password or token (a bare ssh login name does not count)."""
    if schemeless_credentials(url):
        return True
    info = userinfo(url)
    if not info:
        return False
    scheme = url.split("://", 1)[0].lower()
    return bool(info[1]) or (bool(info[0]) and scheme not in _LOGIN_ONLY)


def schemeless_credentials(url: str) -> bool:
    """``user:password@host[:port]`` without ``scheme://``."""
    return "://" not in url and bool(_SCHEMELESS_CREDS.match(url.strip()))


def strip_credentials(url: str) -> str:
    """The URL without its userinfo (``https://tok@host/x`` -> ``https://host/x``)."""
    if not userinfo(url):
        return url
    scheme, rest = url.split("://", 1)
    netloc, slash, path = rest.partition("/")
    return f"{scheme}://{netloc.rsplit('@', 1)[1]}{slash}{path}"


class Secret(str):
    """A credential-bearing setting value: the real text, printed redacted."""

    kind = "value"

    def __new__(cls, value: str, kind: str = "value"):
        obj = super().__new__(cls, value)
        obj.kind = kind
        from rebuilt.core.text import register_secret

        if kind == "value":
            register_secret(str.__str__(obj))
        else:
            info = userinfo(value)
            if info and info[1]:
                register_secret(info[1])
            elif info and carries_credentials(value):  # a token given as the user name
                register_secret(info[0])
        return obj

    def reveal(self) -> str:
        """The plain value, for handing to a program; never print it."""
        return str.__str__(self)

    def __str__(self) -> str:
        from rebuilt.core.text import redact

        if self.kind == "value":
            return "***" if str.__len__(self) else ""
        return redact(self.reveal())

    def __repr__(self) -> str:
        return repr(str(self))

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __reduce__(self):
        return (Secret, (self.reveal(), self.kind))


def reveal(value):
    """``value.reveal()`` for a Secret, the value itself otherwise."""
    return value.reveal() if isinstance(value, Secret) else value


def shown(value):
    """What may be printed or stored for a setting value: a Secret's redacted text, URLs in text redacted."""
    from rebuilt.core.text import redact

    if isinstance(value, Secret):
        return str(value)
    if isinstance(value, dict):  # an open table (fleet.hosts): every value inside shown the same way
        return {k: shown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shown(v) for v in value]
    return redact(value) if isinstance(value, str) else value
