"""Every network wait ends by its deadline, against a loopback server that sends one byte every half
second (a per-read time-out never fires there): health checks, serve.smoke, the proxy check, the
bench pre-flight's server check and bundle downloads. A hang would show as the test's own guard
(a thread join or a subprocess time-out far beyond the deadline) failing."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from tests.netfakes import DripServer

ROOT = Path(__file__).resolve().parents[2]
GUARD_S = 60  # far beyond every deadline below; only a wait without a deadline reaches it


def within_guard(fn):
    """fn() in a thread; its result, or an AssertionError when it is still waiting after GUARD_S."""
    out: dict = {}

    def body():
        try:
            out["value"] = fn()
        except Exception as exc:  # noqa: BLE001 - handed back to the test
            out["error"] = exc

    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join(GUARD_S)
    assert not t.is_alive(), f"still waiting after {GUARD_S} s: no whole-operation deadline"
    return out


def no_proxy_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    return {**env, "no_proxy": "127.0.0.1,localhost"}


def test_health_check_ends_by_its_deadline(bare_probe):
    from rebuilt.tools.serve import health

    with DripServer() as drip:
        out = within_guard(lambda: health.check(drip.url, "/health", ("/v1/models",), timeout=2))
    probe = out.get("value")
    bare_probe.expect("wrong", probe is not None and not probe.ok and "within 2 s" in probe.detail, f"{out}")


def test_bench_preflight_server_check_ends_by_its_deadline(bare_probe):
    from rebuilt.tools.bench import preflight

    with DripServer() as drip:
        out = within_guard(lambda: preflight.check_server(drip.url, timeout=2))
    check = out.get("value")
    bare_probe.expect("wrong", check is not None and check.status == "fail" and "within 2 s" in check.line(),
                      f"{out}")


def test_a_download_ends_by_its_deadline_and_leaves_nothing(bare_probe, tmp_path):
    from rebuilt.errors import SourceError
    from rebuilt.tools.bundle import downloads

    cache = tmp_path / "cache"
    with DripServer() as drip:
        out = within_guard(lambda: downloads.fetch(f"{drip.url}/json.tar.xz", "", cache, timeout=2))
    err = out.get("error")
    bare_probe.expect("wrong", isinstance(err, SourceError) and "no complete answer within 2 s" in str(err), f"{out}")
    bare_probe.no_parts(cache)
    bare_probe.expect("leaked", not list(cache.iterdir()), f"left in the cache: {list(cache.iterdir())}")


def test_proxy_check_ends_by_its_deadline(bare_probe, tmp_path):
    with DripServer() as drip:
        r = subprocess.run([sys.executable, "-m", "invoke", "proxy.check", "--url", drip.url, "--workdir",
                            str(tmp_path / "wd")], cwd=ROOT, env=no_proxy_env(), capture_output=True, text=True,
                           timeout=GUARD_S)
    bare_probe.clean_output(r.stderr)
    bare_probe.expect("wrong", r.returncode == 3 and f"FAIL  {drip.url}: no answer directly: no complete answer "
                      "within 3 s" in r.stdout, r.stdout + r.stderr)


def test_smoke_ends_by_its_deadline(bare_probe, tmp_path):
    with DripServer() as drip:
        r = subprocess.run([sys.executable, "-m", "invoke", "serve.smoke", "--url", drip.url, "--timeout", "2",
                            "--workdir", str(tmp_path / "wd")], cwd=ROOT, env=no_proxy_env(), capture_output=True,
                           text=True, timeout=GUARD_S)
    bare_probe.clean_output(r.stderr)
    bare_probe.expect("wrong", r.returncode == 3 and "answer within 2 s" in r.stderr, r.stderr)
