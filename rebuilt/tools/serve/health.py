"""HTTP checks against sglang's server (and sgl-router): health, readiness, a smoke request.

sglang v0.5.4 (python/sglang/srt/entrypoints/http_server.py) answers ``GET /health``
(200 once the server is up), ``GET /v1/models`` (OpenAI model list), ``GET
/get_model_info`` (``model_path`` ...) and ``POST /v1/chat/completions``. The router
(sgl-router/py_src/sglang_router) serves ``/health`` and forwards ``/v1/*``.
All requests go through ``requests`` with time-outs and urllib3 ``Retry``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

PROMPT = "What is the capital of France?"  # the request people send by hand after a launch


def session(retries: int = 0, backoff: float = 0.5) -> requests.Session:
    """A session whose requests retry refused connections and 502/503/504 (POST too) ``retries`` times."""
    s = requests.Session()
    retry = Retry(total=retries, connect=retries, read=0, status=retries, backoff_factor=backoff,
                  status_forcelist=(502, 503, 504), allowed_methods=None, raise_on_status=False)
    s.mount("http://", HTTPAdapter(max_retries=retry))
    s.mount("https://", HTTPAdapter(max_retries=retry))
    s.trust_env = False  # loopback and cluster addresses: never through the build proxy
    return s


@dataclass
class Probe:
    ok: bool
    detail: str


def probe(s: requests.Session, url: str, path: str, timeout: float = 5) -> Probe:
    """One GET: ok when it answers 200 (and JSON for the readiness endpoints)."""
    try:
        resp = s.get(url.rstrip("/") + path, timeout=timeout)
    except requests.RequestException as exc:
        return Probe(False, f"{path}: {type(exc).__name__}")
    if resp.status_code != 200:
        return Probe(False, f"{path}: HTTP {resp.status_code}")
    if path != "/health" and path.startswith(("/v1/models", "/get_model_info")):
        try:
            resp.json()
        except ValueError:
            return Probe(False, f"{path}: not JSON")
    return Probe(True, f"{path}: 200")


def check(s: requests.Session, url: str, health: str, ready: tuple[str, ...], timeout: float = 5) -> Probe:
    """The role's health endpoint, then any one of its readiness endpoints."""
    if health:
        first = probe(s, url, health, timeout)
        if not first.ok:
            return first
    if not ready:
        return Probe(True, f"{health}: 200")
    tried = []
    for path in ready:
        p = probe(s, url, path, timeout)
        if p.ok:
            return Probe(True, f"{health} and {path}: 200" if health else p.detail)
        tried.append(p.detail)
    return Probe(False, "; ".join(tried))


def served_model(s: requests.Session, url: str, timeout: float = 10) -> str | None:
    """The first model id ``/v1/models`` lists."""
    try:
        data = s.get(url.rstrip("/") + "/v1/models", timeout=timeout).json()
        return data["data"][0]["id"]
    except (requests.RequestException, ValueError, KeyError, IndexError, TypeError):
        return None


@dataclass
class Answer:
    ok: bool
    status: int | None
    text: str
    ttfb_s: float | None
    total_s: float
    error: str = ""
    body: str = ""


def chat(url: str, model: str, *, prompt: str = PROMPT, max_tokens: int = 1, timeout: float = 60,
         retries: int = 10, headers: dict | None = None) -> Answer:
    """The smoke request: a non-streamed chat completion, retried while the server warms up."""
    payload = {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": False,
               "max_tokens": max_tokens}
    s = session(retries=retries)
    t0 = time.monotonic()
    try:
        resp = s.post(url.rstrip("/") + "/v1/chat/completions", json=payload, timeout=timeout, stream=True,
                      headers=headers)
        chunks = resp.iter_content(chunk_size=1)
        first = next(chunks, b"")
        ttfb = time.monotonic() - t0
        body = (first + b"".join(chunks)).decode("utf-8", "replace")
    except requests.RequestException as exc:
        return Answer(False, None, "", None, time.monotonic() - t0, f"{type(exc).__name__}: {exc}")
    total = time.monotonic() - t0
    return _judge(resp.status_code, body, ttfb, total)


def _judge(status: int, body: str, ttfb: float, total: float) -> Answer:
    try:
        data = json.loads(body)
    except ValueError:
        return Answer(False, status, "", ttfb, total, f"HTTP {status}, not JSON", body[:500])
    if status != 200 or not isinstance(data, dict) or data.get("object") == "error" or "error" in data:
        msg = data.get("message") or data.get("error") if isinstance(data, dict) else data
        return Answer(False, status, "", ttfb, total, f"HTTP {status}: {msg}", body[:500])
    try:
        choice = data["choices"][0]
        text = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return Answer(False, status, "", ttfb, total, "not a chat completion (no choices[0].message.content)",
                      body[:500])
    if not isinstance(text, str):
        return Answer(False, status, "", ttfb, total, f"content is {text!r}, not text", body[:500])
    return Answer(True, status, text, ttfb, total, body=body[:500])
