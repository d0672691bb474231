"""Requirement lines (quoted markers, pyproject strings) and the search for lines that cannot coexist with
the protected versions; pip itself is replaced by a table of what it would answer (no processes here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rebuilt.build import actions, guard, reqcompat
from rebuilt.build.plan import Step
from rebuilt.build.reqcompat import Line, parse_line, read_lines

# pip 23's words for the xformers case (ResolutionImpossible), as it prints them
XFORMERS_CONFLICT = """\
ERROR: Cannot install -r /tmp/r/requirements-0.txt (line 3) because these package versions have conflicting \
dependencies.

The conflict is caused by:
    xformers 0.0.28.post3 depends on torch==2.5.1
    The user requested (constraint) torch==2.13.0+cpu

To fix this you could try to:
1. loosen the range of package versions you've specified
2. remove package versions to allow pip attempt to solve the dependency conflict

ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/#dealing-with-dependency-conflicts
"""


@pytest.mark.parametrize("text, pyproject, want", [
    ('torch == 2.5.1+cpu; platform_machine != "ppc64le"', False, 'torch == 2.5.1+cpu; platform_machine != "ppc64le"'),
    ('torchvision; platform_machine != "ppc64le"   # required for phi3v', False,
     'torchvision; platform_machine != "ppc64le"'),
    ("xformers == 0.0.28.post3; platform_system == 'Linux'  # Requires PyTorch 2.5.1", False,
     "xformers == 0.0.28.post3; platform_system == 'Linux'"),
    ("\"torch==2.8.0; sys_platform == 'linux'\",", True, "torch==2.8.0; sys_platform == 'linux'"),
    ("  'torchaudio==2.8.0',  # pinned", True, "torchaudio==2.8.0"),
    ('    "torch == 2.5.1",', True, "torch == 2.5.1"),
    ('"torch>=2 ; extra == \\"x\\"",', True, 'torch>=2 ; extra == "x"'),
    ("pkg @ https://example.invalid/p.whl#sha256=00", False, "pkg @ https://example.invalid/p.whl#sha256=00"),
    ("# via torch", False, None),
    ("-r requirements-common.txt", False, None),
    ("--extra-index-url https://download.pytorch.org/whl/cpu", False, None),
    ("", False, None),
])
def test_parse_line(text, pyproject, want):
    req, problem = parse_line(text, pyproject=pyproject)
    assert (req, problem) == (want, None)


def test_unreadable_line_is_a_problem_not_silence():
    req, problem = parse_line("torch =>2.5", pyproject=False)
    assert req is None and problem.startswith("not a requirement")
    assert Line("r.txt", 1, "torch =>2.5", None, problem).mentions() == {"torch"}


def test_pyproject_only_dependency_arrays(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[build-system]\nrequires = [\n    "setuptools>=61",\n    "torch == 2.5.1",\n]\n'
        '[project]\ndependencies = [\n  "torch==2.8.0; sys_platform == \'linux\'",  # keep\n  "numpy"]\n'
        '[project.optional-dependencies]\ntest = ["pytest", "torchvision"]\n'
        '[tool.ruff]\nexclude = [\n    "examples/fp8/quantizer/quantize.py",\n]\n')
    got = {ln.number: (ln.requirement, ln.problem) for ln in read_lines(tmp_path / "pyproject.toml", "pyproject.toml")
           if ln.requirement or ln.problem}
    assert got == {3: ("setuptools>=61", None), 4: ("torch == 2.5.1", None),
                   8: ("torch==2.8.0; sys_platform == 'linux'", None), 9: ("numpy", None),
                   11: (None, "an inline array, not editable per line: pytest, torchvision")}


def test_included_follows_r_once(tmp_path):
    (tmp_path / "requirements-common.txt").write_text("numpy\n")
    (tmp_path / "requirements-cuda.txt").write_text("-r requirements-common.txt\n"
                                                    "--requirement=requirements-common.txt\n")
    assert [p.name for p in reqcompat.included(tmp_path / "requirements-cuda.txt", tmp_path)] == \
        ["requirements-cuda.txt", "requirements-common.txt"]


def test_explain_names_the_protected_conflict():
    conflict, reason = reqcompat.explain(XFORMERS_CONFLICT, {"torch": "2.13.0+cpu"})
    assert conflict is True
    assert reason == "xformers 0.0.28.post3 depends on torch==2.5.1 (installed and protected: torch 2.13.0+cpu)"
    missing = "ERROR: Could not find a version that satisfies the requirement nosuch==1\n" \
              "ERROR: No matching distribution found for nosuch==1\n"
    assert reqcompat.explain(missing, {"torch": "2.13.0+cpu"}) == \
        (False, "No matching distribution found for nosuch==1")


class FakePip:
    """Answers like pip for requirement sets: a set fails when it holds a line of ``bad`` (with its output)."""

    def __init__(self, bad: dict[str, str], together: set[frozenset] = frozenset()):
        self.bad, self.together, self.calls = bad, together, []

    def __call__(self, args: list[str]) -> tuple[int, str]:
        reqs = Path(args[args.index("-r") + 1]).read_text().split("\n")[:-1]
        self.calls.append(reqs)
        for r in reqs:
            if r in self.bad:
                return 1, self.bad[r]
        if any(group <= set(reqs) for group in self.together):
            return 1, "ERROR: ResolutionImpossible: a and b conflict\n"
        report = Path(args[args.index("--report") + 1])
        report.write_text(json.dumps({"install": [{"metadata": {"name": r, "version": "1"}}
                                                  for r in reqs]}))
        return 0, "Would install ...\n"


def _lines(*reqs):
    return [Line("requirements-cuda.txt", i, r, r) for i, r in enumerate(reqs, 1)]


def test_named_culprit_is_tried_alone_then_the_rest_resolves(tmp_path):
    pip = FakePip({"xformers == 0.0.28.post3": XFORMERS_CONFLICT})
    lines = _lines("ray >= 2.9", "xformers == 0.0.28.post3", "numpy < 2.0.0")
    verdicts, report = reqcompat.find_incompatible(pip, lines, {"torch": "2.13.0+cpu"}, tmp_path / "c.txt", tmp_path)
    assert [(v.line.number, v.conflict) for v in verdicts] == [(2, True)]
    assert "depends on torch==2.5.1" in verdicts[0].reason
    assert len(pip.calls) == 3 and pip.calls[1] == ["xformers == 0.0.28.post3"]
    assert [i["metadata"]["name"] for i in report["install"]] == ["ray >= 2.9", "numpy < 2.0.0"]


def test_transitive_culprit_is_found_by_bisection(tmp_path):
    deep = XFORMERS_CONFLICT.replace("-r /tmp/r/requirements-0.txt (line 3)", "helper").replace(
        "xformers 0.0.28.post3 depends", "helper 1.0 depends")
    pip = FakePip({"app==1": deep})  # pip names 'helper', which app==1 pulls in: not a line of ours
    lines = _lines("a", "b", "c", "app==1", "d")
    verdicts, _ = reqcompat.find_incompatible(pip, lines, {"torch": "2.13.0+cpu"}, tmp_path / "c.txt", tmp_path)
    assert [(v.line.requirement, v.conflict) for v in verdicts] == [("app==1", True)]
    assert "helper 1.0 depends on torch==2.5.1" in verdicts[0].reason


def test_failures_not_about_protected_versions_are_not_conflicts(tmp_path):
    pip = FakePip({"nosuch==1": "ERROR: No matching distribution found for nosuch==1\n"}, {frozenset({"a", "b"})})
    verdicts, _ = reqcompat.find_incompatible(pip, _lines("nosuch==1", "x"), {"torch": "2.13.0+cpu"},
                                              tmp_path / "c.txt", tmp_path)
    assert [(v.line.requirement, v.conflict, v.reason) for v in verdicts] == \
        [("nosuch==1", False, "No matching distribution found for nosuch==1")]
    verdicts, _ = reqcompat.find_incompatible(FakePip({}, {frozenset({"a", "b"})}), _lines("a", "b"),
                                              {"torch": "2.13.0+cpu"}, tmp_path / "c.txt", tmp_path)
    assert [(v.conflict, v.reason.startswith("these requirements do not resolve together")) for v in verdicts] == \
        [(False, True)]


# ------------------------------------------------------------------ the step, on vLLM-shaped files

CUDA = """\
# Common dependencies
-r requirements-common.txt

torch == 2.5.1
torchvision == 0.20.1 # Required for phi3v processor
xformers == 0.0.28.post3; platform_system == 'Linux' and platform_machine == 'x86_64'  # Requires PyTorch 2.5.1
"""
CPU = """\
-r requirements-common.txt
torch == 2.5.1+cpu; platform_machine != "ppc64le"
torchvision; platform_machine != "ppc64le"   # required for the image processor of phi3v
"""
PYPROJECT = '[build-system]\nrequires = [\n    "cmake>=3.26",\n    "torch == 2.5.1",\n    "wheel",\n]\n'


def test_inline_array_naming_torch_stops_the_step_before_any_edit(tmp_path, monkeypatch):
    src = tmp_path / "p"
    src.mkdir()
    (src / "requirements.txt").write_text("torch==2.5.1\n")
    (src / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools", "torch==2.5.1"]\n')
    monkeypatch.setattr(guard, "snapshot", lambda py, names: {})
    step = Step("x", "drop", cwd=str(src), action="drop-requirements",
                args={"files": ["requirements.txt", "pyproject.toml"], "python": "/x/python", "protected": ["torch"]})
    ax = actions.ActionEnv(run=None, log=(tmp_path / "l").open("w"), say=lambda s: None, started=0)
    with pytest.raises(actions.StepFailed, match="pyproject.toml:2 names a protected distribution"):
        actions.drop_requirements(step, ax)
    assert (src / "requirements.txt").read_text() == "torch==2.5.1\n"


def test_a_pip_without_dry_run_report_is_named_once(tmp_path):
    old = lambda args: (2, "Usage: pip install [options]\n\nno such option: --dry-run\n")  # noqa: E731
    with pytest.raises(reqcompat.PipTooOld, match="no `install --dry-run --report`"):
        reqcompat.find_incompatible(old, _lines("a", "b"), {}, tmp_path / "c.txt", tmp_path)


class ConstraintPip(FakePip):
    """Also fails a resolution whose constraints pin one of ``bad_pins`` (like a requirement needing triton>=3.8)."""

    def __init__(self, available: set[str], bad_pins: set[str], wants: list[dict]):
        super().__init__({})
        self.available, self.bad_pins, self.wants = available, bad_pins, wants

    def __call__(self, args):
        if "--no-deps" in args:  # the cheap look-up of one matching build
            if args[-1] in self.available:
                return 0, ""
            return 1, f"ERROR: No matching distribution found for {args[-1]}\n"
        constraints = Path(args[args.index("-c") + 1]).read_text().split()
        if set(constraints) & self.bad_pins:
            return 1, ("ERROR: Cannot install xgram because these package versions have conflicting dependencies.\n\n"
                       "The conflict is caused by:\n    xgram 1.0 depends on triton>=3.8\n"
                       "    The user requested (constraint) triton==3.7.1\n\n")
        report = Path(args[args.index("--report") + 1])
        report.write_text(json.dumps({"install": self.wants}))
        return 0, ""


def _item(name, version, requires=()):
    return {"metadata": {"name": name, "version": version, "requires_dist": list(requires)}}


def test_plan_install_refuses_a_matching_pin_the_requirements_cannot_take(tmp_path):
    wants = [_item("xgram", "1.0", ["triton>=3.8; platform_system == 'Linux'"]), _item("triton", "3.9.0"),
             _item("timmish", "1.0", ["torchvision"]), _item("torchvision", "0.28.0"), _item("plain", "1.0")]
    pip = ConstraintPip({"triton==3.7.1"}, {"triton==3.7.1"}, wants)
    absent = {"triton": ("3.7.1", "torch 2.13.0's default build requires triton==3.7.1"),
              "torchvision": ("0.28.0+cpu", "torchvision 0.28 pairs with torch 2.13"), "torchaudio": (None, "none")}
    items, refused, failure = reqcompat.plan_install(pip, ["xgram", "timmish", "plain"], {"torch": "2.13.0+cpu"},
                                                     absent, tmp_path)
    assert failure == "" and [i["metadata"]["name"] for i in items] == ["xgram", "timmish", "plain"]
    got = {r.dist: (r.version, r.wanted_by, r.reason.split(";")[0].split(",")[0]) for r in refused}
    assert got == {"triton": ("3.9.0", ("xgram 1.0",), "torch 2.13.0's default build requires triton==3.7.1"),
                   "torchvision": ("0.28.0", ("timmish 1.0",), "torchvision 0.28 pairs with torch 2.13")}
    assert "with triton==3.7.1 the requirements do not resolve: xgram 1.0 depends on triton>=3.8" in \
        [r for r in refused if r.dist == "triton"][0].reason


def test_plan_install_keeps_the_pins_pip_does_not_blame(tmp_path):
    wants = [_item("xgram", "1.0", ["triton>=3.8"]), _item("triton", "3.9.0"),
             _item("timmish", "1.0", ["torchvision"]), _item("torchvision", "0.28.0+cpu")]
    pip = ConstraintPip({"triton==3.7.1", "torchvision==0.28.0+cpu"}, {"triton==3.7.1"}, wants)
    absent = {"triton": ("3.7.1", "torch's triton"), "torchvision": ("0.28.0+cpu", "pairs with torch 2.13")}
    items, refused, _ = reqcompat.plan_install(pip, ["xgram", "timmish"], {"torch": "2.13.0+cpu"}, absent, tmp_path)
    assert [r.dist for r in refused] == ["triton"]  # torchvision's pin was not the problem: kept
    last = (tmp_path / "constraints-install-1.txt").read_text()
    assert "torchvision==0.28.0+cpu" in last and "triton" not in last
