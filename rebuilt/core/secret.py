"""Secrets: which settings and variables carry credentials, a type that never prints them, and redaction.

One list for every module: a setting is secret when its key matches ``SECRET_KEYS``; an
environment variable is masked whole when its name matches ``SECRET_ENV``. URL-like secrets
(``proxy.url``, ``<recipe>.url``, ``ccache.remote``) hide their userinfo; the others
(``*.password``, ``*.token``, ...) hide the whole value.

``Secret`` is modelled on pip's ``HiddenText`` (pip/_internal/utils/misc.py): it is NOT a
``str``, so ``str()``, ``repr()``, f-strings and ``format`` give the redacted form, and string
operations (slicing, ``+``, ``%``, ``.split()``, ``len``, iteration) refuse with a TypeError
instead of handing out pieces of the value. The value comes out only through ``reveal_args`` /
``reveal_env`` where a process is started (rebuilt/core/runner.py, like pip's
``reveal_command_args`` in pip/_internal/utils/subprocess.py) and ``reveal`` where a file for a
tool is written (0600). Every Secret registers its sensitive parts so that ``redact()`` masks
them in any text, tool output included; ``Redactor`` does the same for a set of values that
travels to another process (a server's log pipe).
"""

from __future__ import annotations

import fnmatch
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

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
# environment variables shown masked whole wherever an environment is displayed
SECRET_ENV = re.compile(r"PASSWORD|PASSWD|SECRET|(^|_)(TOKEN|API_KEY|ACCESS_KEY|AUTH)$")
MASK = "***"

# schemes whose userinfo is a login name only (ssh keys do the authentication)
_LOGIN_ONLY = ("ssh", "git+ssh", "ssh+git", "git")
# user:password@host with no scheme: the form a shell export often takes, and never a valid URL
_SCHEMELESS_CREDS = re.compile(r"^[^\s/@:]+:[^\s/]*@[^\s@/]+")
# user[:password]@ up to the last @ before the path: a raw "@" in a password is redacted whole.
_URL_CREDS = re.compile(r"""(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<creds>[^/\s"'<>]*)@""")
# user:password@host without a scheme (a mistyped proxy URL, an export line): the userinfo is masked too.
_BARE_CREDS = re.compile(r"""(?<![\w.%+\-/:@])[\w.%+\-]+:[^\s/"'<>]*@(?=[\w\[])""")
_MIN_SECRET = 4  # shorter values would mask ordinary words; their URL form is still masked
_MIN_KNOWN = 3  # a Redactor's values are secret by name, so shorter ones are masked too
_secrets: set[str] = set()
_secret_re: re.Pattern | None = None


def kind_of(key: str) -> str | None:
    """"url", "value" or None (not a secret) for a setting key."""
    for pattern, kind in SECRET_KEYS:
        if fnmatch.fnmatchcase(key, pattern):
            return kind
    return None


def secret_key(key: str) -> bool:
    """True for a setting whose whole value is a credential (``serve.mooncake.password``)."""
    return kind_of(key) == "value"


def secret_env(name: str) -> bool:
    """True for an environment variable shown masked whole (``HF_TOKEN``, ``..._PASSWORD``)."""
    return bool(SECRET_ENV.search(name.upper()))


def userinfo(url: str) -> tuple[str, str] | None:
    """(user, password) of a URL, percent-decoded; None without userinfo."""
    if "://" not in url:
        return None
    netloc = url.split("://", 1)[1].split("/", 1)[0]
    if "@" not in netloc:
        return None
    user, _, password = netloc.rsplit("@", 1)[0].partition(":")
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
    """``user:password@host[:port]`` without ``scheme://`` (the pattern cannot match ``scheme://``)."""
    return bool(_SCHEMELESS_CREDS.match(url.strip()))


def strip_credentials(url: str) -> str:
    """The URL without its userinfo (``https://tok@host/x`` -> ``https://host/x``)."""
    if not userinfo(url):
        return url
    scheme, rest = url.split("://", 1)
    netloc, slash, path = rest.partition("/")
    return f"{scheme}://{netloc.rsplit('@', 1)[1]}{slash}{path}"


def url_password(url: str) -> str | None:
    """The credential in a URL's userinfo (its password, else a token given as the user), or None."""
    info = userinfo(url) if carries_credentials(url) else None
    return (info[1] or info[0]) or None if info else None


# --------------------------------------------------------------------------- redaction


def register_secret(value: str) -> None:
    """Mask ``value`` (and its percent-encoded forms) wherever ``redact`` sees it from now on."""
    global _secret_re
    value = value if isinstance(value, str) else ""
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


def redact(text: Any) -> Any:
    """Mask credentials: the whole userinfo of every URL (``http://u:p@h`` -> ``http://***@h``), a
    ``user:password@host`` without scheme, and every registered value. A Secret gives its redacted
    form; anything else but text is returned as it is."""
    if isinstance(text, Secret):
        return text.redacted
    if not isinstance(text, str):
        return text
    if "@" in text:
        text = _URL_CREDS.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
        text = _BARE_CREDS.sub(f"{MASK}@", text)
    if _secret_re is not None:
        text = _secret_re.sub(MASK, text)
    return text


def shown(value: Any) -> Any:
    """What may be printed or stored for a setting value: a Secret's redacted text, URLs in text redacted."""
    return redact(value)


# --------------------------------------------------------------------------- the type

_REFUSED = "a Secret is not text: print it (redacted) or hand it to a program through rebuilt.core.runner"


class Secret:
    """A credential-bearing value: shown redacted, refused by string operations, revealed on purpose."""

    __slots__ = ("_value", "kind")

    def __init__(self, value: str, kind: str = "value"):
        value = value.reveal() if isinstance(value, Secret) else value
        if not isinstance(value, str):
            raise TypeError(f"a Secret holds text, not {type(value).__name__}")
        self._value, self.kind = value, kind
        if kind == "value":
            register_secret(value)
        else:
            credential = url_password(value)
            if credential:  # a password, or a token given as the user name (https://TOKEN@host/)
                register_secret(credential)

    def reveal(self) -> str:
        """The clear value: only for a process's argv/env (runner) or a tool's private file."""
        return self._value

    @property
    def redacted(self) -> str:
        if self.kind == "value":
            return MASK if self._value else ""
        return redact(self._value)

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return f"Secret({self.redacted!r})"

    def __format__(self, spec: str) -> str:
        return format(self.redacted, spec)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented  # never equal to text: comparing would tell the value piece by piece
        return (self.kind, self._value) == (other.kind, other._value)

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self):  # a pickled Secret comes back a Secret, never a plain string
        return (Secret, (self._value, self.kind))

    def _refuse(self, *_args, **_kw):
        raise TypeError(_REFUSED)

    __getitem__ = __add__ = __radd__ = __mul__ = __rmul__ = __mod__ = __rmod__ = _refuse
    __iter__ = __len__ = __contains__ = _refuse

    def __getattr__(self, name: str):
        if hasattr(str, name) and not name.startswith("__"):  # .split(), .startswith(), ...
            raise TypeError(f"{_REFUSED} (no .{name}())")
        raise AttributeError(name)


def reveal(value: Any) -> Any:
    """``value.reveal()`` for a Secret, the value itself otherwise."""
    return value.reveal() if isinstance(value, Secret) else value


def public(value: Any) -> Any:
    """What may be shown, compared and stored of a value: a Secret URL without its credentials
    (``https://TOKEN@host/x`` -> ``https://host/x``), any other Secret masked, anything else as it is."""
    if not isinstance(value, Secret):
        return value
    return strip_credentials(value.reveal()) if value.kind == "url" else value.redacted


def reveal_args(argv: Sequence) -> list[str]:
    """A command line as a process gets it: every Secret in clear, everything else as text."""
    return [a.reveal() if isinstance(a, Secret) else str(a) for a in argv]


def reveal_env(env: Mapping[str, Any]) -> dict[str, Any]:
    """An environment as a process gets it: every Secret value in clear."""
    return {k: reveal(v) for k, v in env.items()}


# --------------------------------------------------------------------------- known values


class Redactor:
    """Masks known secret values, then what ``redact`` masks; its values can travel to another process."""

    def __init__(self, values: Iterable[Any] = ()):
        self._values: set[str] = set()
        for v in values:
            self.add(v)

    def add(self, value: Any) -> None:
        value = reveal(value)
        if isinstance(value, str) and len(value) >= _MIN_KNOWN:
            self._values.update({value, urllib.parse.quote(value, safe="")})
            inner = url_password(value)
            if inner and len(inner) >= _MIN_KNOWN:
                self._values.add(inner)

    def values(self) -> list[str]:
        """The known secret values (handed to a log pipe through its environment, never argv)."""
        return sorted(self._values)

    def __call__(self, text: Any) -> Any:
        if isinstance(text, Secret):
            return text.redacted
        if not isinstance(text, str):
            return text
        for v in sorted(self._values, key=len, reverse=True):
            text = text.replace(v, MASK)
        return redact(text)

    def env(self, env: Mapping[str, Any]) -> dict[str, Any]:
        """An environment for display: secret-named variables masked whole, the rest redacted."""
        return {k: (MASK if v and secret_env(k) else (v if v is None else self(v))) for k, v in env.items()}

    def argv(self, argv: Iterable[Any]) -> list[Any]:
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
        value = reveal(value)
        if not isinstance(value, str) or not value:
            continue
        if secret_key(key):
            r.add(value)
        elif url_password(value):
            r.add(url_password(value))
    return r
