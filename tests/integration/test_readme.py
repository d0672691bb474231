"""The README's set-up commands and sample output are what the project does today."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
# The README shows a build host's paths; the test maps them to this machine's.
SHOWN_PYTHON = "/opt/envs/sgl/bin/python"
SHOWN_WORKDIR = "/home/me/rebuilt/.rebuilt"
MACHINE_ENV = ("CUDA_HOME", "CUDACXX", "CUDAHOSTCXX", "NVCC_CCBIN")  # where this machine's CUDA and gcc are


def sample(command: str) -> list[str]:
    """The fenced block that follows the paragraph naming ``command``."""
    at = README.index(f"`{command}`")
    block = re.search(r"^```\n(.*?)^```", README[at:], re.MULTILINE | re.DOTALL)
    assert block, f"no sample output after {command} in README.md"
    return block.group(1).splitlines()


def normal(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        s = line.strip()
        if s.startswith(("python ", "workdir ", "jobs ", "! ")):
            continue  # the machine's interpreter, folder, CPUs and memory
        m = re.match(r"env  ([A-Z_]+)=", s)
        if m and m.group(1) in MACHINE_ENV:
            s = f"env  {m.group(1)}=<this machine's>"
        out.append(s)
        if s.startswith("(dry run"):
            break
    return out


def test_readme_opens_with_the_two_set_up_commands():
    first_block = re.search(r"^```bash\n(.*?)^```", README, re.MULTILINE | re.DOTALL).group(1)
    commands = [ln for ln in first_block.splitlines() if ln and not ln.startswith("#")]
    assert commands == ["pip install -e . && inv build.sgl-kernel --dry-run", "bash .ci/run"]


def test_the_dry_run_sample_is_what_the_command_prints(tmp_path):
    workdir = tmp_path / ".rebuilt"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_REBUILT_", "REBUILT_"))}
    r = subprocess.run([sys.executable, "-m", "invoke", "build.sgl-kernel", "--dry-run", "--jobs", "64",
                        "--python", sys.executable, "--workdir", str(workdir)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    printed = r.stdout.replace(str(workdir), SHOWN_WORKDIR).replace(sys.executable, SHOWN_PYTHON)
    printed = printed.replace(os.path.dirname(sys.executable), os.path.dirname(SHOWN_PYTHON))
    assert normal(sample("inv build.sgl-kernel --dry-run --jobs 64")) == normal(printed.splitlines())
    assert "checks for a real build:" in r.stdout and "verdict:" in r.stdout
