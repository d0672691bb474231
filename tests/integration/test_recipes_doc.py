"""docs/RECIPES.md's example recipe and stack, copied from the doc's own text and built for real."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from pathlib import Path

from tests.gitrepo import GIT_ENV, git, make_repo

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^```toml file=(\S+)\n(.*?)^```", re.MULTILINE | re.DOTALL)

SETUP = """from setuptools import setup
setup(name="hello-ext", version="1.0", packages=["hello_ext"])
"""


def fresh_venv(path: Path) -> Path:
    """``python -m venv``, as a reader makes it: pip (and whatever ensurepip bundles), nothing else."""
    venv.EnvBuilder(with_pip=True, symlinks=True).create(path)
    return path / "bin" / "python"


def index_of(folder: Path, *dists: str) -> Path:
    """A find-links folder standing in for the package index: wheels of this interpreter's ``dists``."""
    from rebuilt.build.wheel.backup import backup

    for dist in dists:
        backup(sys.executable, dist, folder)
    return folder


def doc_files() -> dict[str, str]:
    return dict(BLOCK.findall((ROOT / "docs" / "RECIPES.md").read_text()))


def test_the_documented_recipe_and_stack_build(tmp_path):
    files = doc_files()
    assert set(files) == {"hello-ext.toml", "stacks/hello.toml"}
    recipes = tmp_path / "recipes"
    for name, text in files.items():
        (recipes / name).parent.mkdir(parents=True, exist_ok=True)
        (recipes / name).write_text(text)
    repo = make_repo(tmp_path / "hello", {"setup.py": SETUP, "hello_ext/__init__.py": "__version__ = '1.0'\n"})
    git(repo, "tag", "v1.0")
    py = fresh_venv(tmp_path / "env")
    env = {**os.environ, **GIT_ENV, "REBUILT_RECIPES_DIR": f"{recipes}{os.pathsep}{ROOT / 'recipes'}",
           "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(index_of(tmp_path / "index", "setuptools", "wheel",
                                                                          "packaging"))}
    argv = [sys.executable, "-m", "invoke", "build.hello-ext", "--stack", "hello", "--python", str(py),
            "--workdir", str(tmp_path / "wd"), "--set", f"hello-ext.url={repo}", "--set", "hello-ext.flavour=loud",
            "--set", "auto_backup=false"]
    r = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "hello-ext is built loud (hi)" in r.stdout
    cfg = (tmp_path / "wd" / "src" / "hello_ext" / "build.cfg").read_text()
    assert "greeting=hi" in cfg and "loud=1" in cfg  # the stack's value, the conditional env
    assert list((tmp_path / "wd" / "wheels").glob("hello_ext-1.0-*.whl"))
    check = subprocess.run([str(py), "-c", "import hello_ext; print(hello_ext.__file__)"], capture_output=True,
                           text=True)
    assert check.returncode == 0 and str(tmp_path / "env") in check.stdout, check.stderr


def test_a_misspelt_key_names_file_line_and_key(tmp_path):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    text = doc_files()["hello-ext.toml"].replace('cwd = "{workdir}"', 'cwd = "{workdir}"\nretries = 2')
    (recipes / "hello-ext.toml").write_text(text)
    line = text.splitlines().index("retries = 2") + 1
    step = text.split("retries = 2")[0].count("[[steps]]") - 1  # the verify step, counted from 0
    env = {**os.environ, "REBUILT_RECIPES_DIR": f"{recipes}{os.pathsep}{ROOT / 'recipes'}"}
    r = subprocess.run([sys.executable, "-m", "invoke", "build.hello-ext", "--dry-run"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"hello-ext.toml:{line}: steps[{step}].retries: unknown key" in r.stderr
    assert "Traceback" not in r.stderr
