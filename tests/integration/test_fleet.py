"""fleet.doctor and the inventory over real SSH: three sshd hosts on loopback (tests/integration/sshd.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.integration import sshd

fleet_hosts, spare_host = sshd.fleet_hosts, sshd.spare_host  # the fixtures

ROOT = Path(__file__).resolve().parents[2]


def inventory(fleet, **hosts) -> str:
    """fleet.hosts as JSON: every fixture host by its ~/.ssh/config alias, this interpreter, its work dir."""
    entries = {n: {"host": n, "python": sys.executable, "workdir": str(h.workdir)} for n, h in fleet.hosts.items()}
    entries.update(hosts)
    return json.dumps(entries)


def inv(fleet, *args, timeout=180, **env):
    env = fleet.env(**{"INVOKE_REBUILT_FLEET_HOSTS": inventory(fleet),
                       "INVOKE_REBUILT_FLEET_GROUPS": json.dumps({"h200": ["alpha", "beta"], "all": ["@h200", "gamma"]}),
                       **env})
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def table_rows(stdout: str) -> dict[str, list[str]]:
    lines = stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("check "))
    out = {}
    for line in lines[head + 1:]:
        if line.startswith(("* ", "failed checks:", "  ")):
            break
        parts = line.split()
        out[" ".join(parts[:-3])] = parts[-3:]
    return out


def test_doctor_on_three_hosts_marks_the_host_that_differs(fleet_hosts, tmp_path):
    r = inv(fleet_hosts, "fleet.doctor", "--hosts", "@all", "--offline", "-w", str(tmp_path / "wd"))
    assert r.returncode == 3, r.stdout + r.stderr  # gamma's driver is too old for this machine's CUDA
    assert "Traceback" not in r.stderr
    rows = table_rows(r.stdout)
    assert rows["gpu"][:2] == ["ok", "ok"] and rows["gpu"][2].endswith("*")  # H100 among H200s
    assert rows["python"] == ["ok", "ok", "ok"]  # the same everywhere: nothing marked
    assert "* gpu: gamma: NVIDIA H100 80GB HBM3" in r.stdout and "(most hosts: NVIDIA H200" in r.stdout
    assert "driver: gamma: 570.86.15" in r.stdout  # the failed check, its host and what to do
    # each host's result came back under the local work dir
    runs = list((tmp_path / "wd" / "fleet").glob("*/gamma/doctor.json"))
    assert runs and json.loads(runs[0].read_text())["status"] == "ok"


def test_doctor_json_names_what_differs_per_host(fleet_hosts, tmp_path):
    r = inv(fleet_hosts, "fleet.doctor", "--hosts", "alpha,gamma,beta", "--offline", "--json",
            "-w", str(tmp_path / "wd"))
    assert r.returncode == 3, r.stderr
    data = json.loads(r.stdout)
    assert list(data) == ["alpha", "gamma", "beta"]
    assert "gpu" in data["gamma"]["differs"] and data["alpha"]["differs"] == []
    gpu = [row for row in data["gamma"]["rows"] if row["name"] == "gpu"]
    assert len(gpu) == 2 and "H100" in gpu[0]["found"]


def test_a_destination_outside_the_inventory_and_the_default_work_dir(fleet_hosts, tmp_path):
    """An ~/.ssh/config alias, no inventory entry: the work dir is ~/rebuilt of the remote user."""
    beta = fleet_hosts.hosts["beta"]
    r = inv(fleet_hosts, "fleet.doctor", "--hosts", "beta", "--offline", "--json", "--force",
            "-w", str(tmp_path / "wd"), INVOKE_REBUILT_FLEET_HOSTS="{}",
            INVOKE_REBUILT_FLEET_PYTHON=sys.executable)
    assert r.returncode == 3, r.stderr
    assert json.loads(r.stdout)["beta"]["status"] == "ok"
    assert (beta.home / "rebuilt" / "fleet").is_dir()


def test_unknown_group_is_bad_input_with_did_you_mean(fleet_hosts, tmp_path):
    r = inv(fleet_hosts, "fleet.doctor", "--hosts", "@h20", "-w", str(tmp_path / "wd"))
    assert r.returncode == 2
    assert "unknown group '@h20' (did you mean 'h200'?)" in r.stderr and "Traceback" not in r.stderr


def test_config_shows_the_inventory(fleet_hosts, tmp_path):
    r = inv(fleet_hosts, "config", "--key", "fleet")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("fleet.hosts "))
    assert "host(s)" in lines[at] and "env INVOKE_REBUILT_FLEET_HOSTS" in lines[at]
    assert any(line.split()[:2] == ["alpha", "alpha"] for line in lines[at + 1:])  # one line per host
    assert any(line.split()[0] == "@h200" for line in lines if line.startswith("  "))  # one line per group


def test_the_shipped_rebuilt_is_reused_and_needs_nothing_installed(fleet_hosts, tmp_path, monkeypatch):
    """The archive is named by its content hash: a host that has it gets no second upload; it carries
    rebuilt, invoke and packaging, so the host's interpreter needs none of them installed."""
    from rebuilt.tools.fleet import run, ship
    from rebuilt.tools.fleet.inventory import FleetHost

    monkeypatch.setenv("HOME", str(fleet_hosts.client_home))  # its ~/.ssh/config
    alpha = fleet_hosts.hosts["alpha"]
    local, sha = ship.archive(tmp_path / "ship")
    uploads = []

    workdir = alpha.home / f"ship-{tmp_path.name}"  # a work dir of this test's own: nothing shipped there yet
    workdir.mkdir()

    def twice(session):
        session.rundir = f"{workdir}/fleet/run"
        put = session.conn.put
        session.conn.put = lambda *a, **k: (uploads.append(a), put(*a, **k))[1]
        return [ship.ensure(session, str(workdir), local, sha) for _ in range(2)]

    (res,) = run.run_all([FleetHost("alpha", "alpha")], twice, connect_timeout=10, timeout=60, run_id="t")
    assert res.status == "ok", res.message
    tree = Path(res.value[0])
    assert res.value == [str(tree)] * 2 and len(uploads) == 1
    assert (tree / ".complete").exists() and (tree / "_deps" / "invoke" / "__init__.py").exists()
    assert not list((workdir / "fleet").glob("*.tar.gz*"))  # the upload was removed after unpacking
    probe = subprocess.run(["ssh", "-F", str(fleet_hosts.client_home / ".ssh" / "config"), "alpha",
                            f"cd / && PYTHONPATH={tree}:{tree}/_deps /usr/bin/python3 -c 'import invoke, packaging, rebuilt; "
                            "print(invoke.__file__, rebuilt.__file__)'"],
                           capture_output=True, text=True, timeout=30)
    assert str(tree) in probe.stdout and "_deps/invoke" in probe.stdout, probe.stderr
    assert not os.listdir(workdir / "fleet" / "run")  # no pid file left


def test_secrets_reach_the_host_but_no_command_line_log_or_file(fleet_hosts, tmp_path):
    """A proxy URL with a password and a Mooncake password set here: the remote doctor sees the proxy
    (its redacted URL names the proxy host), while no process's command line on this machine (the hosts'
    processes included) and no file written here or on any host holds either value."""
    values = ["s3cretPW99x", "moonPW12345x"]
    with sshd.watch_command_lines(values) as seen:
        r = inv(fleet_hosts, "fleet.doctor", "--hosts", "alpha,gamma", "--json", "-w", str(tmp_path / "wd"),
                INVOKE_REBUILT_PROXY_URL=f"http://fleetuser:{values[0]}@127.0.0.1:3128",
                INVOKE_REBUILT_SERVE_MOONCAKE_PASSWORD=values[1])
    assert r.returncode == 3, r.stderr
    proxy = [row for row in json.loads(r.stdout)["gamma"]["rows"] if row["name"] == "proxy"]
    assert "http://***@127.0.0.1:3128" in proxy[0]["found"] and "INVOKE_REBUILT_PROXY_URL" in proxy[0]["found"]
    assert seen == []
    assert not any(v in r.stdout + r.stderr for v in values)
    for folder in (tmp_path, fleet_hosts.root):
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                assert not any(v.encode() in data for v in values), path
    for host in ("alpha", "gamma"):
        assert not list((fleet_hosts.hosts[host].workdir / "fleet" / "run").iterdir())  # secret folders gone
