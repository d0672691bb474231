"""serve.* through the real `inv` CLI: profiles of the loopback stand-in (tests/fixtures/serve/fake_sglang.py)
started by serve.up, checked, smoke-tested, followed and stopped, with the Mooncake password masked everywhere."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from rebuilt.tools.serve import procs

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "serve"
PASSWORD = "Zq9-mooncake-pw"


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Box:
    """A work directory, ports and the environment every `inv serve.*` of one test runs with."""

    def __init__(self, tmp_path: Path):
        self.work = tmp_path / "work"
        self.ports = dict(zip(("port", "prefill_port", "decode_port", "router_port", "bootstrap_port"), free_ports(5)))
        self.env = {**os.environ, "REBUILT_RECIPES_DIR": os.pathsep.join([str(FIX / "recipes"), str(ROOT / "recipes")]),
                    "INVOKE_REBUILT_SERVE_MOONCAKE_PASSWORD": PASSWORD,
                    "INVOKE_REBUILT_SERVE_MOONCAKE_URL": f"redis://:{PASSWORD}@127.0.0.1:6379"}
        self.outputs: list[str] = []

    def inv(self, task: str, *args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        sets = [a for k, v in self.ports.items() for a in ("--set", f"serve.{k}={v}")]
        argv = [sys.executable, "-m", "invoke", task, *args, "--workdir", str(self.work),
                "--set", "serve.model_path=/models/fake-llama", "--set", "serve.stop_grace=2", *sets]
        proc = subprocess.run(argv, cwd=ROOT, env={**self.env, **(env or {})}, capture_output=True, text=True,
                              timeout=timeout)
        self.outputs.append(proc.stdout + proc.stderr)
        return proc

    def state(self, profile: str) -> dict:
        return json.loads((self.work / "serve" / profile / "state.json").read_text())

    def sessions(self, profile: str) -> dict[str, list[int]]:
        return {n: procs.members(e["pgid"]) for n, e in self.state(profile)["roles"].items()}

    def leaks(self) -> list[str]:
        """Every output and every file under the work directory that shows the password."""
        found = [f"output {i}" for i, text in enumerate(self.outputs) if PASSWORD in text]
        for p in self.work.rglob("*"):
            if p.is_file() and PASSWORD in p.read_text(errors="replace"):
                found.append(str(p))
        return found


@pytest.fixture
def box(tmp_path):
    b = Box(tmp_path)
    yield b
    for state in b.work.glob("serve/*/state.json"):  # never leave a server behind, whatever failed
        for entry in json.loads(state.read_text())["roles"].values():
            procs.stop(entry["pgid"], ticks=entry.get("start_ticks"), grace=1)


def test_pd_profile_up_status_smoke_logs_down(box):
    up = box.inv("serve.up", "fake-pd")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "fake-pd is ready" in up.stdout
    assert up.stdout.index("started prefill") < up.stdout.index("ready decode") < up.stdout.index("started router")
    state_file = box.work / "serve" / "fake-pd" / "state.json"
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    state = box.state("fake-pd")
    assert state["order"] == ["prefill", "decode", "router"]
    router = state["roles"]["router"]
    assert router["argv"][-6:] == ["--decode", f"http://127.0.0.1:{box.ports['decode_port']}", "--host",
                                   "127.0.0.1", "--port", str(box.ports["router_port"])]
    assert f"http://127.0.0.1:{box.ports['prefill_port']}" in router["argv"]
    assert state["roles"]["prefill"]["env"]["MOONCAKE_META_SERVER_PASSWORD"] == "***"
    assert state["roles"]["prefill"]["env"]["MOONCAKE_META_SERVER_URL"] == "redis://***@127.0.0.1:6379"
    sessions = box.sessions("fake-pd")
    assert len(sessions["prefill"]) >= 3  # the log pipe, the server and its scheduler-like child

    st = box.inv("serve.status")
    assert st.returncode == 0, st.stdout + st.stderr
    for role in ("prefill", "decode", "router"):
        assert f"{role} " in st.stdout and "running" in st.stdout

    smoke = box.inv("serve.smoke", "--expect", "paris")
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert "answer: 'Paris'" in smoke.stdout and "time to first byte" in smoke.stdout and "total" in smoke.stdout
    assert f":{box.ports['router_port']}/v1/chat/completions" in smoke.stdout

    logs = box.inv("serve.logs", "--role", "prefill", "--lines", "200")
    assert "env MOONCAKE_META_SERVER_PASSWORD=***" in logs.stdout
    assert "redis://***@127.0.0.1:6379" in logs.stdout
    router_log = box.inv("serve.logs", "--role", "router")
    assert "POST /v1/chat/completions" in router_log.stdout

    down = box.inv("serve.down")
    assert down.returncode == 0, down.stdout + down.stderr
    order = [line.split()[1] for line in down.stdout.splitlines() if line.startswith("stopped ")]
    assert order == ["router", "decode", "prefill"]
    assert "SIGTERM" in down.stdout  # decode ignores SIGINT: the stop escalated
    every_pid = [pid for pids in sessions.values() for pid in pids]
    assert [pid for pid in every_pid if procs.alive(pid)] == []
    assert all(procs.members(e["pgid"]) == [] for e in box.state("fake-pd")["roles"].values())

    after = box.inv("serve.status")
    assert after.returncode == 3 and "stopped" in after.stdout
    assert box.leaks() == []


def test_dry_run_shows_env_and_commands_and_starts_nothing(box):
    out = box.inv("serve.up", "fake-pd", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "export MOONCAKE_META_SERVER_PASSWORD='***'" in out.stdout
    assert f"--port {box.ports['router_port']}" in out.stdout and "# role router" in out.stdout
    assert "(dry run: nothing was started)" in out.stdout
    assert not (box.work / "serve").exists()
    assert box.leaks() == []


def test_a_port_in_use_is_refused_naming_its_holder(box):
    holder = socket.socket()
    holder.bind(("127.0.0.1", box.ports["port"]))
    holder.listen()
    try:
        out = box.inv("serve.up", "fake-single")
    finally:
        holder.close()
    assert out.returncode == 2
    assert f"port {box.ports['port']} (role server) is already in use by pid {os.getpid()}" in out.stderr
    assert not (box.work / "serve" / "fake-single" / "state.json").exists()


def test_a_role_s_other_port_in_use_is_refused_too(box):
    holder = socket.socket()
    holder.bind(("127.0.0.1", box.ports["bootstrap_port"]))
    holder.listen()
    try:
        out = box.inv("serve.up", "fake-pd")
    finally:
        holder.close()
    assert out.returncode == 2
    assert f"port {box.ports['bootstrap_port']} (role prefill) is already in use by pid {os.getpid()}" in out.stderr
    assert not (box.work / "serve" / "fake-pd" / "state.json").exists()


def test_a_role_that_crashes_at_start_fails_up_with_its_log_and_stops_the_others(box):
    out = box.inv("serve.up", "fake-pd", env={"FAKE_DECODE_CRASH": "1"})
    assert out.returncode == 1
    assert "role decode exited with status 1 before it was ready" in out.stderr
    assert "CUDA error: out of memory (fake)" in out.stderr
    assert "env MOONCAKE_META_SERVER_PASSWORD=***" in out.stderr  # the log tail is masked too
    assert "started router" not in out.stdout
    state = box.state("fake-pd")
    assert all(procs.members(e["pgid"]) == [] for e in state["roles"].values())
    assert box.leaks() == []


def test_a_slow_start_is_waited_for_and_a_deadline_fails(box):
    token = "hf_fromTheCallersEnv42"
    slow = box.inv("serve.up", "fake-single", env={"FAKE_LISTEN_DELAY": "1", "FAKE_WARMUP": "1",
                                                   "FAKE_HF_TOKEN": token})
    assert slow.returncode == 0, slow.stdout + slow.stderr
    assert "ready server" in slow.stdout
    assert "env HF_TOKEN=***" in box.inv("serve.logs").stdout  # a secret from ${VAR} is masked as well
    assert box.state("fake-single")["roles"]["server"]["env"]["HF_TOKEN"] == "***"
    assert not [p for p in box.work.rglob("*") if p.is_file() and token in p.read_text(errors="replace")]
    assert box.inv("serve.down").returncode == 0

    late = box.inv("serve.up", "fake-single", "--timeout", "2", env={"FAKE_WARMUP": "60"})
    assert late.returncode == 1
    assert "role server was not ready before the deadline (/health: HTTP 503)" in late.stderr
    assert "Uvicorn running on" in late.stderr
    assert all(procs.members(e["pgid"]) == [] for e in box.state("fake-single")["roles"].values())


@pytest.mark.parametrize("mode,message", [("error", "the server answered with an error: HTTP 400"),
                                          ("shape", "not a chat completion")])
def test_smoke_fails_on_a_wrong_answer(box, mode, message):
    assert box.inv("serve.up", "fake-single", env={"FAKE_WRONG": mode}).returncode == 0
    out = box.inv("serve.smoke")
    assert out.returncode == 3
    assert message in out.stderr
    assert box.inv("serve.down").returncode == 0


def test_a_role_that_dies_shows_in_status_and_ends_logs_follow(box):
    up = box.inv("serve.up", "fake-pd", env={"FAKE_DECODE_DIE_AFTER": "2"})
    assert up.returncode == 0, up.stdout + up.stderr
    follow = box.inv("serve.logs", "--role", "decode", "--follow", timeout=60)
    assert follow.returncode == 0
    assert "fatal: scheduler died (fake)" in follow.stdout
    assert "(every role followed has exited)" in follow.stdout
    st = box.inv("serve.status")
    assert st.returncode == 3
    decode_line = next(line for line in st.stdout.splitlines() if line.startswith("decode"))
    assert "running" not in decode_line
    again = box.inv("serve.up", "fake-pd")
    assert again.returncode == 2 and "role prefill of profile fake-pd is already running" in again.stderr
    assert box.inv("serve.down").returncode == 0
    assert box.leaks() == []


def test_a_serving_bench_spec_starts_the_profile_and_records_it(box, tmp_path):
    from rebuilt.tools.bench import compare, store

    spec_path = tmp_path / "serve-fake.toml"
    spec_path.write_text('kind = "serving"\nprofile = "fake-single"\nrepeats = 2\n'
                         "[matrix]\nmax_concurrency = [4]\nnum_prompts = [10]\nrandom_input_len = [64]\n"
                         "random_output_len = [8]\n[client]\nseed = 1\n")
    env = {**box.env, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "fixtures" / "bench"), str(ROOT)])}
    code = ("import sys, json; from rebuilt.tools.bench import run, spec; from rebuilt.core import settings;"
            "s = settings.resolve({'workdir': sys.argv[1], 'serve.port': sys.argv[2], 'serve.stop_grace': '2',"
            " 'serve.model_path': '/models/fake-llama'});"
            "o = run.execute(spec.load(sys.argv[3]), python=sys.executable, model_path='/models/fake-llama',"
            " workdir=sys.argv[1], serve_settings=s, echo=print); print('RUN', o.run_dir)")
    runs = []
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", code, str(box.work), str(box.ports["port"]), str(spec_path)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        box.outputs.append(proc.stdout + proc.stderr)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "starting serving profile fake-single" in proc.stdout
        runs.append(store.load_run(proc.stdout.split("RUN ")[-1].strip()))
    data = runs[0]
    assert data["base_url"] == f"http://127.0.0.1:{box.ports['port']}"
    assert data["serve"]["profile"] == "fake-single" and data["serve"]["started_by_bench"] is True
    assert "--model-path" in data["serve"]["roles"]["server"]["argv"]
    assert data["cases"][0]["repeats"][0]["completed"] == 10
    assert all(procs.members(e["pgid"]) == [] for e in box.state("fake-single")["roles"].values())
    rows = compare.compare(runs[0], runs[1])
    assert rows and compare.regressions(rows) == []

    assert box.inv("serve.up", "fake-single").returncode == 0  # started by hand: used, and left running
    proc = subprocess.run([sys.executable, "-c", code, str(box.work), str(box.ports["port"]), str(spec_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    box.outputs.append(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "using serving profile fake-single started by serve.up" in proc.stdout
    third = store.load_run(proc.stdout.split("RUN ")[-1].strip())
    assert third["serve"]["started_by_bench"] is False
    assert box.inv("serve.status").returncode == 0
    assert box.inv("serve.down").returncode == 0
    assert box.leaks() == []


def test_one_role_at_a_time_like_one_role_per_host(box):
    alone = box.inv("serve.up", "fake-pd", "--role", "router", "--timeout", "3")
    assert "router is meant to start after prefill, which does not run here (another host?)" in alone.stdout
    assert alone.returncode == 1  # /health answers, but /v1/models has no worker behind it
    assert "role router was not ready before the deadline (/v1/models: HTTP 503)" in alone.stderr

    for role in ("prefill", "decode"):
        out = box.inv("serve.up", "fake-pd", "--role", role)
        assert out.returncode == 0, out.stdout + out.stderr
        assert [line for line in out.stdout.splitlines() if line.startswith("started ")] == [
            next(line for line in out.stdout.splitlines() if line.startswith(f"started {role}:"))]
    router = box.inv("serve.up", "fake-pd", "--role", "router")
    assert router.returncode == 0, router.stdout + router.stderr
    lines = router.stdout.splitlines()
    assert lines.index(next(x for x in lines if x.startswith("ready decode"))) < \
        lines.index(next(x for x in lines if x.startswith("started router")))  # waited for the running workers
    assert box.state("fake-pd")["order"] == ["prefill", "decode", "router"]
    assert box.inv("serve.smoke").returncode == 0
    assert box.inv("serve.status").returncode == 0
    down = box.inv("serve.down", "--role", "decode")
    assert "stopped decode" in down.stdout and "stopped prefill" not in down.stdout
    assert box.inv("serve.status").returncode == 3
    assert box.inv("serve.down").returncode == 0
    assert all(procs.members(e["pgid"]) == [] for e in box.state("fake-pd")["roles"].values())


@pytest.mark.slow
def test_h200_bench_runs_a_serving_spec_against_a_profile(box, tmp_path):
    """nox -s h200_bench on a fake GPU machine (REBUILT_PYTHON: no build) with a spec naming a profile."""
    from tests.integration.test_nox import H200, health_report, nox

    bench_fix = ROOT / "tests" / "fixtures" / "bench"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{bench_fix / "bin" / "nvidia-smi"}" "$@"\n')
    python = bin_dir / "python-target"
    python.write_text('#!/bin/sh\ncase "$1" in */gpu_health.py) cat "$FAKE_GPU_HEALTH"; exit 0;; esac\n'
                      f'exec "{sys.executable}" "$@"\n')
    for p in (smi, python):
        p.chmod(0o755)
    report = tmp_path / "health.json"
    report.write_text(json.dumps(health_report(0.8)))
    spec = tmp_path / "serving-fake.toml"
    spec.write_text('kind = "serving"\nprofile = "fake-pd"\n[matrix]\nmax_concurrency = [2]\nnum_prompts = [6]\n'
                    "random_input_len = [32]\nrandom_output_len = [4]\n")
    folders = (FIX / "recipes", ROOT / "tests" / "fixtures" / "recipes", ROOT / "recipes")
    recipes = os.pathsep.join(map(str, folders))
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_NVSMI_GPUS": H200, "FAKE_NVSMI_APPS": "",
           "PYTHONPATH": os.pathsep.join([str(bench_fix), str(ROOT)]), "REBUILT_PYTHON": str(python),
           "FAKE_GPU_HEALTH": str(report), "REBUILT_RECIPES_DIR": recipes,
           "INVOKE_REBUILT_SERVE_MOONCAKE_PASSWORD": PASSWORD, "INVOKE_REBUILT_SERVE_MODEL_PATH": "/models/fake",
           "INVOKE_REBUILT_SERVE_STOP_GRACE": "2",
           **{f"INVOKE_REBUILT_SERVE_{k.upper()}": str(v) for k, v in box.ports.items()}}
    r = nox(tmp_path, "-s", "h200_bench", "--", "--spec", str(spec), "--model-path", "/models/fake",
            "--workdir", str(box.work), env=env)
    out = r.stdout + r.stderr
    box.outputs.append(out)
    assert r.returncode == 0, out[-3000:]
    assert "starting serving profile fake-pd for this run" in out and "stopped router" in out
    (run_dir,) = [d for d in (box.work / "bench").iterdir() if d.is_dir()]
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "complete" and run["base_url"] == f"http://127.0.0.1:{box.ports['router_port']}"
    assert run["serve"]["profile"] == "fake-pd" and set(run["serve"]["roles"]) == {"prefill", "decode", "router"}
    assert run["serve"]["roles"]["prefill"]["env"]["MOONCAKE_META_SERVER_PASSWORD"] == "***"
    assert run["gpu_health"]["harness_ok"] is True
    assert all(procs.members(e["pgid"]) == [] for e in box.state("fake-pd")["roles"].values())
    assert box.leaks() == []


# The router release current when sglang v0.5.4 came out (its wheel was built on 2025-10-21, sglang's
# sdist on 2025-10-24): the real one, from the package index, in front of the stand-in workers.
ROUTER = "sglang-router==0.2.1"
CACHE = Path(os.environ.get("REBUILT_TESTS_CACHE", Path.home() / ".cache" / "rebuilt-tests"))


def router_python() -> Path:
    """A venv with the real sglang_router, made once under ~/.cache/rebuilt-tests/venvs (locked)."""
    import fcntl

    home = CACHE / "venvs" / f"{ROUTER.replace('==', '-')}-py{sys.version_info[0]}.{sys.version_info[1]}"
    python = home / "bin" / "python"
    home.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{home}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and subprocess.run([str(python), "-c", "import sglang_router"]).returncode == 0:
            return python
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(home)], check=True)
        proc = subprocess.run([str(python), "-m", "pip", "install", "-q", ROUTER], capture_output=True, text=True)
        assert proc.returncode == 0, f"cannot install {ROUTER} from the package index:\n{proc.stderr[-2000:]}"
    return python


@pytest.mark.upstream
def test_the_real_sglang_router_in_front_of_the_profile(box):
    python = router_python()
    up = box.inv("serve.up", "fake-pd-router", "--python", str(python), "--timeout", "120")
    assert up.returncode == 0, up.stdout + up.stderr
    state = box.state("fake-pd-router")
    assert state["roles"]["router"]["argv"][1:3] == ["-m", "sglang_router.launch_router"]
    smoke = box.inv("serve.smoke", "--expect", "paris")
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert "answer: 'Paris'" in smoke.stdout  # max_tokens 1 went through the router to the decode worker
    log = box.inv("serve.logs", "--role", "router", "--lines", "400").stdout
    assert f"Activated worker http://127.0.0.1:{box.ports['prefill_port']}" in log
    assert f"Activated worker http://127.0.0.1:{box.ports['decode_port']}" in log
    decode_log = box.inv("serve.logs", "--role", "decode").stdout
    assert "POST /v1/chat/completions" in decode_log
    assert box.inv("serve.down").returncode == 0
    assert all(procs.members(e["pgid"]) == [] for e in box.state("fake-pd-router")["roles"].values())
    assert box.leaks() == []


def test_one_up_or_down_of_a_profile_at_a_time(box):
    from rebuilt.tools.serve import state

    with state.locked(box.work, "fake-single"):
        out = box.inv("serve.up", "fake-single")
    assert out.returncode == 2
    assert f"another serve.up or serve.down of fake-single is running in {box.work} (pid {os.getpid()})" in out.stderr
    assert not (box.work / "serve" / "fake-single" / "state.json").exists()


def _kill_session(entry: dict) -> None:
    import signal
    import time

    os.killpg(entry["pgid"], signal.SIGKILL)
    end = time.monotonic() + 30
    while procs.members(entry["pgid"]) and time.monotonic() < end:
        time.sleep(0.05)
    assert procs.members(entry["pgid"]) == []


def _row(out: str, role: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(f"{role} "))


def test_a_role_killed_with_kill_9_never_shows_ready(box):
    import signal

    assert box.inv("serve.up", "fake-single").returncode == 0
    entry = box.state("fake-single")["roles"]["server"]
    assert entry["status"] == "ready"
    os.kill(entry["pid"], signal.SIGKILL)  # the role's leader only: the server it started is left
    st = box.inv("serve.status")
    assert st.returncode == 3, st.stdout + st.stderr
    row = _row(st.stdout, "server")
    assert "ready" not in row and "running" not in row and "died" in row and "still run" in row, row
    down = box.inv("serve.down")  # what is left of the session is still the role's: stopped
    assert down.returncode == 0 and "stopped server" in down.stdout, down.stdout + down.stderr
    assert procs.members(entry["pgid"]) == []

    assert box.inv("serve.up", "fake-single").returncode == 0
    entry = box.state("fake-single")["roles"]["server"]
    _kill_session(entry)  # the whole role at once
    row = _row(box.inv("serve.status").stdout, "server")
    assert "ready" not in row and "died" in row and "still run" not in row, row


def test_down_never_signals_a_program_that_reused_a_role_s_pid(box):
    import signal
    import subprocess

    assert box.inv("serve.up", "fake-single").returncode == 0
    state = box.state("fake-single")
    entry = state["roles"]["server"]
    _kill_session(entry)
    # Another program's session now has the number (what pid reuse does): same pid, another start time.
    other = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        assert procs.start_ticks(other.pid) != entry["start_ticks"]
        entry.update(pid=other.pid, pgid=other.pid)
        (box.work / "serve" / "fake-single" / "state.json").write_text(json.dumps(state))
        down = box.inv("serve.down")
        assert down.returncode == 0, down.stdout + down.stderr
        assert other.poll() is None, "serve.down signalled a process it did not start"
        assert f"pid {other.pid} is now another program's: left alone" in down.stdout
        st = box.inv("serve.status")
        assert "running" not in _row(st.stdout, "server")
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait()


def test_smoke_of_a_profile_that_no_longer_runs_sends_nothing(box):
    from tests.netfakes import DripServer

    assert box.inv("serve.up", "fake-single").returncode == 0
    _kill_session(box.state("fake-single")["roles"]["server"])
    with DripServer(port=box.ports["port"]) as other:  # something else listens on the port now
        out = box.inv("serve.smoke", "--timeout", "600", timeout=60)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "profile fake-single is not running: its server" in out.stderr and "nothing was sent" in out.stderr
    assert other.hits == 0


def test_smoke_ends_within_its_timeout_against_a_server_that_drips_bytes(box):
    from tests.netfakes import DripServer

    with DripServer(interval=0.5) as drip:  # one byte every 0.5 s: a per-read time-out never fires
        out = box.inv("serve.smoke", "--url", drip.url, "--timeout", "2", timeout=60)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "no answer from" in out.stderr and "(--timeout 2)" in out.stderr and "TimedOut" in out.stderr
    assert "Traceback" not in out.stderr


def test_smoke_with_nothing_listening_fails_at_once(box):
    from tests.netfakes import closed_port

    # 10 retries with back-off would take minutes: a refused connection is not retried
    out = box.inv("serve.smoke", "--url", f"http://127.0.0.1:{closed_port()}", "--timeout", "600",
                  "--retries", "10", timeout=60)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "connection refused (nothing listens there)" in out.stderr
