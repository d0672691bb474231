"""HTTP checks against sglang's server (and sgl-router): health, readiness, a smoke request.

sglang v0.5.4 (python/sglang/srt/entrypoints/http_server.py) answers ``GET /health``
(200 once the server is up), ``GET /v1/models`` (OpenAI model list), ``GET
/get_model_info`` (``model_path`` ...) and ``POST /v1/chat/completions``. The router
(sgl-router/py_src/sglang_router) serves ``/health`` and forwards ``/v1/*``.
Every request goes through ``rebuilt.core.net`` with one deadline for the whole of it (a
server that drips bytes cannot hold a check past its time), never through the build proxy.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from rebuilt.core import net

PROMPT = "What is the capital of France?"  # the request people send by hand after a launch
WARMING = (502, 503, 504)  # a router or server still starting: retried


@dataclass
class Probe:
    ok: bool
    detail: str


def probe(url: str, path: str, deadline: net.Deadline | float = 5) -> Probe:
    """One GET, all within ``deadline``: ok when it answers 200 (and JSON for the readiness endpoints)."""
    try:
        resp = net.request("GET", url.rstrip("/") + path, deadline=deadline)
    except net.NetError as exc:
        return Probe(False, f"{path}: {exc.reason}")
    if resp.status != 200:
        return Probe(False, f"{path}: HTTP {resp.status}")
    if path != "/health" and path.startswith(("/v1/models", "/get_model_info")):
        try:
            json.loads(resp.body)
        except ValueError:
            return Probe(False, f"{path}: not JSON")
    return Probe(True, f"{path}: 200")


def check(url: str, health: str, ready: tuple[str, ...], timeout: float = 5) -> Probe:
    """The role's health endpoint, then any one of its readiness endpoints: all within ``timeout`` seconds."""
    deadline = net.Deadline(timeout)
    if health:
        first = probe(url, health, deadline)
        if not first.ok:
            return first
    if not ready:
        return Probe(True, f"{health}: 200")
    tried = []
    for path in ready:
        p = probe(url, path, deadline)
        if p.ok:
            return Probe(True, f"{health} and {path}: 200" if health else p.detail)
        tried.append(p.detail)
    return Probe(False, "; ".join(tried))


def served_model(url: str, deadline: net.Deadline | float = 10) -> str | None:
    """The first model id ``/v1/models`` lists."""
    try:
        data = json.loads(net.request("GET", url.rstrip("/") + "/v1/models", deadline=deadline).body)
        return data["data"][0]["id"]
    except (net.NetError, ValueError, KeyError, IndexError, TypeError):
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


def chat(url: str, model: str, *, prompt: str = PROMPT, max_tokens: int = 1,
         deadline: net.Deadline | float = 60, retries: int = 10, headers: dict | None = None) -> Answer:
    """The smoke request: a non-streamed chat completion, all of it (retries included) within ``deadline``.

    502/503/504 (a server still warming up) are retried up to ``retries`` times while time is
    left; a refused connection is not: nothing listens, and waiting will not change that.
    """
    deadline = deadline if isinstance(deadline, net.Deadline) else net.Deadline(deadline)
    payload = json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}], "stream": False,
                          "max_tokens": max_tokens}).encode()
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    t0 = time.monotonic()
    for attempt in range(retries + 1):
        try:
            resp = net.request("POST", url.rstrip("/") + "/v1/chat/completions", deadline=deadline, body=payload,
                               headers=hdrs)
        except net.NetError as exc:
            return Answer(False, None, "", None, time.monotonic() - t0, f"{type(exc).__name__}: {exc.reason}")
        if resp.status not in WARMING or attempt == retries or deadline.left() < 0.5 * 2 ** attempt:
            break
        time.sleep(0.5 * 2 ** attempt)
    return _judge(resp.status, resp.body.decode("utf-8", "replace"), resp.ttfb_s, time.monotonic() - t0)


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
