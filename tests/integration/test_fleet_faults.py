"""Fleet faults over real SSH: a stopped sshd, a refused key, a read-only work dir, a slow host, a host
that dies mid-step, Ctrl-C: each named with what to do, the other hosts finish, nothing is left running
on any host, and a rerun redoes only the hosts that did not finish."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.integration import sshd
from tests.integration.test_fleet import ROOT, inv, inventory

fleet_hosts, spare_host = sshd.fleet_hosts, sshd.spare_host  # the fixtures

SLOW_SMI = "#!/bin/sh\nsleep 600\n"  # a GPU query that hangs (the doctor asks nvidia-smi)


def lines_of(stdout: str) -> dict[str, str]:
    """host -> its status line and the `->` line under it."""
    out: dict[str, str] = {}
    last = None
    for line in stdout.splitlines():
        if line.startswith("    -> ") and last:
            out[last] += "\n" + line
        elif line and not line.startswith(" ") and len(line.split()) > 1:
            last = line.split()[0]
            out.setdefault(last, line)
    return out


def slow(host: sshd.Host) -> None:
    (host.bin / "nvidia-smi").write_text(SLOW_SMI)


def wait_for(predicate, seconds=60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def start(fleet, *args, **env):
    full = fleet.env(**{"INVOKE_REBUILT_FLEET_HOSTS": inventory(fleet), **env})
    return subprocess.Popen([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=full, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_stopped_sshd_is_named_the_others_finish_and_a_rerun_redoes_only_it(fleet_hosts, spare_host, tmp_path):
    spare_host.stop()
    hosts = f"alpha,{spare_host.name}"
    r = inv(fleet_hosts, "fleet.doctor", "--hosts", hosts, "--offline", "-w", str(tmp_path / "wd"))
    assert r.returncode == 1, r.stdout + r.stderr
    line = lines_of(r.stdout)[spare_host.name]
    assert "unreachable" in line and "refused the connection (no sshd listening there)" in line
    assert "-> start sshd on" in line
    assert lines_of(r.stdout)["alpha"].split()[1] == "ok"
    assert f"1 host(s) did not finish: {spare_host.name} (unreachable)" in r.stderr and "Traceback" not in r.stderr

    spare_host.start()
    r = inv(fleet_hosts, "fleet.doctor", "--hosts", hosts, "--offline", "-w", str(tmp_path / "wd"))
    assert r.returncode == 3, r.stdout + r.stderr  # every host ran now (the checks of this machine fail)
    assert lines_of(r.stdout)["alpha"].split()[1] == "kept"  # alpha was not run again
    assert lines_of(r.stdout)[spare_host.name].split()[1] == "ok"
    assert not (tmp_path / "wd" / "fleet" / "doctor.resume.json").exists()  # complete: the next run does all


def test_a_refused_key_is_named_with_what_to_do(fleet_hosts, spare_host, tmp_path):
    other = sshd.keygen(tmp_path / "other_key")
    (spare_host.root / "authorized_keys").write_text((tmp_path / "other_key.pub").read_text())
    assert other.exists()
    r = inv(fleet_hosts, "fleet.doctor", "--hosts", f"{spare_host.name},beta", "--offline", "-w", str(tmp_path / "wd"))
    assert r.returncode == 1, r.stdout + r.stderr
    line = lines_of(r.stdout)[spare_host.name]
    assert "refused" in line and "refused the key(s) offered" in line and "ssh-copy-id" in line
    assert lines_of(r.stdout)["beta"].split()[1] == "ok"


def test_a_read_only_work_dir_is_named(fleet_hosts, spare_host, tmp_path):
    made = subprocess.run(["chattr", "+i", str(spare_host.workdir)], capture_output=True, text=True)
    assert made.returncode == 0, f"chattr +i (the test makes the work dir read-only even for root): {made.stderr}"
    try:
        r = inv(fleet_hosts, "fleet.doctor", "--hosts", spare_host.name, "--offline", "-w", str(tmp_path / "wd"))
    finally:
        subprocess.run(["chattr", "-i", str(spare_host.workdir)], check=True)
    assert r.returncode == 1, r.stdout + r.stderr
    line = lines_of(r.stdout)[spare_host.name]
    assert f"the work dir {spare_host.workdir} is not writable" in line
    assert f"fleet.hosts.{spare_host.name}.workdir" in line


def test_a_slow_host_is_stopped_at_its_timeout_and_leaves_nothing(fleet_hosts, spare_host, tmp_path):
    slow(spare_host)
    r = inv(fleet_hosts, "fleet.doctor", "--hosts", f"beta,{spare_host.name}", "--offline",
            "--set", "fleet.timeout=12", "-w", str(tmp_path / "wd"))
    assert r.returncode == 1, r.stdout + r.stderr
    line = lines_of(r.stdout)[spare_host.name]
    assert "timeout" in line and "no end within 12s" in line and "fleet.timeout" in line
    assert lines_of(r.stdout)["beta"].split()[1] == "ok"
    assert spare_host.processes() == []


def test_a_host_dying_mid_step_is_named(fleet_hosts, spare_host, tmp_path):
    slow(spare_host)
    proc = start(fleet_hosts, "fleet.doctor", "--hosts", f"gamma,{spare_host.name}", "--offline",
                 "-w", str(tmp_path / "wd"))
    try:
        assert wait_for(lambda: any("nvidia-smi" in p for p in spare_host.processes())), "the step never started"
        spare_host.crash()
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1, out + err
    line = lines_of(out)[spare_host.name]
    assert "lost" in line and "the connection to" in line and "was lost" in line
    assert lines_of(out)["gamma"].split()[1] == "ok"


@pytest.mark.faults
def test_ctrl_c_stops_every_host_and_leaves_no_process(fleet_hosts, spare_host, tmp_path):
    slow(spare_host)
    proc = start(fleet_hosts, "fleet.doctor", "--hosts", f"alpha,{spare_host.name}", "--offline",
                 "-w", str(tmp_path / "wd"))
    try:
        assert wait_for(lambda: any("nvidia-smi" in p for p in spare_host.processes())), "the step never started"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, out + err
    assert "interrupted: every host's processes of run" in err and "Traceback" not in err
    # gone within seconds: the last of them (the stopping shell itself) may still be exiting
    assert wait_for(lambda: spare_host.processes() == [], seconds=10), spare_host.processes()
    assert not list((spare_host.home / "rebuilt").glob("fleet/run/*.pid"))
    assert not list(spare_host.workdir.glob("fleet/run/*"))  # no pid file, no secret folder left


def test_a_changed_host_key_is_refused_as_ssh_refuses_it(fleet_hosts, spare_host, tmp_path):
    """known_hosts records another key for the host (as after a reinstall, or someone in between)."""
    other = sshd.keygen(tmp_path / "other_hostkey")
    known = fleet_hosts.client_home / ".ssh" / "known_hosts"
    known.write_text(f"[127.0.0.1]:{spare_host.port} {(tmp_path / 'other_hostkey.pub').read_text()}")
    config = fleet_hosts.client_home / ".ssh" / "config"
    config.write_text(config.read_text().replace(
        f"Port {spare_host.port}\n  User root\n  IdentityFile {fleet_hosts.client_key}\n  StrictHostKeyChecking no\n"
        "  UserKnownHostsFile /dev/null\n", f"Port {spare_host.port}\n  User root\n  IdentityFile {fleet_hosts.client_key}\n"))
    try:
        r = inv(fleet_hosts, "fleet.doctor", "--hosts", f"{spare_host.name},beta", "--offline",
                "-w", str(tmp_path / "wd"))
    finally:
        known.unlink()
    assert other.exists() and r.returncode == 1, r.stdout + r.stderr
    line = lines_of(r.stdout)[spare_host.name]
    assert "showed a host key other than the one in known_hosts" in line
    assert f"ssh-keygen -R '[127.0.0.1]:{spare_host.port}'" in line
    assert lines_of(r.stdout)["beta"].split()[1] == "ok"
    assert spare_host.processes() == []  # refused before anything ran there


def test_proxyjump_from_ssh_config_is_honoured(fleet_hosts, spare_host, tmp_path):
    """A host reached through a jump host (ProxyJump in ~/.ssh/config): it answers while the jump host
    is up, and is unreachable when only the jump host's sshd is stopped."""
    gamma = fleet_hosts.hosts["gamma"]
    config = fleet_hosts.client_home / ".ssh" / "config"
    config.write_text(config.read_text() + f"Host behind\n  HostName 127.0.0.1\n  Port {gamma.port}\n  User root\n"
                      f"  IdentityFile {fleet_hosts.client_key}\n  ProxyJump {spare_host.name}\n")
    hosts = {"behind": {"host": "behind", "python": sys.executable, "workdir": str(gamma.workdir)}}
    env = fleet_hosts.env(INVOKE_REBUILT_FLEET_HOSTS=json.dumps(hosts))

    def doctor():
        return subprocess.run([sys.executable, "-m", "invoke", "fleet.doctor", "--hosts", "behind", "--offline",
                               "--json", "--force", "-w", str(tmp_path / "wd")], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=180)

    r = doctor()
    assert r.returncode == 3, r.stderr
    data = json.loads(r.stdout)["behind"]
    assert data["status"] == "ok" and any("H100" in row["found"] for row in data["rows"] if row["name"] == "gpu")
    spare_host.stop()
    r = doctor()
    assert r.returncode == 1
    assert json.loads(r.stdout)["behind"]["status"] in ("unreachable", "lost"), r.stdout


def test_a_host_that_takes_the_connection_but_never_answers_is_named_within_the_connect_timeout(fleet_hosts, tmp_path):
    """A port where something accepts TCP and says nothing (a hung sshd, another service)."""
    import socket
    import threading

    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(8)
    held = []

    def hold() -> None:  # take connections until the test closes the socket
        try:
            while True:
                held.append(mute.accept())
        except OSError:
            return

    threading.Thread(target=hold, daemon=True).start()
    try:
        r = inv(fleet_hosts, "fleet.doctor", "--hosts", f"root@127.0.0.1:{mute.getsockname()[1]},beta", "--offline",
                "--set", "fleet.connect_timeout=3", "-w", str(tmp_path / "wd"))
    finally:
        mute.close()
    assert r.returncode == 1, r.stdout + r.stderr
    line = next(line for line in r.stdout.splitlines() if line.startswith("root@127.0.0.1:"))
    assert "unreachable" in line and "no SSH login completed within 3s" in line and "fleet.connect_timeout" in r.stdout
    assert lines_of(r.stdout)["beta"].split()[1] == "ok"
