"""vLLM's use-existing-torch step on a checkout: requirement lines dropped by name and by pip's resolver
(a fake pip), each drop recorded as rebuilt's own edit of the checkout (git runs: an integration test)."""

from __future__ import annotations

from rebuilt.build import actions, guard
from rebuilt.build.plan import Step
from tests.unit.test_reqcompat import CPU, CUDA, PYPROJECT, XFORMERS_CONFLICT, FakePip


def test_drop_requirements_by_name_and_by_resolution(tmp_path, monkeypatch):
    src = tmp_path / "vllm"
    src.mkdir()
    (src / "requirements-common.txt").write_text("numpy < 2.0.0\nsetuptools>=74.1.1; python_version > '3.11'  # x\n")
    (src / "requirements-cuda.txt").write_text(CUDA)
    (src / "requirements-cpu.txt").write_text(CPU)
    (src / "requirements-build.txt").write_text("cmake>=3.26\ntorch==2.5.1\n")
    (src / "pyproject.toml").write_text(PYPROJECT)
    monkeypatch.setattr(guard, "snapshot", lambda py, names: {"torch": guard.DistState("2.13.0+cpu", "r")})
    pip = FakePip({"xformers == 0.0.28.post3; platform_system == 'Linux' and platform_machine == 'x86_64'":
                   XFORMERS_CONFLICT})
    log = (tmp_path / "step.log").open("w")

    def run(argv, cwd=None, check=True, shell=False):
        rc, out = pip(argv[3:])
        log.write(out)
        return rc

    said: list[str] = []
    ax = actions.ActionEnv(run=run, log=log, say=said.append, started=0)
    step = Step("vllm", "use-existing-torch", cwd=str(src), action="drop-requirements",
                args={"files": ["requirements*.txt", "pyproject.toml"], "python": "/x/python",
                      "resolve": ["requirements-build.txt", "requirements-cuda.txt"],
                      "protected": ["torch", "torchvision", "torchaudio", "triton"]})
    details = actions.drop_requirements(step, ax)
    got = {(d["file"], d["line"]): d["reason"].split(":")[0] for d in details["dropped"]}
    assert got == {("requirements-build.txt", 2): "names protected torch (installed 2.13.0+cpu)",
                   ("requirements-cpu.txt", 2): "names protected torch (installed 2.13.0+cpu)",
                   ("requirements-cpu.txt", 3): "names protected torchvision (not installed)",
                   ("requirements-cuda.txt", 4): "names protected torch (installed 2.13.0+cpu)",
                   ("requirements-cuda.txt", 5): "names protected torchvision (not installed)",
                   ("requirements-cuda.txt", 6): "cannot coexist with the protected versions",
                   ("pyproject.toml", 4): "names protected torch (installed 2.13.0+cpu)"}
    assert (src / "requirements-cpu.txt").read_text() == "-r requirements-common.txt\n"
    assert (src / "requirements-cuda.txt").read_text() == "# Common dependencies\n-r requirements-common.txt\n\n"
    assert (src / "pyproject.toml").read_text() == PYPROJECT.replace('    "torch == 2.5.1",\n', "")
    assert (src / "requirements-common.txt").read_text().startswith("numpy < 2.0.0\n")
    assert details["protected"] == {"torch": "2.13.0+cpu"}
    assert set(details["resolved"]) == {"requirements-build.txt", "requirements-cuda.txt"}
    assert any("xformers 0.0.28.post3 depends on torch==2.5.1" in s for s in said)
