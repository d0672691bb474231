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
needs_tinyproxy = pytest.mark.skipif(not shutil.which("tinyproxy"), reason="needs tinyproxy (installed by .ci/run)")


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


@needs_tinyproxy
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
    on = inv("proxy.on", "--workdir", str(tmp_path), env=env)
    assert on.returncode == 0 and (tmp_path / "state" / "proxy.json").is_file(), on.stderr
    plain = inv("build.netcheck", "--dry-run", "--workdir", str(tmp_path), env=env)
    assert plain.returncode == 0, plain.stderr
    assert "GIT_SSL_NO_VERIFY" not in plain.stdout and "TLS not verified" not in plain.stdout + plain.stderr
    assert "127.0.0.1:9" in plain.stdout  # the proxy reaches the plan: the insecure flag is all that differs
    env["INVOKE_REBUILT_PROXY_INSECURE"] = "true"
    r = inv("build.netcheck", "--dry-run", "--workdir", str(tmp_path), env=env)
    assert r.returncode == 0, r.stderr
    assert "GIT_SSL_NO_VERIFY=1" in r.stdout and "TLS not verified" in r.stdout


TOKEN = "ghp-t0ken-Secret"


@pytest.fixture
def git_http_auth(tmp_path):
    """Like git_http, but every request must carry Basic credentials (user "x", password TOKEN)."""
    import base64

    src = make_repo(tmp_path / "upstream-auth", {"setup.py": "print('hi')\n"})
    git(src, "tag", "v1")
    root = tmp_path / "www-auth"
    root.mkdir()
    subprocess.run(["git", "clone", "-q", "--bare", str(src), str(root / "repo.git")], check=True)
    subprocess.run(["git", "-C", str(root / "repo.git"), "update-server-info"], check=True)
    expected = "Basic " + base64.b64encode(f"x:{TOKEN}".encode()).decode()
    seen = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *a):
            pass

        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            super().do_GET()

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"url": f"http://x:{TOKEN}@127.0.0.1:{port}/repo.git", "seen": seen}
    server.shutdown()


def _no_secret_anywhere(folder: Path, secret: str) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"credentials written to {path}"


def test_a_token_in_a_source_url_reaches_git_but_never_git_config(tmp_path, git_http_auth):
    wd = tmp_path / "wd"
    env = {**os.environ, "REBUILT_RECIPES_DIR": RECIPES, "INVOKE_REBUILT_TORCH_URL": git_http_auth["url"],
           "GIT_TERMINAL_PROMPT": "0"}
    r = inv("src.fetch", "--recipe", "torch", "--workdir", str(wd), "--set", "torch.ref=v1", "--verbose", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert any(git_http_auth["seen"]), "git sent no credentials"
    config = (wd / "src" / "pytorch" / ".git" / "config").read_text()
    assert "127.0.0.1" in config and TOKEN not in config and "x:" not in config
    assert TOKEN not in r.stdout + r.stderr
    _no_secret_anywhere(wd, TOKEN)
    # a second fetch (remote already there) still authenticates from the environment
    r = inv("src.fetch", "--recipe", "torch", "--workdir", str(wd), "--set", "torch.ref=v1", env=env)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_token_on_the_command_line_is_refused(tmp_path, git_http_auth):
    r = inv("src.fetch", "--recipe", "torch", "--workdir", str(tmp_path), "--set", f"torch.url={git_http_auth['url']}",
            env={**os.environ, "REBUILT_RECIPES_DIR": RECIPES})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert TOKEN not in r.stdout + r.stderr and "INVOKE_REBUILT_TORCH_URL" in r.stderr
    assert not (tmp_path / "src").exists()


SCHEMELESS = "alice:s3cr3tpw@127.0.0.1:9"


@pytest.mark.parametrize("args", [("proxy.on",), ("proxy.status",), ("config",), ("build.netcheck", "--dry-run")])
def test_a_schemeless_proxy_url_is_rejected_before_it_is_stored(tmp_path, args):
    env = {**os.environ, "REBUILT_RECIPES_DIR": RECIPES, "INVOKE_REBUILT_PROXY_URL": SCHEMELESS}
    extra = () if args == ("config",) else ("--workdir", str(tmp_path))
    r = inv(*args, *extra, env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "s3cr3tpw" not in r.stdout + r.stderr and "Traceback" not in r.stderr
    assert "INVOKE_REBUILT_PROXY_URL" in r.stderr and "http://user:password@host:port" in r.stderr
    _no_secret_anywhere(tmp_path, "s3cr3tpw")


def test_a_schemeless_proxy_url_flag_is_refused_without_echoing_it(tmp_path):
    r = inv("proxy.on", "--url", SCHEMELESS, "--workdir", str(tmp_path), env=dict(os.environ))
    assert r.returncode == 2 and "s3cr3tpw" not in r.stdout + r.stderr
    assert not (tmp_path / "state" / "proxy.json").exists()


def test_a_password_alone_printed_by_a_step_is_masked_in_log_and_console(tmp_path):
    """The tool prints only the password (cut from $https_proxy): the known value is masked anyway."""
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "leaky.toml").write_text(
        '[recipe]\nname = "leaky"\nsummary = "prints the proxy password alone"\n\n'
        '[[steps]]\nname = "leak"\nnetwork = true\ncwd = "{workdir}"\n'
        'shell = "p=${https_proxy#*://*:}; echo pw=${p%@*}; echo url=$https_proxy"\n')
    wd = tmp_path / "wd"
    env = {**os.environ, "REBUILT_RECIPES_DIR": f"{recipes}{os.pathsep}{RECIPES}",
           "INVOKE_REBUILT_PROXY_URL": "http://bob:p@ss-w0rd@127.0.0.1:9"}
    assert inv("proxy.on", "--workdir", str(wd), env=env).returncode == 0
    r = inv("build.leaky", "--workdir", str(wd), "--no-checks", "--verbose", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "pw=***" in r.stdout and "url=http://***@127.0.0.1:9" in r.stdout
    logs = "".join(p.read_text() for p in (wd / "logs").rglob("*.log"))
    assert "pw=***" in logs
    for secret in ("p@ss-w0rd", "p%40ss-w0rd", "ss-w0rd"):
        assert secret not in r.stdout + r.stderr
        _no_secret_anywhere(wd, secret)


def test_state_logs_and_manifests_are_private(tmp_path):
    import stat

    wd = tmp_path / "wd"
    env = {**os.environ, "REBUILT_RECIPES_DIR": RECIPES, "INVOKE_REBUILT_PROXY_URL": "http://u:pw-1234@127.0.0.1:9"}
    assert inv("proxy.on", "--workdir", str(wd), env=env).returncode == 0
    r = inv("build.netcheck", "--workdir", str(wd), "--no-checks", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    checked = 0
    for sub in ("state", "logs", "manifests"):
        for path in [wd / sub, *(wd / sub).rglob("*")]:
            if "shim" in path.relative_to(wd).parts[:2]:  # compiler wrappers on PATH, inside the 0700 state/
                continue
            mode = stat.S_IMODE(path.stat().st_mode)
            if path.is_dir():
                assert mode == 0o700, f"{path} is {oct(mode)}"
            else:
                assert mode == 0o600, f"{path} is {oct(mode)}"
            checked += 1
    assert stat.S_IMODE(wd.stat().st_mode) == 0o700
    assert checked >= 6


def test_proxy_env_prints_the_real_url_for_eval(tmp_path):
    env = {**os.environ, "INVOKE_REBUILT_PROXY_URL": f"http://u:{SECRET}@127.0.0.1:9"}
    assert inv("proxy.on", "--workdir", str(tmp_path), env=env).returncode == 0
    r = inv("proxy.env", "--workdir", str(tmp_path), env=env)
    assert f"export https_proxy=http://u:{SECRET}@127.0.0.1:9" in r.stdout, r.stdout + r.stderr
    status = inv("proxy.status", "--workdir", str(tmp_path), env=env)
    assert SECRET not in status.stdout + status.stderr and "***@127.0.0.1:9" in status.stdout
