"""Requirements split by normalised name (not substring), and pip's 'Collecting' lines read for the culprit."""

from __future__ import annotations

import zipfile

import pytest

from rebuilt.build import guard
from rebuilt.build.features.protect import culprit
from rebuilt.errors import ConfigError, InputError


def test_split_by_normalised_name_not_substring():
    reqs = ["torch==2.8.0", "TorchAudio == 2.8.0", "torchvision", "torchao==0.9.0", "pytorch-triton-rocm",
            "xformers==0.0.28.post3; platform_system == 'Linux'", "Triton>=3"]
    kept, dropped = guard.split_requirements(reqs, {"torch", "torchaudio", "torchvision", "triton"})
    assert dropped == ["torch==2.8.0", "TorchAudio == 2.8.0", "torchvision", "Triton>=3"]
    assert kept == ["torchao==0.9.0", "pytorch-triton-rocm", "xformers==0.0.28.post3; platform_system == 'Linux'"]


def test_invalid_requirement_is_named():
    with pytest.raises(ConfigError, match="invalid requirement 'torch=>2'"):
        guard.split_requirements(["torch=>2"], {"torch"})


def test_project_requirements_from_pyproject_and_wheel(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["torch==2.8.0", "packaging"]\n')
    assert guard.project_requirements(tmp_path) == ["torch==2.8.0", "packaging"]
    whl = tmp_path / "x-1.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr("x-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: x\nVersion: 1.0\n"
                    "Requires-Dist: torch==2.5.1\nRequires-Dist: pytest; extra == 'test'\n\n")
    assert guard.project_requirements(whl) == ["torch==2.5.1"]
    with pytest.raises(InputError, match="not a wheel"):
        guard.project_requirements(tmp_path / "nothing-here")


def test_constraints_and_diff():
    a = {"torch": guard.DistState("2.8.0a0+git5228986", "r1")}
    assert guard.constraints_text(a).splitlines()[-1] == "torch==2.8.0a0+git5228986"
    assert guard.diff(a, a) == []
    assert guard.diff(a, {"torch": guard.DistState("2.5.1", "r2")}) == ["torch"]
    assert guard.diff(a, {"torch": guard.DistState("2.8.0a0+git5228986", "r3")}) == ["torch"]  # files changed
    assert guard.diff(a, {}) == ["torch"]


def test_culprit_from_pip_log(tmp_path):
    log = tmp_path / "step.log"
    log.write_text("Processing ./dist/foo-1.0.whl\nCollecting torch==2.5.1 (from foo==1.0)\n  Downloading ...\n")
    assert culprit(log, "torch") == "foo==1.0"
    assert culprit(log, "triton") is None


def _answers(monkeypatch, rc=0, out="", err="", missing=False):
    """runner.capture faked: the target interpreter (or pip) answers rc/out/err, or does not exist."""
    import subprocess

    from rebuilt.errors import ToolMissing

    def capture(argv, **kw):
        if missing:
            raise ToolMissing(f"{argv[0]} is not installed or not on PATH")
        return subprocess.CompletedProcess(argv, rc, out, err)

    monkeypatch.setattr(guard.runner, "capture", capture)


@pytest.mark.parametrize("answer, says", [
    ({"missing": True}, "does not exist or cannot run"),
    ({"rc": 1, "out": "{}", "err": "Traceback ...\nSyntaxError: invalid syntax"}, "SyntaxError: invalid syntax"),
    ({"rc": 127, "out": "{}"}, "exit status 127"), ({"out": ""}, "answered ''"),
    ({"out": "Python 2.7.18"}, "answered 'Python 2.7.18'"), ({"out": "[]"}, "answered '[]'"),
    ({"out": '{"torch": "2.8.0"}'}, "not the installed versions"),
])
def test_a_target_interpreter_that_cannot_be_inspected_is_bad_input(monkeypatch, answer, says):
    _answers(monkeypatch, **answer)
    with pytest.raises(ConfigError) as err:
        guard.snapshot("/envs/broken/bin/python", ["torch"])
    assert err.value.exit_code == 2 and says in str(err.value)
    assert "cannot inspect the target interpreter /envs/broken/bin/python" in str(err.value)
    assert "--python" in err.value.hint


def test_a_snapshot_reads_the_interpreters_answer(monkeypatch):
    _answers(monkeypatch, out='noise\n{"torch": {"version": "2.8.0", "record": "r", "requires": ["triton==3.4.0"]}}')
    assert guard.snapshot("/p", ["torch"]) == {"torch": guard.DistState("2.8.0", "r", "", ("triton==3.4.0",))}


def test_uninstall_says_when_pip_failed(monkeypatch):
    _answers(monkeypatch, rc=1, err="ERROR: Cannot uninstall triton 3.4.0, RECORD file not found.")
    said = guard.uninstall("/p", "triton")
    assert said != "uninstalled" and "failed" in said and "RECORD file not found" in said
    _answers(monkeypatch, rc=0, out="Successfully uninstalled triton-3.4.0")
    assert guard.uninstall("/p", "triton") == "uninstalled"


def test_a_missing_dynamic_dependencies_file_is_an_error(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndynamic = ["dependencies"]\n'
        '[tool.setuptools.dynamic.dependencies]\nfile = ["requirements.txt", "extra.txt"]\n')
    (tmp_path / "requirements.txt").write_text("torch==2.8.0\nnumpy  # a comment\n--index-url https://i.example\n")
    with pytest.raises(InputError, match="extra.txt: named by pyproject.toml's dynamic dependencies but missing"):
        guard.project_requirements(tmp_path)
    (tmp_path / "extra.txt").write_text("einops\n")
    assert guard.project_requirements(tmp_path) == ["torch==2.8.0", "numpy", "einops"]


def test_a_malformed_pyproject_is_named(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project\nname = "x"\n')
    with pytest.raises(InputError, match="pyproject.toml: malformed TOML"):
        guard.project_requirements(tmp_path)


def test_constraints_pin_each_protected_distribution_under_a_header():
    snap = {"triton": guard.DistState("3.4.0", "r"), "torch": guard.DistState("2.8.0", "r")}
    assert guard.constraints_text(snap) == ("# written by rebuilt: protected distributions, pinned to what is installed\n"
                                            "torch==2.8.0\ntriton==3.4.0\n")


def test_base_requirements_drop_only_extras():
    reqs = ["a; extra == 'test'", "b; python_version >= '3'", "c", "d; extra == 'x' and python_version >= '3'"]
    assert guard.base_requirements(reqs) == ["b; python_version >= '3'", "c"]


def test_uninstall_runs_pip_uninstall_in_the_target(monkeypatch):
    seen = []
    monkeypatch.setattr(guard.runner, "capture", lambda argv, **kw: seen.append(argv) or
                        __import__("subprocess").CompletedProcess(argv, 0, "", ""))
    assert guard.uninstall("/env/bin/python", "triton") == "uninstalled"
    assert seen == [["/env/bin/python", "-m", "pip", "uninstall", "-y", "triton"]]


def test_project_requirements_edge_cases(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert guard.project_requirements(tmp_path) == []
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndynamic = ["dependencies"]\n')
    with pytest.raises(InputError, match="dependencies are dynamic; build a wheel"):
        guard.project_requirements(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndynamic = ["dependencies"]\n'
                                             '[tool.setuptools.dynamic.dependencies]\nfile = "req.txt"\n')
    (tmp_path / "req.txt").write_text("numpy; extra == 'x'\neinops\n")
    assert guard.project_requirements(tmp_path) == ["einops"]
    bad = tmp_path / "y-1.0-py3-none-any.whl"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputError, match=r"y-1.0-py3-none-any.whl: not a readable wheel"):
        guard.project_requirements(bad)


def _torch(version="2.8.0", requires=()):
    return guard.DistState(version, "r", "", tuple(requires))


def test_a_pyproject_without_a_project_table_has_no_requirements(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools"]\n')
    assert guard.project_requirements(tmp_path) == []


@pytest.mark.parametrize("dist, version, torch, ok", [
    ("triton", "3.4.0", _torch(requires=["triton==3.4.0; platform_system == 'Linux'"]), True),
    ("triton", "3.4.1", _torch(requires=["triton==3.4.0"]), False),  # triton: the whole release
    ("Triton", "3.4.0", _torch(), True),  # torch names none: the table of default builds
    ("torchvision", "0.23.5", _torch(), True),  # torchvision: major.minor and the variant
    ("torchvision", "0.23.0+cpu", _torch(), False),
    ("torchvision", "0.23.0", None, False),
])
def test_companions_match_torch(dist, version, torch, ok):
    assert guard.companion_matches(dist, version, torch)[0] is ok


@pytest.mark.parametrize("requires, pin", [
    (["triton==3.3.9; extra == 'x'"], "3.4.0"),  # an extra's requirement does not count: the table's value
    (["triton>=3"], "3.4.0"), (["numpy==2.0"], "3.4.0"),  # not an exact pin, not triton: the table
    (["triton===3.3.9+git"], "3.3.9+git"), (["triton==3.3.9; platform_system != 'Nowhere'"], "3.3.9"),
])
def test_the_triton_pin_comes_from_torchs_own_exact_requirement(requires, pin):
    got, why = guard.companion_pin("triton", _torch(requires=requires))
    assert got == pin and ("torch 2.8.0 requires triton" in why) == pin.startswith("3.3.9")
    assert guard.companion_pin("triton", _torch("2.99.0")) == (
        None, "torch 2.99.0 names no triton and its release is not in rebuilt's table")
