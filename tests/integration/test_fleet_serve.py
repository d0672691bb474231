"""A serving profile's roles on two hosts over real SSH (prefill on alpha, decode on beta, as the aiak layout
places them; upstream PD with its router on this host): up, status, logs, smoke, down; a role that fails
stops the other; Ctrl-C leaves nothing;
the Mooncake password never on a command line or in a file. The servers are the loopback stand-in
(tests/fixtures/serve/fake_sglang.py)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.integration import sshd
from tests.integration.test_fleet import ROOT

fleet_hosts = sshd.fleet_hosts  # the fixture
FAKE = ROOT / "tests" / "fixtures" / "serve" / "fake_sglang.py"
PASSWORD = "Zq9-fleet-moon-pw"


def profile(tmp_path: Path, decode_env: str = "") -> Path:
    path = tmp_path / "two-hosts.toml"
    path.write_text(f"""[profile]
summary = "prefill and decode of the stand-in, one per host"
entry = "decode"

[roles.prefill]
command = ["{{python}}", "{FAKE}"]
port = "{{serve.prefill_port}}"
flags = ["--model-path", "{{serve.model_path}}", "--disaggregation-mode", "prefill",
         "--dist-init-addr", "{{host_ip}}:{{serve.prefill_dist_port}}", "--host", "{{serve.host}}", "--port", "{{port}}"]

[roles.prefill.env]
MOONCAKE_META_SERVER_PASSWORD = "{{serve.mooncake.password}}"
FAKE_SGLANG_CHILDREN = "1"

[roles.decode]
command = ["{{python}}", "{FAKE}"]
port = "{{serve.decode_port}}"
flags = ["--model-path", "{{serve.model_path}}", "--disaggregation-mode", "decode", "--host", "{{serve.host}}",
         "--port", "{{port}}"]

[roles.decode.env]
{decode_env}
""")
    return path


def ports() -> list[str]:
    socks = [socket.socket() for _ in range(3)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    out = [str(s.getsockname()[1]) for s in socks]
    for s in socks:
        s.close()
    return out


class Cluster:
    def __init__(self, fleet, tmp_path):
        self.fleet, self.wd = fleet, tmp_path / "wd"
        p, d, dist = ports()
        self.sets = ["--set", "serve.model_path=/models/fake", "--set", f"serve.prefill_port={p}", "--set",
                     f"serve.decode_port={d}", "--set", f"serve.prefill_dist_port={dist}", "--set", "serve.stop_grace=2"]
        hosts = {"node1": {"host": "alpha", "python": sys.executable, "workdir": str(fleet.hosts["alpha"].workdir)},
                 "node2": {"host": "beta", "python": sys.executable, "workdir": str(fleet.hosts["beta"].workdir)}}
        self.env = fleet.env(INVOKE_REBUILT_FLEET_HOSTS=json.dumps(hosts),
                             INVOKE_REBUILT_SERVE_MOONCAKE_PASSWORD=PASSWORD)

    def argv(self, task, *args):
        return [sys.executable, "-m", "invoke", task, *args, "-w", str(self.wd), *self.sets]

    def inv(self, task, *args, timeout=120):
        return subprocess.run(self.argv(task, *args), cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def left(self) -> list[str]:
        return self.fleet.hosts["alpha"].processes() + self.fleet.hosts["beta"].processes()


def test_up_status_logs_smoke_down_across_two_hosts(fleet_hosts, tmp_path):
    c = Cluster(fleet_hosts, tmp_path)
    prof = str(profile(tmp_path))
    with sshd.watch_command_lines([PASSWORD], period=0.02) as seen:
        try:
            up = c.inv("fleet.serve-up", prof, "--hosts", "prefill=node1,decode=node2")
            assert up.returncode == 0, up.stdout + up.stderr
            assert "two-hosts is up: prefill on node1, decode on node2" in up.stdout
            alpha, beta = fleet_hosts.hosts["alpha"], fleet_hosts.hosts["beta"]
            assert (alpha.workdir / "serve" / "two-hosts" / "state.json").is_file()  # each role's state on its host
            assert (beta.workdir / "serve" / "two-hosts" / "state.json").is_file()
            assert any("--disaggregation-mode prefill" in p for p in alpha.processes())
            assert any("--disaggregation-mode decode" in p for p in beta.processes())

            status = c.inv("fleet.serve-status", prof)
            assert status.returncode == 0, status.stdout + status.stderr
            assert "--- prefill on node1 (exit 0)" in status.stdout and "--- decode on node2 (exit 0)" in status.stdout
            assert status.stdout.count("running") == 2

            logs = c.inv("fleet.serve-logs", prof, "--lines", "5")
            assert logs.returncode == 0 and "--- prefill on node1" in logs.stdout, logs.stderr

            smoke = c.inv("fleet.serve-smoke", prof)
            assert smoke.returncode == 0, smoke.stdout + smoke.stderr
            assert "--- decode on node2" in smoke.stdout and "HTTP 200" in smoke.stdout

            down = c.inv("fleet.serve-down", prof)
            assert down.returncode == 0, down.stdout + down.stderr
        finally:
            c.inv("fleet.serve-down", prof)
    assert c.left() == []
    assert seen == []
    for folder in (tmp_path, fleet_hosts.root):
        for path in folder.rglob("*"):
            if path.is_file():
                assert PASSWORD.encode() not in path.read_bytes(), path
    assert not (c.wd / "fleet" / "serve" / "two-hosts.json").exists()  # placement forgotten after down


def test_a_role_that_fails_stops_the_other_host_s_role(fleet_hosts, tmp_path):
    c = Cluster(fleet_hosts, tmp_path)
    prof = str(profile(tmp_path, decode_env='FAKE_SGLANG_CRASH = "1"'))
    up = c.inv("fleet.serve-up", prof, "--hosts", "prefill=node1,decode=node2")
    assert up.returncode == 1, up.stdout + up.stderr
    assert "--- decode on node2 (exit 1)" in up.stdout
    assert "did not come up on every host" in up.stderr and "nothing is left running" in up.stderr
    assert c.left() == []


def test_ctrl_c_during_up_leaves_no_role_on_any_host(fleet_hosts, tmp_path):
    c = Cluster(fleet_hosts, tmp_path)
    prof = str(profile(tmp_path, decode_env='FAKE_SGLANG_WARMUP = "60"'))
    proc = subprocess.Popen(c.argv("fleet.serve-up", prof, "--hosts", "prefill=node1,decode=node2"), cwd=ROOT,
                            env=c.env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("mode decode" in p for p in fleet_hosts.hosts["beta"].processes()):
            time.sleep(0.1)
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=90)
    finally:
        proc.kill()
    assert proc.returncode == 130, out + err
    assert "stopping the roles that came up, on every host" in out
    assert c.left() == []


def test_placement_mistakes_are_bad_input(fleet_hosts, tmp_path):
    c = Cluster(fleet_hosts, tmp_path)
    r = c.inv("fleet.serve-up", str(profile(tmp_path)), "--hosts", "prefil=node1,decode=node2")
    assert r.returncode == 2 and "ROLE one of prefill, decode" in r.stderr
    r = c.inv("serve.up", str(profile(tmp_path)), "--hosts", "prefill=node1,prefill=node2")
    assert r.returncode == 2 and "role prefill placed twice" in r.stderr, r.stderr
    r = c.inv("serve.up", str(profile(tmp_path)), "--hosts", "prefill=node1", "--role", "prefill")
    assert r.returncode == 2 and "--role acts on this host only" in r.stderr, r.stderr
    assert c.left() == []


ROUTER = """
[roles.router]
command = ["{{python}}", "{fake}"]
port = "{{serve.router_port}}"
after = ["prefill", "decode"]
flags = ["--pd-disaggregation", "--prefill", "{{role.prefill.url}}", "{{serve.bootstrap_port}}",
         "--decode", "{{role.decode.url}}", "--host", "{{serve.host}}", "--port", "{{port}}"]
health = "/health"
ready = ["/v1/models"]

[roles.router.env]
FLEET_TEST_MARK = "{mark}"
"""


def here(mark: str) -> list[str]:
    """This host's processes of the profile (the router and its log pipe): those with the mark in their env."""
    found = []
    for pid in sshd._pids():
        try:
            if f"FLEET_TEST_MARK={mark}".encode() in Path(f"/proc/{pid}/environ").read_bytes():
                found.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


def pd_with_router_here(tmp_path: Path, c: Cluster) -> str:
    path = profile(tmp_path)
    text = path.read_text().replace('entry = "decode"', 'entry = "router"') + ROUTER.format(fake=FAKE, mark=tmp_path)
    path.write_text(text)
    c.sets += ["--set", f"serve.router_port={ports()[0]}", "--set", "serve.host=0.0.0.0"]
    return str(path)


def test_router_here_prefill_and_decode_on_their_hosts(fleet_hosts, tmp_path):
    """Upstream PD: prefill on node1, decode on node2, the router on this host; the serve.* tasks themselves."""
    c = Cluster(fleet_hosts, tmp_path)
    prof = pd_with_router_here(tmp_path, c)
    try:
        up = c.inv("serve.up", prof, "--hosts", "prefill=node1,decode=node2")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "two-hosts is up: prefill on node1, decode on node2, router on this host" in up.stdout
        router = [p for p in here(str(tmp_path)) if "--pd-disaggregation" in p]
        assert router and "--decode http://127.0.0.1:" in router[0], router  # decode's host's {host_ip}
        assert any("mode decode" in p for p in fleet_hosts.hosts["beta"].processes())

        status = c.inv("serve.status", "--profile", prof)
        assert status.returncode == 0, status.stdout + status.stderr
        assert "--- prefill on node1 (exit 0)" in status.stdout and "--- router here" in status.stdout
        assert status.stdout.count("running") == 3

        smoke = c.inv("serve.smoke", "--profile", prof)  # through the router here, which asks decode there
        assert smoke.returncode == 0 and "HTTP 200" in smoke.stdout, smoke.stdout + smoke.stderr

        logs = c.inv("serve.logs", "--profile", prof, "--lines", "3")
        assert logs.returncode == 0 and "--- decode on node2" in logs.stdout and "--- router here" in logs.stdout

        down = c.inv("serve.down", "--profile", prof)
        assert down.returncode == 0, down.stdout + down.stderr
    finally:
        c.inv("serve.down", "--profile", prof)
    assert c.left() == [] and here(str(tmp_path)) == []
    assert not (c.wd / "fleet" / "serve" / "two-hosts.json").exists()


def test_ctrl_c_while_the_router_here_starts_leaves_nothing_anywhere(fleet_hosts, tmp_path):
    c = Cluster(fleet_hosts, tmp_path)
    prof = pd_with_router_here(tmp_path, c)
    Path(prof).write_text(Path(prof).read_text() + 'FAKE_SGLANG_WARMUP = "60"\n')  # the router's env
    proc = subprocess.Popen(c.argv("serve.up", prof, "--hosts", "prefill=node1,decode=node2"), cwd=ROOT,
                            env=c.env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any("--pd-disaggregation" in p for p in here(str(tmp_path))):
            time.sleep(0.1)
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=90)
    finally:
        proc.kill()
    assert proc.returncode == 130, out + err
    assert "stopping the roles that came up, on every host" in out
    assert c.left() == [] and here(str(tmp_path)) == []


def test_a_router_here_needs_roles_that_listen_beyond_loopback(fleet_hosts, tmp_path):
    c = Cluster(fleet_hosts, tmp_path)
    prof = pd_with_router_here(tmp_path, c)
    c.sets[-1] = "serve.host=127.0.0.1"
    r = c.inv("serve.up", prof, "--hosts", "prefill=node1,decode=node2")
    assert r.returncode == 2 and "role(s) router run here" in r.stderr and "serve.host=0.0.0.0" in r.stderr, r.stderr
    assert c.left() == [] and here(str(tmp_path)) == []


def test_serve_addresses_point_a_role_here_at_the_others_hosts(tmp_path):
    """What serve.up --hosts gives the roles it starts here: the router's URLs name the other hosts."""
    r = subprocess.run([sys.executable, "-m", "invoke", "serve.up", "pd", "--dry-run", "-w", str(tmp_path),
                        "--set", "serve.model_path=/models/m", "--set", "serve.host=0.0.0.0",
                        "--set", 'serve.addresses={"prefill": "10.0.0.1", "decode": "10.0.0.2"}'],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "--prefill http://10.0.0.1:30000 8998 --decode http://10.0.0.2:30001" in r.stdout
