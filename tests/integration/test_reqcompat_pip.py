"""The resolver-backed steps with the real pip, against a local package index of tiny wheels.

The target is a venv holding a stand-in torch 2.13.0+cpu (a tiny wheel named torch, like the CPU
torch: no triton in its Requires-Dist). Nothing reaches the network (PIP_NO_INDEX, find-links).
"""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path

import pytest

from rebuilt.build import actions, guard
from rebuilt.build.plan import Step
from rebuilt.core import runner
from tests.fakewheels import make_wheel

PROTECTED = ["torch", "torchvision", "torchaudio", "triton"]


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("index")
    make_wheel(d, "torch", "2.13.0+cpu", ["filelock"])
    make_wheel(d, "torch", "2.5.1")
    make_wheel(d, "filelock", "3.0")
    make_wheel(d, "xformers", "0.0.28.post3", ["torch==2.5.1"])
    make_wheel(d, "helper", "1.0", ["torch==2.5.1"])
    make_wheel(d, "app-with-helper", "1.0", ["helper"])
    make_wheel(d, "plain", "1.0")
    make_wheel(d, "torchvision", "0.28.0", ["torch==2.13.0"],
               code="raise ImportError('operator torchvision::nms does not exist')\n")
    make_wheel(d, "timmish", "1.0", ["torchvision", "plain"], code="__version__ = '1.0'\n")
    make_wheel(d, "triton", "3.9.0")
    make_wheel(d, "triton", "3.7.1")
    make_wheel(d, "xgram", "0.1.25", ["triton; platform_system == 'Linux'"])
    make_wheel(d, "app", "1.0", ["timmish", "xgram", "plain", "torch==2.8.0", "torchaudio==2.8.0"])
    return d


@pytest.fixture
def env(index, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    monkeypatch.delenv("PIP_CONSTRAINT", raising=False)
    return dict(os.environ)


@pytest.fixture
def target(tmp_path, env) -> str:
    path = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(path)
    python = str(path / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", "torch==2.13.0+cpu"], check=True, env=env)
    return python


def action_env(tmp_path, env, said):
    log = (tmp_path / "step.log").open("w")

    def run(argv, cwd=None, check=True, shell=False, env_extra=None):
        rc = runner.stream(argv, cwd=cwd, env={**env, **(env_extra or {})}, log=log)
        if check and rc:
            raise actions.StepFailed(f"{argv} exited {rc}")
        return rc

    return actions.ActionEnv(run=run, log=log, say=said.append, started=0)


def installed(python: str) -> dict[str, str]:
    out = subprocess.run([python, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True).stdout
    return dict(line.split("==") for line in out.split())


def test_drop_requirements_asks_pip_which_lines_cannot_coexist(tmp_path, env, target):
    src = tmp_path / "src"
    src.mkdir()
    (src / "requirements-common.txt").write_text("plain\napp-with-helper  # pulls helper, which pins torch\n")
    (src / "requirements-cuda.txt").write_text(
        "-r requirements-common.txt\ntorch == 2.5.1\n"
        "xformers == 0.0.28.post3; platform_system == 'Linux'  # Requires PyTorch 2.5.1\n")
    (src / "requirements-cpu.txt").write_text('torch == 2.5.1+cpu; platform_machine != "ppc64le"\n')
    said: list[str] = []
    step = Step("vllm", "use-existing-torch", cwd=str(src), action="drop-requirements",
                args={"files": ["requirements*.txt"], "resolve": ["requirements-cuda.txt"], "python": target,
                      "protected": PROTECTED})
    before = guard.snapshot(target, PROTECTED)
    details = actions.drop_requirements(step, action_env(tmp_path, env, said))
    got = {(d["file"], d["text"]): d["reason"] for d in details["dropped"]}
    assert set(got) == {("requirements-cuda.txt", "torch == 2.5.1"),
                        ("requirements-cuda.txt", "xformers == 0.0.28.post3; platform_system == 'Linux'  "
                                                  "# Requires PyTorch 2.5.1"),
                        ("requirements-common.txt", "app-with-helper  # pulls helper, which pins torch"),
                        ("requirements-cpu.txt", 'torch == 2.5.1+cpu; platform_machine != "ppc64le"')}
    assert got[("requirements-cuda.txt", "torch == 2.5.1")].startswith("names protected torch (installed 2.13.0+cpu)")
    xf = got[("requirements-cuda.txt",
              "xformers == 0.0.28.post3; platform_system == 'Linux'  # Requires PyTorch 2.5.1")]
    assert xf == ("cannot coexist with the protected versions: xformers 0.0.28.post3 depends on torch==2.5.1 "
                  "(installed and protected: torch 2.13.0+cpu)")
    assert "helper 1.0 depends on torch==2.5.1" in got[("requirements-common.txt",
                                                          "app-with-helper  # pulls helper, which pins torch")]
    assert (src / "requirements-common.txt").read_text() == "plain\n"
    assert (src / "requirements-cpu.txt").read_text() == ""
    assert details["resolved"] == {"requirements-cuda.txt": 1}  # plain
    assert guard.snapshot(target, PROTECTED) == before  # a dry run installs nothing


def test_drop_requirements_stops_on_a_requirement_pip_cannot_find(tmp_path, env, target):
    src = tmp_path / "src"
    src.mkdir()
    (src / "requirements-build.txt").write_text("torch==2.5.1\nnosuchpackage==1.0\n")
    step = Step("vllm", "use-existing-torch", cwd=str(src), action="drop-requirements",
                args={"files": ["requirements*.txt"], "resolve": ["requirements-build.txt"], "python": target,
                      "protected": PROTECTED})
    with pytest.raises(actions.StepFailed, match=r"requirements-build.txt:2 nosuchpackage==1.0: .*nosuchpackage"):
        actions.drop_requirements(step, action_env(tmp_path, env, []))
    assert (src / "requirements-build.txt").read_text() == "torch==2.5.1\nnosuchpackage==1.0\n"  # nothing half-done


def test_absent_protected_come_only_at_the_version_matching_torch(tmp_path, env, target, index):
    wheel = make_wheel(tmp_path / "dist", "app", "1.0", ["timmish", "xgram", "plain", "torch==2.8.0",
                                                         "torchaudio==2.8.0"])
    said: list[str] = []
    step = Step("sglang", "install", cwd=str(tmp_path), action="pip-protected",
                args={"target": [str(wheel)], "python": target, "protected": PROTECTED})
    torch_before = guard.snapshot(target, ["torch"])
    details = actions.pip_protected(step, action_env(tmp_path, env, said))
    have = installed(target)
    assert "torchvision" not in have  # only 0.28.0 (not +cpu) is on this index: refused, not installed
    assert have["triton"] == "3.7.1"  # torch 2.13.0's own triton, not the newest 3.9.0
    assert have["timmish"] == "1.0" and have["plain"] == "1.0" and have["xgram"] == "0.1.25"
    assert guard.snapshot(target, ["torch"]) == torch_before
    refusals = {r["dist"]: r for r in details["refused"]}
    assert set(refusals) == {"torchvision", "torchaudio"}  # app's own torchaudio==2.8.0 cannot match torch 2.13
    refusal = refusals["torchvision"]
    assert refusal["wanted_by"] == ["timmish 1.0"]
    assert "torchvision==0.28.0+cpu is not on the package index here" in refusal["reason"]
    assert any(s.startswith("      ! refused torchvision 0.28.0 (wanted by timmish 1.0)") for s in said)
    assert details["dropped"] == ["torch==2.8.0", "torchaudio==2.8.0"]
    # nothing broken is importable: torchvision is absent, the others import
    subprocess.run([target, "-c", "import timmish, xgram, triton"], check=True)


def test_absent_protected_installed_when_the_matching_build_exists(tmp_path, env, target, index):
    cpu_index = tmp_path / "cpu-index"
    make_wheel(cpu_index, "torchvision", "0.28.0+cpu", ["torch==2.13.0"])
    wheel = make_wheel(tmp_path / "dist", "app", "1.0", ["timmish"])
    step = Step("sglang", "install", cwd=str(tmp_path), action="pip-protected",
                args={"target": [str(wheel)], "python": target, "protected": PROTECTED})
    env = {**env, "PIP_FIND_LINKS": f"{index} {cpu_index}"}
    details = actions.pip_protected(step, action_env(tmp_path, env, []))
    assert installed(target)["torchvision"] == "0.28.0+cpu" and details["refused"] == []


class _Settings(dict):
    def __init__(self, python, **kw):
        super().__init__(protected=PROTECTED, backup_dir="", auto_backup=False, **kw)
        self._python = python

    def python(self):
        return self._python


def test_guard_keeps_an_appeared_companion_only_when_it_matches_torch(tmp_path, env, target):
    import io

    from rebuilt.build.features.protect import Guard
    from rebuilt.errors import GuardViolation

    hook = Guard(_Settings(target), tmp_path / "wd", runner.Console(io.StringIO()), None)
    step = Step("x", "plain-install", cwd=str(tmp_path), argv=("pip",), installs=True)
    log = tmp_path / "step.log"
    log.write_text("Collecting torchvision (from timmish)\n")
    result = runner.StepResult("plain-install", "done", 1.0, 0, str(log))

    hook.before_step(step, env)
    subprocess.run([target, "-m", "pip", "install", "-q", "--no-deps", "triton==3.7.1"], check=True, env=env)
    hook.after_step(step, result)  # torch 2.13.0's own triton: accepted
    assert installed(target)["triton"] == "3.7.1"

    hook.before_step(step, env)
    subprocess.run([target, "-m", "pip", "install", "-q", "--no-deps", "torchvision==0.28.0"], check=True, env=env)
    with pytest.raises(GuardViolation, match=r"torchvision absent -> 0.28.0 \(pulled in by timmish\); it was not "
                                             r"installed before and does not match torch .*0.28.0\+cpu.*; uninstalled"):
        hook.after_step(step, result)
    assert "torchvision" not in installed(target)  # no broken import left behind


def test_the_projects_own_absent_companions_at_the_matching_version_or_refused(tmp_path, env, target, index):
    cpu_index = tmp_path / "cpu-index"
    make_wheel(cpu_index, "torchvision", "0.28.0+cpu", ["torch==2.13.0"])
    wheel = make_wheel(tmp_path / "dist", "proj", "1.0", ["plain", "torch==2.8.0", "torchvision", "torchaudio==2.8.0"])
    step = Step("sglang", "install", cwd=str(tmp_path), action="pip-protected",
                args={"target": [str(wheel)], "python": target, "protected": PROTECTED})
    env = {**env, "PIP_FIND_LINKS": f"{index} {cpu_index}"}
    said: list[str] = []
    details = actions.pip_protected(step, action_env(tmp_path, env, said))
    have = installed(target)
    assert have["torchvision"] == "0.28.0+cpu"  # its own unpinned torchvision: the build matching torch
    assert "torchaudio" not in have
    [refusal] = details["refused"]
    assert refusal["dist"] == "torchaudio" and refusal["wanted_by"] == ["proj (torchaudio==2.8.0)"]
    assert refusal["reason"] == ("proj requires torchaudio==2.8.0, but torchaudio 2.13 pairs with torch 2.13: "
                                 "wanted torchaudio==2.13.0+cpu")


def test_a_project_whose_dependencies_are_dynamic_gets_them_from_the_metadata_pip_built(tmp_path, env, target):
    """flashinfer 0.3.1's shape: pyproject.toml says dependencies are dynamic, setup.py's install_requires holds them."""
    proj = tmp_path / "proj"
    (proj / "dynproj").mkdir(parents=True)
    (proj / "dynproj" / "__init__.py").write_text("")
    (proj / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools"]\nbuild-backend = '
                                         '"setuptools.build_meta"\n\n[project]\nname = "dynproj"\nversion = "1.0"\n'
                                         'dynamic = ["dependencies"]\n')
    (proj / "setup.py").write_text('from setuptools import setup\nsetup(packages=["dynproj"], '
                                   'install_requires=["plain", "torch==2.8.0"])\n')
    subprocess.run([target, "-m", "pip", "install", "-q", "setuptools", "wheel"], check=True,
                   env={**env, "PIP_NO_INDEX": "0", "PIP_FIND_LINKS": ""})  # the build backend, from the index
    step = Step("flashinfer", "install", cwd=str(proj), action="pip-protected",
                args={"target": ["--no-build-isolation", "."], "python": target, "protected": PROTECTED})
    said: list[str] = []
    torch_before = guard.snapshot(target, ["torch"])
    details = actions.pip_protected(step, action_env(tmp_path, env, said))
    have = installed(target)
    assert have["dynproj"] == "1.0" and have["plain"] == "1.0"
    assert details["dropped"] == ["torch==2.8.0"] and guard.snapshot(target, ["torch"]) == torch_before
    assert any("from the metadata pip built" in s for s in said)
