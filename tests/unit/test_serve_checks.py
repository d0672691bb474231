"""Pieces of serve.* that need no server: judging a chat answer, the /proc readers, serving bench specs."""

from __future__ import annotations

import json
import os
import socket

import pytest

from rebuilt.errors import ConfigError
from rebuilt.tools.bench import run as brun
from rebuilt.tools.bench import spec as bspec
from rebuilt.tools.serve import health, procs

COMPLETION = {"id": "1", "object": "chat.completion", "model": "m",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris"},
                           "finish_reason": "length"}]}


def test_a_chat_completion_is_an_answer():
    ans = health._judge(200, json.dumps(COMPLETION), 0.01, 0.02)
    assert ans.ok and ans.text == "Paris" and ans.ttfb_s == 0.01


@pytest.mark.parametrize("status,body,error", [
    (400, {"object": "error", "message": "The model `x` does not exist.", "code": 400},
     "HTTP 400: The model `x` does not exist."),
    (200, {"object": "error", "message": "bad"}, "HTTP 200: bad"),
    (200, {"text": "Paris"}, "not a chat completion"),
    (200, {"choices": [{"message": {"content": None}}]}, "content is None, not text"),
    (503, "<html>busy</html>", "HTTP 503, not JSON"),
])
def test_error_answers_are_errors(status, body, error):
    ans = health._judge(status, body if isinstance(body, str) else json.dumps(body), 0.01, 0.02)
    assert not ans.ok and error in ans.error


def test_warming_up_statuses_are_retried_within_the_deadline():
    import http.server
    import threading

    answers = [503, 502, 200]

    class Warming(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers["Content-Length"]))
            status = answers.pop(0)
            body = json.dumps(COMPLETION if status == 200 else {"error": "warming up"}).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Warming)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        ans = health.chat(f"http://127.0.0.1:{srv.server_address[1]}", "m", deadline=30, retries=2)
    finally:
        srv.shutdown()
        srv.server_close()
    assert ans.ok and ans.text == "Paris" and answers == []


def test_a_listening_port_names_its_holder_and_a_free_one_is_free():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    port = s.getsockname()[1]
    try:
        assert procs.port_holder(port).startswith(f"pid {os.getpid()} (")
    finally:
        s.close()
    assert procs.port_holder(port) is None


def test_process_table_readers():
    me = os.getpid()
    assert procs.alive(me) and procs.alive(me, procs.start_ticks(me))
    assert not procs.alive(me, procs.start_ticks(me) + 1)  # same number, another start: not ours
    assert me in procs.members(os.getsid(0))


def test_cmdline_reads_the_argv_of_a_process(tmp_path, monkeypatch):
    """From a process table of known content: this process's own command line is whatever started it (a
    pytest-xdist worker renames itself), so it cannot be the expected value."""
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "cmdline").write_bytes(b"/opt/env/bin/python\x00-m\x00sglang.launch_server\x00--port\x00301\x00")
    monkeypatch.setattr(procs, "PROC", tmp_path)
    assert procs.cmdline(4242) == "/opt/env/bin/python -m sglang.launch_server --port 301"
    assert procs.cmdline(4243) == ""  # gone


def test_a_serving_spec_may_name_a_profile_and_only_a_serving_spec(tmp_path):
    s = bspec.parse({"kind": "serving", "profile": "single", "matrix": {"conc": [1]}}, "s.toml")
    assert s.profile == "single"
    with pytest.raises(ConfigError, match="only serving specs take one"):
        bspec.parse({"kind": "one_batch", "profile": "single"}, "o.toml")


def test_the_dry_run_of_a_profile_spec_targets_the_profile(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for k in [k for k in os.environ if k.startswith("INVOKE_REBUILT_")]:
        monkeypatch.delenv(k)
    spec = bspec.parse({"kind": "serving", "profile": "pd", "matrix": {"conc": [1]}}, "s.toml")
    planned = brun.plan(spec, python="/env/bin/python", model_path="/m", workdir=tmp_path / "w", run_id="R")
    assert "--base-url http://127.0.0.1:8000" in planned.commands[0].shell()  # the pd router
    text = brun.dry_run_text(spec, planned, python="/env/bin/python", model_path="/m")
    assert "# against serving profile pd" in text and not (tmp_path / "w").exists()


def test_smoke_without_an_answer_says_so(resolve):
    from rebuilt.errors import CheckFailed
    from rebuilt.tools.serve import smoke

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]  # bound, never listening: connections are refused
    try:
        refused = rf"no answer from http://127.0.0.1:{port} after .* \(--timeout 2\): .*connection refused"
        with pytest.raises(CheckFailed, match=refused):
            smoke.run(resolve(), "single", url=f"http://127.0.0.1:{port}", retries=1, timeout=2, echo=lambda t: None)
    finally:
        s.close()


def test_the_interpreter_defaults_to_the_environment_nox_built(resolve, tmp_path):
    import sys

    from rebuilt.tools.serve.lifecycle import choose_python

    built = tmp_path / "env" / "bin" / "python"
    built.parent.mkdir(parents=True)
    built.write_text("")
    active = tmp_path / "active"
    (active / "bin").mkdir(parents=True)
    (active / "bin" / "python").write_text("")
    s = resolve({"python": ""}, environ={"VIRTUAL_ENV": str(active)})
    assert choose_python(s, None) == str(active / "bin" / "python")  # nothing built: the user's active environment
    state = s.workdir() / "state" / f"nox-{s['stack']}.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"python": str(built), "built": True}))
    assert choose_python(s, None) == str(built)
    assert choose_python(resolve({"python": sys.executable}), None) == sys.executable  # the setting wins
    with pytest.raises(ConfigError, match="interpreter /nope/python does not exist"):
        choose_python(s, "/nope/python")
