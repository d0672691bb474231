"""vLLM 0.6.4.post1 from its sdist, laid out like the GitHub tag: the existing-torch step side by side with
upstream's own use_existing_torch.py, then the build as far as a machine without CUDA goes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.upstream import sdists
from tests.upstream.conftest import inv

FILES = "requirements*.txt pyproject.toml"

# Where the two ways differ on this tree (docs/UPSTREAMS.md, vLLM). Upstream removes every line
# containing "torch"; rebuilt removes requirements naming a protected distribution, then what pip says
# cannot coexist with the installed torch (xformers, removed by both).
UPSTREAM_ONLY = {
    ("requirements-cuda.txt", "# These must be updated alongside torch"),
    ("requirements-neuron.txt", "torch-neuronx >= 2.1.2"),
    ("requirements-test.txt", "    #   torch"),
    ("requirements-test.txt", "    #   torchvision"),
    ("requirements-test.txt", "    # via torch"),
    ("requirements-tpu.txt", "# Install torch_xla"),
    ("requirements-tpu.txt", "--extra-index-url https://download.pytorch.org/whl/nightly/cpu"),
    ("requirements-tpu.txt", "torch_xla[tpu] @ https://storage.googleapis.com/pytorch-xla-releases/wheels/tpuvm/"
                             "torch_xla-2.6.0.dev20241028-cp310-cp310-linux_x86_64.whl"),
    ("requirements-xpu.txt", "intel-extension-for-pytorch @ https://intel-extension-for-pytorch.s3.us-east-1."
                             "amazonaws.com/ipex_dev/xpu/intel_extension_for_pytorch-2.5.10%2Bgit9d489a8-cp310-cp310-"
                             "linux_x86_64.whl"),
    ("requirements-xpu.txt", "oneccl_bind_pt @ https://intel-extension-for-pytorch.s3.us-east-1.amazonaws.com/"
                             "ipex_dev/xpu/oneccl_bind_pt-2.5.0%2Bxpu-cp310-cp310-linux_x86_64.whl"),
}
REBUILT_ONLY = {("requirements-hpu.txt", "triton"), ("requirements-test.txt", "triton==3.1.0")}


def removed_lines(tree: Path) -> set[tuple[str, str]]:
    """(file, line) pairs a tool removed from the committed files of a checkout."""
    diff = subprocess.run(["git", "-C", str(tree), "diff", "-U0", "--", *FILES.split()], capture_output=True,
                          text=True, check=True).stdout
    out, current = set(), None
    for line in diff.splitlines():
        if line.startswith("--- a/"):
            current = line[len("--- a/"):]
        elif line.startswith("-"):  # a removed line may itself start with "--" (--extra-index-url)
            out.add((current, line[1:]))
        elif line.startswith("+") and not line.startswith("+++ b/"):
            raise AssertionError(f"{tree}: a line was added or changed, not only removed: {line}")
    return out


def test_vllm_existing_torch_beside_upstreams_script_then_the_build(tmp_path, torch_venv, torch_state):
    url = sdists.checkout("vllm")
    theirs = tmp_path / "upstream-script"
    subprocess.run(["git", "clone", "-q", url, str(theirs)], check=True)
    subprocess.run([torch_venv, "use_existing_torch.py"], cwd=theirs, check=True, capture_output=True)
    upstream = removed_lines(theirs)

    before = torch_state(torch_venv)
    wd = tmp_path / "wd"
    r = inv("build.vllm", "--python", torch_venv, "--workdir", str(wd), "--jobs", "2", "--no-checks",
            "--set", f"vllm.url={url}")
    out = r.stdout + r.stderr
    # The steps before the compile pass; the wheel stops here because this machine has no CUDA toolkit.
    assert r.returncode == 1, out[-4000:]
    assert "[2/7] vllm:use-existing-torch" in out and "[3/7] vllm:build-requirements" in out
    assert "step vllm:wheel failed" in out, out[-4000:]
    assert "RuntimeError: Unknown runtime environment" in out  # setup.py: a torch without CUDA, VLLM_TARGET_DEVICE=cuda
    ours = removed_lines(wd / "src" / "vllm")

    assert ("requirements-cuda.txt", "xformers == 0.0.28.post3; platform_system == 'Linux' and platform_machine "
            "== 'x86_64'  # Requires PyTorch 2.5.1") in ours & upstream
    assert ("requirements-cpu.txt", 'torch == 2.5.1+cpu; platform_machine != "ppc64le"') in ours & upstream
    assert ("pyproject.toml", '    "torch == 2.5.1",') in ours & upstream
    assert upstream - ours == UPSTREAM_ONLY
    assert ours - upstream == REBUILT_ONLY

    [manifest] = sorted((wd / "manifests").glob("*-vllm.json"))
    steps = {s["name"]: s for s in json.loads(manifest.read_text())["steps"]}
    details = steps["use-existing-torch"]["details"]
    xformers = [d for d in details["dropped"] if d["text"].startswith("xformers")]
    assert xformers == [{"file": "requirements-cuda.txt", "line": 10, "text": xformers[0]["text"],
                         "reason": "cannot coexist with the protected versions: xformers 0.0.28.post3 depends on "
                                   "torch==2.5.1 (installed and protected: torch 2.13.0+cpu)"}]
    assert {(d["file"], d["text"]) for d in details["dropped"]} == {(f, text.strip()) for f, text in ours}
    assert set(details["resolved"]) == {"requirements-build.txt", "requirements-cuda.txt"}
    assert steps["build-requirements"]["status"] == "done"
    assert torch_state(torch_venv) == before  # the CPU torch is the same files
