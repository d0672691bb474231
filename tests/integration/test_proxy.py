"""The proxy on loopback: a real tinyproxy and a real git server over HTTP, started by the test.

Network steps go through the proxy when it is on, directly when it is off or for no-proxy hosts;
other steps never see the proxy variables; credentials appear in no output and no file.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.gitrepo import git, make_repo

ROOT = Path(__file__).resolve().parents[2]
RECIPES = f"{ROOT / 'tests' / 'fixtures' / 'recipes'}{os.pathsep}{ROOT / 'recipes'}"
SECRET = "s3cr3t-pw"
pytestmark = pytest.mark.skipif(not shutil.which("tinyproxy"), reason="needs tinyproxy (installed by .ci/run)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int) -> None:
    for _ in range(200):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


@pytest.fixture
def git_http(tmp_path):
    """A bare repository served over plain HTTP (git's dumb protocol) on 127.0.0.1."""
    src = make_repo(tmp_path / "upstream", {"setup.py": "print('hi')\n"})
    git(src, "tag", "v1")
    root = tmp_path / "www"
    root.mkdir()
    subprocess.run(["git", "clone", "-q", "--bare", str(src), str(root / "repo.git")], check=True)
    subprocess.run(["git", "-C", str(root / "repo.git"), "update-server-info"], check=True)
    port = free_port()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}/repo.git"
    server.shutdown()


@pytest.fixture
def tinyproxy(tmp_path):
    port = free_port()
    log = tmp_path / "tinyproxy.log"
    conf = tmp_path / "tinyproxy.conf"
    conf.write_text(f"Port {port}\nListen 127.0.0.1\nTimeout 30\nLogFile \"{log}\"\nLogLevel Info\n"
                    f"MaxClients 20\nAllow 127.0.0.1\nBasicAuth rebuilt {SECRET}\nDisableViaHeader Yes\n")
    proc = subprocess.Popen(["tinyproxy", "-d", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    yield {"url": f"http://rebuilt:{SECRET}@127.0.0.1:{port}", "log": log}
    proc.terminate()
    proc.wait(timeout=10)


def inv(*args, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def proxied(log: Path) -> list[str]:
    return [ln for ln in log.read_text(errors="replace").splitlines() if "repo.git" in ln] if log.exists() else []


def test_network_steps_through_the_proxy_only_when_on(tmp_path, git_http, tinyproxy):
    wd = tmp_path / "wd"
    env = {**os.environ, "REBUILT_RECIPES_DIR": RECIPES, "INVOKE_REBUILT_PROXY_URL": tinyproxy["url"],
           "INVOKE_REBUILT_PROXY_NO_PROXY": "example.invalid"}
    outputs = []

    def run(*args):
        r = inv(*args, env=env)
        outputs.append(r.stdout + r.stderr)
        return r

    fetch = ("src.fetch", "--recipe", "torch", "--workdir", str(wd), "--set", f"torch.url={git_http}",
             "--set", "torch.ref=v1")
    assert run("proxy.on", "--workdir", str(wd)).returncode == 0
    status = run("proxy.status", "--workdir", str(wd))
    assert "proxy on: http://***@127.0.0.1:" in status.stdout
    r = run(*fetch)
    assert r.returncode == 0, r.stdout + r.stderr
    seen = proxied(tinyproxy["log"])
    assert seen, "the fetch did not go through the proxy"

    net = run("build.netcheck", "--workdir", str(wd), "--no-checks", "--verbose")
    assert net.returncode == 0, net.stderr
    online, local = net.stdout.split("[2/2]")
    assert "http_proxy=set" in online and "HTTPS_PROXY=set" in online and "no_proxy=set" in online
    assert "http_proxy=unset" in local and "HTTPS_PROXY=unset" in local

    assert run("proxy.off", "--workdir", str(wd)).returncode == 0
    shutil.rmtree(wd / "src")
    assert run(*fetch).returncode == 0
    assert len(proxied(tinyproxy["log"])) == len(seen), "proxy off, yet the fetch used it"

    env["INVOKE_REBUILT_PROXY_NO_PROXY"] = "127.0.0.1"  # on again, but the git host bypasses it
    run("proxy.on", "--workdir", str(wd))
    shutil.rmtree(wd / "src")
    assert run(*fetch).returncode == 0
    assert len(proxied(tinyproxy["log"])) == len(seen), "a no-proxy host went through the proxy"

    shell = run("proxy.env", "--workdir", str(wd))
    assert "export https_proxy=" in shell.stdout  # for eval: the real value, on purpose
    outputs.pop()
    for text in outputs:
        assert SECRET not in text
    for path in wd.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), f"credentials written to {path}"


def test_credentials_on_the_command_line_are_refused(tmp_path):
    r = inv("proxy.on", "--url", f"http://u:{SECRET}@proxy.example:3128", "--workdir", str(tmp_path),
            env=dict(os.environ))
    assert r.returncode == 2 and "credentials" in r.stderr and SECRET not in r.stderr
    assert not (tmp_path / "state" / "proxy.json").exists()


def test_insecure_needs_a_setting_and_warns(tmp_path):
    env = {**os.environ, "REBUILT_RECIPES_DIR": RECIPES, "INVOKE_REBUILT_PROXY_URL": "http://127.0.0.1:9"}
    inv("proxy.on", "--workdir", str(tmp_path), env=env)
    plain = inv("build.netcheck", "--dry-run", "--workdir", str(tmp_path), env=env)
    assert "GIT_SSL_NO_VERIFY" not in plain.stdout
    env["INVOKE_REBUILT_PROXY_INSECURE"] = "true"
    r = inv("build.netcheck", "--dry-run", "--workdir", str(tmp_path), env=env)
    assert "GIT_SSL_NO_VERIFY=1" in r.stdout and "TLS not verified" in r.stdout
