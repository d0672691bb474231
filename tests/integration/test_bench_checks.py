"""Preflight for real: no nvidia-smi on this machine, fake nvidia-smi programs on a temporary PATH,
the import probe run with a real interpreter, a real loopback server for serving specs."""

from __future__ import annotations

import http.server
import os
import sys
import threading
from pathlib import Path

import pytest

from rebuilt.errors import CheckFailed
from rebuilt.tools.bench import preflight as pre
from rebuilt.tools.bench import spec as bspec

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "bench"
H200 = "NVIDIA H200|9.0|143771|570.86.15|1"
H100 = "NVIDIA H100 80GB HBM3|9.0|81559|570.86.15|1"


def fake_bin(tmp_path: Path) -> Path:
    """A folder with nvidia-smi and nsys that run the fixtures with this interpreter."""
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    for tool in ("nvidia-smi", "nsys"):
        p = d / tool
        p.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FIX / "bin" / tool}" "$@"\n')
        p.chmod(0o755)
    return d


@pytest.fixture
def gpus(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{fake_bin(tmp_path)}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("FAKE_NVSMI_FAIL", raising=False)
    monkeypatch.setenv("FAKE_NVSMI_APPS", "")

    def set_gpus(*specs: str, apps: str = "") -> None:
        monkeypatch.setenv("FAKE_NVSMI_GPUS", ";".join(specs))
        monkeypatch.setenv("FAKE_NVSMI_APPS", apps)

    return set_gpus


@pytest.fixture
def model(tmp_path):
    m = tmp_path / "model"
    m.mkdir()
    (m / "config.json").write_text("{}")
    return str(m)


def probe_env(*extra: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, [*extra, FIX]))}


def default_spec():
    return bspec.load(bspec.find("one-batch-default"))


def test_no_nvidia_smi_fails_at_once_with_one_message(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no nvidia-smi, as on this machine
    with pytest.raises(CheckFailed) as err:
        pre.run(default_spec(), python=sys.executable, model_path="/nowhere")
    assert str(err.value) == "no NVIDIA GPU: nvidia-smi is not on PATH"
    assert err.value.exit_code == 3 and "--dry-run" in err.value.hint


def test_h200_machine_passes_and_reports_versions(gpus, model):
    gpus(H200, H200)
    checks = pre.run(default_spec(), python=sys.executable, model_path=model, cuda_visible_devices="1",
                     env=probe_env())
    by = {c.name: c for c in checks}
    assert [c.status for c in checks] == ["ok", "ok", "ok", "ok"]
    assert by["gpu"].data["selected"] == [1] and by["gpu"].data["gpus"][1]["memory_total_mib"] == 143771
    mods = by["imports"].data["modules"]
    assert mods["sglang"]["version"] == "0.5.4" and mods["sgl_kernel"]["version"] == "0.3.16.post3"
    assert mods["flashinfer"]["version"] == "0.4.1" and "torch" in mods
    assert "sglang 0.5.4" in by["imports"].found


def test_h100_warns_but_passes(gpus, model):
    gpus(H100)
    checks = pre.run(default_spec(), python=sys.executable, model_path=model, env=probe_env())
    assert checks[0].status == "warn" and "not an H200" in checks[0].found


def test_other_processes_on_the_selected_gpu_fail(gpus, model):
    gpus(H200, H200, apps="4242|30000|1")
    with pytest.raises(CheckFailed, match=r"pid 4242 \(30000 MiB\)"):
        pre.run(default_spec(), python=sys.executable, model_path=model, cuda_visible_devices="1", env=probe_env())
    # the same process on GPU 1 does not matter to a run on GPU 0
    checks = pre.run(default_spec(), python=sys.executable, model_path=model, cuda_visible_devices="0",
                     env=probe_env())
    assert checks[1].status == "ok"


def test_memory_held_by_an_invisible_process_fails(gpus, model):
    gpus("NVIDIA H200|9.0|143771|570.86.15|60000")
    with pytest.raises(CheckFailed, match="60000 MiB used"):
        pre.run(default_spec(), python=sys.executable, model_path=model, env=probe_env())


def test_not_enough_gpus_for_tp(gpus, model, tmp_path):
    gpus(H200, H200)
    p = tmp_path / "tp.toml"
    p.write_text("[server]\ntp = 2\n")
    with pytest.raises(CheckFailed, match="2 GPU\\(s\\) needed, 1 visible"):
        pre.run(bspec.load(p), python=sys.executable, model_path=model, cuda_visible_devices="0")


def test_driver_failure(gpus, monkeypatch):
    gpus(H200)
    monkeypatch.setenv("FAKE_NVSMI_FAIL", "1")
    with pytest.raises(CheckFailed, match="nvidia-smi failed \\(exit 9\\): NVIDIA-SMI has failed"):
        pre.query_gpus()


def test_every_failure_is_listed_in_one_error(gpus, tmp_path):
    gpus(H200)
    broken = tmp_path / "broken"
    (broken / "flashinfer").mkdir(parents=True)
    (broken / "flashinfer" / "__init__.py").write_text(
        'raise ImportError("libcuda.so.1: cannot open shared object file")\n')
    p = tmp_path / "nsys.toml"
    p.write_text("[wrappers.nsys]\nenabled = true\nprogram = 'nsys-not-installed'\n")
    with pytest.raises(CheckFailed) as err:
        pre.run(bspec.load(p), python=sys.executable, model_path=str(tmp_path / "no-model"),
                env=probe_env(broken))
    text = str(err.value)
    assert "[fail] model:" in text and "no-model does not exist" in text
    assert "flashinfer: ImportError: libcuda.so.1: cannot open shared object file" in text
    assert "nsys-not-installed is not on PATH" in text
    assert "[fail] gpu" not in text


def test_missing_target_interpreter(gpus, model):
    gpus(H200)
    check = pre.check_imports("/nonexistent/bin/python")
    assert check.status == "fail" and "does not exist" in check.found


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_serving_needs_a_live_server():
    s = bspec.load(bspec.find("serving-random-ids"))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        checks = pre.run(s, python=sys.executable, model_path="/m", base_url=url, env=probe_env())
        assert [c.name for c in checks] == ["server", "imports"] and checks[0].status == "ok"
    finally:
        srv.shutdown()
        srv.server_close()
    with pytest.raises(CheckFailed, match=f"no sglang server at {url}.*start one with: X"):
        pre.run(s, python=sys.executable, model_path="/m", base_url=url, env=probe_env(),
                server_hint="; start one with: X")


def test_the_machine_probe_and_the_bench_read_one_gpu_query(gpus):
    """rebuilt.core.machine holds the one nvidia-smi query: the build's machine probe (manifests, the doctor's
    GPU rows) sees the same GPUs, with the same fields, as the bench's checks."""
    from rebuilt.core import machine

    gpus(H200, H100)
    assert machine.gpus() == pre.query_gpus()
    assert [g["name"] for g in machine.gpus()] == ["NVIDIA H200", "NVIDIA H100 80GB HBM3"]
    assert machine.gpus()[0]["memory_total_mib"] == 143771 and machine.gpus()[0]["driver"] == "570.86.15"


def test_without_nvidia_smi_the_machine_probe_has_no_gpus_and_the_bench_stops(tmp_path, monkeypatch):
    from rebuilt.core import machine

    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi
    assert machine.gpus() == []
    with pytest.raises(CheckFailed, match="nvidia-smi is not on PATH"):
        pre.query_gpus()
