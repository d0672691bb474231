"""Real SSH hosts for the fleet tests: one OpenSSH ``sshd`` per host on a loopback port.

Each host has its own host key, authorized key, home (``SetEnv HOME=`` in its own sshd_config, so
one login user is enough), work dir, and a fake ``nvidia-smi`` first on its PATH (``SetEnv PATH=``):
``gamma``'s reports another GPU and driver, so a fleet table has a cell that differs. The client side
is a home folder of its own (``client_home``) holding ``~/.ssh/config`` with one alias per host and the
client key, so the code under test finds the hosts exactly as a user's ``ssh gamma`` would.

Use ``fleet_hosts`` (one set for the whole session); ``spare_host`` is a host of one test's own, for
the tests that stop its sshd or make its work dir read-only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
GPUS = {  # name, compute_cap, memory.total, driver_version: one line per GPU
    "alpha": ["NVIDIA H200, 9.0, 143771, 580.159.04"] * 2,
    "beta": ["NVIDIA H200, 9.0, 143771, 580.159.04"] * 2,
    "gamma": ["NVIDIA H100 80GB HBM3, 9.0, 81559, 570.86.15"] * 2,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@dataclass
class Host:
    name: str
    root: Path
    port: int
    client_key: Path
    proc: subprocess.Popen | None = None
    extra_config: list[str] = field(default_factory=list)

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def workdir(self) -> Path:
        return self.root / "work"

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def setup(self, gpus: list[str]) -> None:
        for d in (self.home, self.workdir, self.bin):
            d.mkdir(parents=True, exist_ok=True)
        keygen(self.root / "hostkey")
        shutil.copy(f"{self.client_key}.pub", self.root / "authorized_keys")
        smi = self.bin / "nvidia-smi"
        body = "\n".join(gpus)
        index = "\n".join(f"{i}, {g.split(',')[0]}" for i, g in enumerate(gpus))
        smi.write_text(f"#!/bin/sh\ncase \"$*\" in\n  *--query-gpu=index,name*) cat <<'EOF'\n{index}\nEOF\n  ;;\n"
                       f"  *) cat <<'EOF'\n{body}\nEOF\n  ;;\nesac\n")
        smi.chmod(0o755)
        path = f"{self.bin}:{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        lines = [f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.root / 'hostkey'}",
                 f"PidFile {self.root / 'sshd.pid'}", f"AuthorizedKeysFile {self.root / 'authorized_keys'}",
                 "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
                 "PermitRootLogin prohibit-password", "StrictModes no", "UsePAM no", "LogLevel ERROR",
                 f"SetEnv HOME={self.home} PATH={path}", "Subsystem sftp internal-sftp", *self.extra_config]
        (self.root / "sshd_config").write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.root / "sshd_config")],
                                     stdout=subprocess.DEVNULL, stderr=open(self.root / "sshd.log", "ab"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd for {self.name} exited: {(self.root / 'sshd.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd for {self.name} did not listen on {self.port}")

    def stop(self) -> None:
        """Stop the listener: new connections are refused (sessions already open go on, as when a
        real host's sshd is restarted)."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def processes(self) -> list[str]:
        """Command lines of the processes this host's sessions started (their HOME is this host's home)."""
        marker = f"HOME={self.home}".encode()
        found = []
        for pid in _pids():
            try:
                env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in env and not cmd.startswith("sshd"):
                found.append(f"{pid}: {cmd.strip()}")
        return found

    def crash(self) -> None:
        """The host dies: its sshd, every session and every process they started, killed at once."""
        pids = _descendants(self.proc.pid) + [self.proc.pid]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)

    def ssh_config(self) -> str:
        return (f"Host {self.name}\n  HostName 127.0.0.1\n  Port {self.port}\n  User root\n"
                f"  IdentityFile {self.client_key}\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n")


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid in _pids():
        try:
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


@dataclass
class Fleet:
    root: Path
    client_home: Path
    client_key: Path
    hosts: dict[str, Host]

    def env(self, **extra: str) -> dict:
        """The environment of a client command: this client home (its ~/.ssh/config), no user settings, and a
        local work directory of this fleet's (not the checkout's .rebuilt/, which parallel test processes share)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("INVOKE_REBUILT_")}
        env.update({"HOME": str(self.client_home), "INVOKE_REBUILT_WORKDIR": str(self.root / "client-workdir")})
        env.update(extra)
        return env

    def add(self, name: str, gpus: list[str] | None = None, extra_config: list[str] | None = None) -> Host:
        host = Host(name, self.root / name, free_port(), self.client_key, extra_config=extra_config or [])
        host.setup(gpus or GPUS["alpha"])
        host.start()
        self.hosts[name] = host
        self.write_ssh_config()
        return host

    def write_ssh_config(self) -> None:
        ssh = self.client_home / ".ssh"
        ssh.mkdir(parents=True, exist_ok=True, mode=0o700)
        (ssh / "config").write_text("".join(h.ssh_config() for h in self.hosts.values()))

    def stop(self) -> None:
        for h in self.hosts.values():
            h.stop()


def make_fleet(root: Path, names=("alpha", "beta", "gamma")) -> Fleet:
    root.mkdir(parents=True, exist_ok=True)
    client_home = root / "client-home"
    (client_home / ".ssh").mkdir(parents=True, exist_ok=True, mode=0o700)
    key = keygen(client_home / ".ssh" / "id_fleet")
    fleet = Fleet(root, client_home, key, {})
    for name in names:
        fleet.add(name, GPUS[name])
    return fleet


@pytest.fixture(scope="session")
def fleet_hosts(tmp_path_factory):
    """Three real SSH hosts (alpha, beta, gamma; gamma's GPUs differ), for the whole session."""
    if not Path(SSHD).exists():
        pytest.fail("sshd is missing: install openssh-server (.ci/run does)")
    fleet = make_fleet(tmp_path_factory.mktemp("fleet"))
    yield fleet
    fleet.stop()


@pytest.fixture
def spare_host(fleet_hosts, request):
    """A host of this test's own (stopped, broken, made read-only as the test likes), added to the ssh config."""
    name = "spare-" + request.node.name.split("[")[0][-20:].replace("_", "-")
    host = fleet_hosts.add(name)
    yield host
    host.stop()
    fleet_hosts.hosts.pop(name, None)
    fleet_hosts.write_ssh_config()


@contextlib.contextmanager
def watch_command_lines(values: list[str], period: float = 0.01):
    """Collect, while the block runs, every process command line (any host's or this machine's) that
    holds one of ``values``: a secret must never be seen there."""
    seen: list[str] = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            for pid in _pids():
                try:
                    cmd = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
                except OSError:
                    continue
                seen.extend(cmd for v in values if v in cmd)
            time.sleep(period)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        stop.set()
        watcher.join()
