"""Requirement lines as pip and TOML read them (rebuilt/build/reqlines.py)."""

from __future__ import annotations

import pytest

from rebuilt.build import reqlines


@pytest.mark.parametrize("text, requirement", [
    ("torch==2.8.0", "torch==2.8.0"),
    ("torch == 2.5.1+cpu; platform_machine != \"ppc64le\"", "torch == 2.5.1+cpu; platform_machine != \"ppc64le\""),
    ("numpy  # pinned below", "numpy"),
    ("einops\t# tab before the comment", "einops"),
    ("# a comment", None), ("", None), ("   ", None),
    ("-r other.txt", None), ("--requirement=other.txt", None), ("--extra-index-url https://i.example", None),
    ("-e .", None),
    ("pkg @ https://h.example/p.whl#sha256=abc", "pkg @ https://h.example/p.whl#sha256=abc"),  # '#' not after space
])
def test_pip_lines(text, requirement):
    assert reqlines.parse_line(text, pyproject=False) == (requirement, None)


def test_a_pip_line_that_is_not_a_requirement_keeps_its_problem():
    req, problem = reqlines.parse_line("torch=>2", pyproject=False)
    assert req is None and problem.startswith("not a requirement")


@pytest.mark.parametrize("text, requirement", [
    ('"torch==2.8.0",', "torch==2.8.0"),
    ("'torch>=2.5',  # protected", "torch>=2.5"),
    ('"triton; sys_platform == \'linux\'",', "triton; sys_platform == 'linux'"),
    ('"pkg; extra == \\"a\\"",', 'pkg; extra == "a"'),  # TOML escapes honoured
    ('"pkg @ https://h.example/p.whl#sha256=abc",  # a comment', "pkg @ https://h.example/p.whl#sha256=abc"),
    ('"pkg; extra == \\"x#y\\"", # comment', 'pkg; extra == "x#y"'),
    ("dependencies = [", None), ("]", None), ("# \"torch\",", None), ('"torch" ,', "torch"), ('"torch",X', None),
])
def test_pyproject_strings(text, requirement):
    assert reqlines.parse_line(text, pyproject=True)[0] == requirement


def test_a_hash_inside_a_toml_string_belongs_to_the_string():
    req, problem = reqlines.parse_line('"pkg; python_version >= \'3.9\' # x",', pyproject=True)
    assert req is None and problem.startswith("not a requirement")  # read whole, not cut at the '#'


def test_the_comment_of_a_toml_line_starts_outside_strings():
    assert reqlines._toml_comment_start('"a#b", # c') == 7
    assert reqlines._toml_comment_start("'a\"#b' # c") == 7
    assert reqlines._toml_comment_start('"a\\"#b" # c') == 8
    assert reqlines._toml_comment_start("no comment") == len("no comment")
    assert reqlines._toml_comment_start('"" # c') == 3
    assert reqlines._toml_comment_start("aXb # c") == 4


PYPROJECT = '''[build-system]
requires = ["setuptools>=64", "torch==2.8.0"]
requiresX = [
    "not-read",
]
[project]
name = "x"  # "torch" here is not a requirement
"dependencies" = [
    "torch>=2.5",  # "numpy" in a comment
    "pkg @ https://h.example/p.whl#sha256=abc",  # '#' inside the string is not a comment
    'einops']
[project.optional-dependencies]
test = [
    "pytest",
    # a comment line inside the array
    "pytest-xdist" ,
]
docs = ["sphinx",
    "furo"]
none = []
[dependency-groups]
dev = [
    "ruff",
]
[tool.other]
list = [
    "torch",
]
'''


def test_pyproject_lines_only_inside_dependency_arrays(tmp_path):
    path = tmp_path / "pyproject.toml"
    path.write_text(PYPROJECT)
    lines = reqlines.read_lines(path, "pyproject.toml")
    got = {ln.number: ln.requirement for ln in lines if ln.requirement}
    assert got == {9: "torch>=2.5", 10: "pkg @ https://h.example/p.whl#sha256=abc", 11: "einops", 14: "pytest",
                   16: "pytest-xdist", 18: "sphinx", 19: "furo", 23: "ruff"}
    assert [ln.problem for ln in lines if ln.problem] == [f"{reqlines.INLINE}: setuptools, torch"]
    inline = next(ln for ln in lines if ln.number == 2)
    assert inline.inline and inline.mentions() == {"setuptools", "torch"} and inline.where() == "pyproject.toml:2"
    assert lines[8].name == "torch" and lines[8].mentions() == {"torch"}


@pytest.mark.parametrize("text, mentions", [
    ('"bad==",', {"bad"}), ('"XFormers=>1",', {"xformers"}), ("", set()),
    ('requires = ["setuptools", "bad==", "torch"]', {"setuptools", "torch"}),
])
def test_what_an_unreadable_pyproject_line_mentions(tmp_path, text, mentions):
    path = tmp_path / "pyproject.toml"
    path.write_text(f"[project]\ndependencies = [\n{text}\n]\n" if "requires" not in text else f"[build-system]\n{text}\n")
    line = reqlines.read_lines(path, "pyproject.toml")[2 if "requires" not in text else 1]
    assert line.mentions() == mentions


def test_a_requirements_file_keeps_numbers_and_problems(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("torch==2.8.0\n\n# c\nbad==\n")
    lines = reqlines.read_lines(path, "req/requirements.txt")
    assert [ln.number for ln in lines] == [1, 2, 3, 4] and lines[0].requirement == "torch==2.8.0"
    assert lines[3].requirement is None and lines[3].problem and lines[3].mentions() == {"bad"}
    assert lines[1].mentions() == set() and lines[0].mentions() == {"torch"}


def test_includes_are_followed_in_every_spelling_once(tmp_path):
    (tmp_path / "sub").mkdir()
    files = {
        "requirements.txt": "a\n-r common.txt\n--requirement=sub/extra.txt\n--requirement  build.txt\n",
        "common.txt": "b\n-r requirements.txt\n",  # a cycle: each file once
        "sub/extra.txt": "c\n-r ../pyproject.toml\n",  # relative to the including file
        "build.txt": "d\n-r missing.txt\n",
        "pyproject.toml": '[project]\ndependencies = []\ndescription = """\n-r notes.txt\n"""\n',  # not pip's
        "notes.txt": "e\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    got = reqlines.included(tmp_path / "requirements.txt", tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in got] == [
        "requirements.txt", "common.txt", "sub/extra.txt", "pyproject.toml", "build.txt"]
