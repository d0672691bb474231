"""flashinfer-python 0.4.1 (editable, no nvcc) then sglang 0.5.4 from their sdists, laid out like the GitHub
tags, into one venv with the CPU torch 2.13.0 kept: the order of the stack (flashinfer before sglang).

The index here lacks flashinfer's pinned ``apache-tvm-ffi==0.1.0b15``: the test checks that, says so
(a warning in pytest's summary) and puts a stand-in on PIP_FIND_LINKS, the real 0.1.0 wheel labelled
``0.1.0b15+standin.from.0.1.0`` (tests/upstream/standins.py).
"""

from __future__ import annotations

import json
import subprocess
import warnings

import pytest

from tests.upstream import sdists, standins
from tests.upstream.conftest import inv, pip_list


def _tvm_ffi_env(python: str) -> dict:
    if sdists.pip_has(python, standins.PINNED):
        return {}
    folder = standins.tvm_ffi_findlinks()
    warnings.warn(f"the package index here has no {standins.PINNED} (flashinfer 0.4.1's pinned build and runtime "
                  f"requirement): using the stand-in apache-tvm-ffi {standins.LABEL} from {folder}", stacklevel=2)
    return {"PIP_FIND_LINKS": f"{folder}"}


def _manifest_steps(wd, recipe: str) -> dict:
    [path] = sorted((wd / "manifests").glob(f"*-{recipe}.json"))
    data = json.loads(path.read_text())
    return data, {s["name"]: s for s in data["steps"]}


def test_flashinfer_editable_then_sglang_with_the_cpu_torch_kept(tmp_path, torch_venv, torch_state):
    env = _tvm_ffi_env(torch_venv)
    before = torch_state(torch_venv)
    wd = tmp_path / "wd"

    r = inv("build.flashinfer", "--python", torch_venv, "--workdir", str(wd), "--jobs", "2", "--no-checks",
            "--set", f"flashinfer.url={sdists.checkout('flashinfer')}", env=env)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    data, steps = _manifest_steps(wd, "flashinfer")
    assert data["source"]["ref"] == "v0.4.1" and list(steps) == ["fetch", "build-requirements", "install", "verify"]
    assert steps["install"]["details"]["dropped"] == ["torch"]  # requirements.txt's torch: the CPU one is kept
    have = pip_list(torch_venv)
    assert have["flashinfer-python"] == "0.4.1" and have["apache-tvm-ffi"].startswith("0.1.0b15+standin") == bool(env)
    assert torch_state(torch_venv) == before

    r = inv("build.sglang", "--python", torch_venv, "--workdir", str(wd), "--jobs", "2", "--no-checks",
            "--set", f"sglang.url={sdists.checkout('sglang')}", env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    data, steps = _manifest_steps(wd, "sglang")
    install = steps["install"]["details"]
    assert install["dropped"] == ["torch==2.8.0", "torchaudio==2.8.0", "torchvision"]
    # sglang and timm want torchvision; the one matching a +cpu torch (0.28.0+cpu) is only on the PyTorch
    # CPU index, not reachable here. sglang's torchaudio==2.8.0 cannot match torch 2.13 at all.
    refused = {x["dist"]: x for x in install["refused"]}
    assert set(refused) == {"torchvision", "torchaudio"}
    assert refused["torchvision"]["wanted_by"][0] == "sglang (torchvision)"
    assert "timm 1.0.16" in refused["torchvision"]["wanted_by"]
    assert "torchvision==0.28.0+cpu is not on the package index here" in refused["torchvision"]["reason"]
    assert refused["torchaudio"]["reason"] == ("sglang requires torchaudio==2.8.0, but torchaudio 2.13 pairs with "
                                               "torch 2.13: wanted torchaudio==2.13.0+cpu")
    assert "! refused torchvision" in out
    have = pip_list(torch_venv)
    assert "torchvision" not in have and "torchaudio" not in have
    assert have["triton"] == "3.7.1"  # xgrammar's triton, at torch 2.13.0's own pin (not the newest)
    assert have["sglang"] == "0.5.4" and have["timm"] == "1.0.16"
    assert torch_state(torch_venv)["torch"] == before["torch"]  # hash unchanged

    # sglang.srt.server_args imports torchvision (srt/configs/deepseek_ocr.py): with the refused
    # torchvision absent it stops at exactly that import, nothing half-installed ...
    server_args = [torch_venv, "-c", "import sglang.srt.server_args"]
    proc = subprocess.run(server_args, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr.rstrip().endswith("No module named 'torchvision'"), \
        proc.stderr[-3000:]
    assert "deepseek_ocr.py" in proc.stderr
    # ... while the index's torchvision 0.28.0 (a CUDA build), which upstream's install would bring, is broken
    # on this torch: the reason it is refused.
    subprocess.run([torch_venv, "-m", "pip", "install", "-q", "--no-deps", "torchvision==0.28.0"], check=True)
    proc = subprocess.run([torch_venv, "-c", "import torchvision"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1 and "operator torchvision::nms does not exist" in proc.stderr


@pytest.mark.parametrize("mode", ["index"])
def test_flashinfer_0_3_1_index_mode(tmp_path, torch_venv, torch_state, mode):
    """The aiak stack's flashinfer 0.3.1 from the index (an sdist, built in this environment), then its requirements."""
    before = torch_state(torch_venv)
    wd = tmp_path / "wd"
    r = inv("build.flashinfer", "--stack", "aiak", "--python", torch_venv, "--workdir", str(wd), "--no-checks",
            "--set", f"flashinfer.mode={mode}")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    data, steps = _manifest_steps(wd, "flashinfer")
    assert list(steps) == ["build-requirements-index", "install-index", "verify"]
    assert steps["install-index"]["details"]["dropped"] == ["torch"]
    have = pip_list(torch_venv)
    assert have["flashinfer-python"] == "0.3.1" and "requests" in have and "numpy" in have
    assert torch_state(torch_venv) == before
