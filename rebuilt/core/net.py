"""HTTP requests that end by one deadline for the whole request, however the other side behaves.

A per-read time-out (what ``requests`` and ``urllib`` offer) is restarted by every byte: a
server that sends one byte every half second keeps a "3 s" request alive for as long as it
likes. Here every request has a ``Deadline``; the connection is opened with the time left, and
a timer shuts the socket down when the deadline passes, which ends any read in progress
(headers or body). Health checks, ``serve.smoke``, the proxy check and downloads use it.

Plain ``http.client`` underneath: http and https, an HTTP proxy (``CONNECT`` for https,
credentials from the proxy URL), redirects on request, the body into memory or a file.
"""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from rebuilt.core.secret import reveal

CHUNK = 1 << 16
REDIRECTS = (301, 302, 303, 307, 308)


class Deadline:
    """A point in time (monotonic clock) that a whole operation must end by."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self.end = time.monotonic() + self.seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def passed(self) -> bool:
        return self.left() <= 0


class NetError(Exception):
    """No (complete) answer: ``reason`` is short and free of credentials."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class TimedOut(NetError):
    pass


class Refused(NetError):
    pass


@dataclass
class Response:
    status: int
    url: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    ttfb_s: float | None = None


def env_proxy(url: str) -> str | None:
    """The proxy the caller's environment (``https_proxy``, ``no_proxy`` ...) names for ``url``."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if urllib.request.proxy_bypass(host):
        return None
    return urllib.request.getproxies().get(urllib.parse.urlsplit(url).scheme)


def _connection(url: str, proxy: str | None, verify: bool, timeout: float):
    """(connection, the request target) for ``url``, directly or through ``proxy``."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NetError(f"not an http(s) URL: {parts.scheme}://{parts.hostname or ''}")
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    ctx = (ssl.create_default_context() if verify else ssl._create_unverified_context()) if https else None
    if not proxy:
        if https:
            return http.client.HTTPSConnection(parts.hostname, port, timeout=timeout, context=ctx), target, {}
        return http.client.HTTPConnection(parts.hostname, port, timeout=timeout), target, {}
    p = urllib.parse.urlsplit(reveal(proxy))  # the connection is where a secret proxy URL is used in clear
    auth = {}
    if p.username:
        pair = f"{urllib.parse.unquote(p.username)}:{urllib.parse.unquote(p.password or '')}"
        auth = {"Proxy-Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
    if https:
        conn = http.client.HTTPSConnection(p.hostname, p.port or 80, timeout=timeout, context=ctx)
        conn.set_tunnel(parts.hostname, port, headers=auth)
        return conn, target, {}
    return http.client.HTTPConnection(p.hostname, p.port or 80, timeout=timeout), url, auth


def _cut(conn, fired: threading.Event) -> None:
    """The deadline passed: shut the socket down, which ends a read in progress in the other thread."""
    fired.set()
    sock = getattr(conn, "sock", None)
    if sock is not None:
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass


def _once(method, url, deadline, headers, body, proxy, verify, sink) -> Response:
    if deadline.passed():
        raise TimedOut(f"no answer within {deadline.seconds:g} s")
    conn, target, extra = _connection(url, proxy, verify, deadline.left())
    fired = threading.Event()
    timer = threading.Timer(deadline.left(), _cut, args=(conn, fired))
    timer.daemon = True
    t0 = time.monotonic()
    try:
        timer.start()
        conn.request(method, target, body=body, headers={**extra, **(headers or {})})
        resp = conn.getresponse()
        first = resp.read(1)
        out = Response(resp.status, url, headers={k.lower(): v for k, v in resp.getheaders()},
                       ttfb_s=time.monotonic() - t0)
        if sink is None or resp.status != 200:
            out.body = first + resp.read()
        else:
            sink(first)
            while chunk := resp.read(CHUNK):
                sink(chunk)
        if fired.is_set():
            raise TimedOut(f"no complete answer within {deadline.seconds:g} s")
        return out
    except ConnectionRefusedError:
        raise Refused("connection refused (nothing listens there)") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if fired.is_set() or isinstance(exc, TimeoutError) and deadline.passed():
            raise TimedOut(f"no complete answer within {deadline.seconds:g} s") from None
        if isinstance(exc, socket.gaierror):
            raise NetError("the host name does not resolve") from None
        if isinstance(exc, ssl.SSLError):
            raise NetError("TLS verification failed (a proxy that intercepts TLS? see proxy.insecure)") from None
        if isinstance(exc, TimeoutError):
            raise TimedOut("timed out") from None
        if "Tunnel connection failed" in str(exc):  # http.client's CONNECT through a proxy was refused
            raise NetError(f"the proxy refused the tunnel ({str(exc).split(': ', 1)[-1]})") from None
        raise NetError(f"{type(exc).__name__}: {exc}"[:160]) from None
    finally:
        timer.cancel()
        conn.close()


def request(method: str, url: str, *, deadline: Deadline | float, headers: dict | None = None,
            body: bytes | None = None, proxy: str | None = None, verify: bool = True, redirects: int = 0,
            sink: Callable[[bytes], None] | None = None) -> Response:
    """One request (following up to ``redirects`` redirects), all of it within ``deadline``.

    Raises Refused (nothing listens), TimedOut (the deadline passed) or NetError. With ``sink``,
    a 200 answer's body goes there chunk by chunk instead of into ``Response.body``.
    """
    deadline = deadline if isinstance(deadline, Deadline) else Deadline(deadline)
    for _ in range(redirects + 1):
        resp = _once(method, url, deadline, headers, body, proxy, verify, sink)
        location = resp.headers.get("location")
        if resp.status not in REDIRECTS or not location or not redirects:
            return resp
        url = urllib.parse.urljoin(url, location)
    raise NetError(f"more than {redirects} redirects")
