"""The program's face does not change by accident: `inv --list`, every task's `--help`, and the dry
run of every build task on both shipped stacks are compared with the recorded copies in
``tests/integration/identity/``.

A deliberate change of the output is recorded again with ``REBUILT_RECORD_IDENTITY=1 pytest
tests/integration/test_cli_identity.py`` and shows up in the diff of the commit that made it.
Machine-dependent parts (paths, memory, CPU count, tool versions) are replaced by placeholders. What
decides the checks' verdicts and the job counts (2 CPUs, 20 of 24 GiB available, 60 GiB free disk) is
fixed for the commands run here by a ``sitecustomize.py`` on their PYTHONPATH: a CI machine with less
free disk would otherwise move the disk check from the warnings to the failures.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STORE = Path(__file__).with_name("identity")
RECORD = os.environ.get("REBUILT_RECORD_IDENTITY") == "1"
STACKS = ("sglang-0.5.4", "aiak")
BUILD_TASKS = ("deepep", "extras", "flashinfer", "sgl-kernel", "sglang", "speedgate", "stack", "torch",
               "torchvision", "vllm")


FIXED_MACHINE = """\
from rebuilt.core import machine

machine.cpus = lambda: 2
machine.meminfo = lambda: (20.0, 24.0)
machine.disk_free_gb = lambda path: 60.0
"""


def inv(*args: str, cwd: Path, env: dict) -> str:
    done = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)
    return f"exit {done.returncode}\n{done.stdout}{done.stderr}"


def normal(text: str, subs: dict[str, str]) -> str:
    for old, new in sorted(subs.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(old, new)
    text = re.sub(r"\d+(\.\d+)? GiB", "N GiB", text)
    text = re.sub(r"\b\d+ CPUs\b", "N CPUs", text)
    text = re.sub(r"= \d+\)", "= N)", text)
    text = re.sub(r"\b\d+\.\d+(\.\d+)?([a-z0-9.+-]*)", "V", text)  # versions of the machine's tools
    return text


def compare(name: str, text: str) -> None:
    path = STORE / f"{name}.txt"
    if RECORD:
        STORE.mkdir(exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"{path} is missing: record it with REBUILT_RECORD_IDENTITY=1"
    assert text == path.read_text(), f"{name}: the output differs from {path}"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("identity")
    home = tmp / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_", "REBUILT_", "CONDA"))}
    site = tmp / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(FIXED_MACHINE)
    env.update(HOME=str(home), COLUMNS="100", PYTHONPATH=str(site))
    subs = {str(tmp / "wd"): "<WORKDIR>", str(ROOT): "<ROOT>", sys.executable: "<PYTHON>", sys.prefix: "<PREFIX>",
            str(home): "<HOME>"}
    return env, subs, tmp


def test_task_list(world):
    env, subs, _ = world
    compare("list", normal(inv("--list", cwd=ROOT, env=env), subs))


def _tasks(env) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "invoke", "--list", "--list-format", "json"], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True).stdout

    def names(coll: dict, prefix: str = "") -> list[str]:
        own = [prefix + t["name"] for t in coll["tasks"]]
        return own + [n for sub in coll["collections"] for n in names(sub, f"{prefix}{sub['name']}.")]

    return names(json.loads(out))


def test_every_help(world):
    env, subs, _ = world
    texts = [f"## {t}\n" + inv(t, "--help", cwd=ROOT, env=env) for t in _tasks(env)]
    compare("help", normal("\n".join(texts), subs))


@pytest.mark.parametrize("stack", STACKS)
def test_every_build_dry_run(world, stack):
    env, subs, tmp = world
    texts = [f"## build.{task} --stack {stack}\n" + inv(f"build.{task}", "--dry-run", "--stack", stack, "--python",
                                                          sys.executable, "--workdir", str(tmp / "wd"), "--jobs", "4",
                                                          cwd=ROOT, env=env)
             for task in BUILD_TASKS]
    compare(f"dry-run-{stack}", normal("\n".join(texts), subs))
