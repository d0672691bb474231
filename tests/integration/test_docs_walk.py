"""README.md and docs/QUICKSTART.md walked on a fresh machine, their commands run as written.

A fresh home folder, a clone of this repository, a PATH without this test run's `inv`/`rebuilt`. Two
ways in: `pip install -e . && inv ...` in a virtual environment (README), and `pipx install .` (a
stand-in that does what pipx does: a virtual environment of its own, a non-editable install, the
command linked into ~/.local/bin) followed by QUICKSTART's `rebuilt ...` commands. There is no
network: the package index is replaced by what this interpreter has installed (PIP_NO_INDEX, the
environments see its site-packages), which changes how pip finds packages, not the commands.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

PIPX = f"""#!{sys.executable}
# pipx install PATH, as pipx does it: its own venv, a non-editable install, the command on ~/.local/bin
import os, subprocess, sys
from pathlib import Path
sys.path.insert(0, {str(ROOT)!r})
from tests.envs import make_venv
assert sys.argv[1] == "install", sys.argv
home = Path(os.environ["HOME"])
venv = home / ".local" / "pipx" / "venvs" / "rebuilt"
py = make_venv(venv)
subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", sys.argv[2]], check=True)
(home / ".local" / "bin").mkdir(parents=True, exist_ok=True)
(home / ".local" / "bin" / "rebuilt").symlink_to(venv / "bin" / "rebuilt")
print("installed package rebuilt, available command: rebuilt")
"""


def closure(*names: str) -> list[str]:
    """The installed distributions ``names`` need, recursively (their run-time requirements, no extras)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    seen: dict[str, None] = {}
    todo = list(names)
    while todo:
        req = Requirement(todo.pop())
        key = req.name.lower().replace("_", "-")
        if key in seen or (req.marker and not req.marker.evaluate({"extra": ""})):
            continue
        try:
            requires = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:
            continue
        seen[key] = None
        todo += requires
    return list(seen)


def index_of(folder: Path, names: list[str]) -> Path:
    """A find-links folder standing in for the package index: wheels of this interpreter's ``names``."""
    from rebuilt.build.wheel.backup import backup

    for name in names:
        backup(sys.executable, name, folder)
    return folder


def fenced(doc: str, after: str, lang: str = "bash") -> str:
    text = (ROOT / doc).read_text()
    return re.search(rf"^```{lang}\n(.*?)^```", text[text.index(after):], re.MULTILINE | re.DOTALL).group(1)


@pytest.fixture(scope="module")
def machine(tmp_path_factory):
    base = tmp_path_factory.mktemp("fresh-machine")
    home, tools = base / "home", base / "tools"
    home.mkdir()
    tools.mkdir()
    (tools / "pipx").write_text(PIPX)
    (tools / "pipx").chmod(0o755)
    ours = {str(Path(sys.executable).parent), os.path.dirname(shutil.which("inv") or "/nonexistent/x")}
    path = [p for p in os.environ["PATH"].split(os.pathsep) if p not in ours]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_", "REBUILT_", "VIRTUAL_ENV", "CONDA"))}
    env.update(HOME=str(home), PATH=os.pathsep.join([str(home / ".local" / "bin"), str(tools), *path]),
               PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return {"base": base, "home": home, "env": env}


def sh(script: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


MISPLACED_D = "-D sgl-kernel.nvcc_threads=4 build.sgl-kernel -n"  # invoke's own -D (--list-depth) before the task


def misplaced_d(r: subprocess.CompletedProcess) -> bool:
    """The one message rebuilt's start-up hook (rebuilt-inv.pth) gives under inv, instead of invoke's traceback."""
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    return r.stderr.startswith("rebuilt: -D before the task name is invoke's own --list-depth") and \
        "-> inv build.sgl-kernel -D sgl-kernel.nvcc_threads=4 -n" in r.stderr


def test_quickstart_with_the_pipx_installed_rebuilt(machine):
    env, base, home = machine["env"], machine["base"], machine["home"]
    install = fenced("docs/QUICKSTART.md", "## 2. Install rebuilt").replace("<this repository>", str(ROOT))
    r = sh("set -e\n" + install, env, base)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "build.sgl-kernel" in r.stdout and "build.stack" in r.stdout  # `rebuilt --list`
    assert Path(os.path.realpath(home / ".local/bin/rebuilt")).is_relative_to(home / ".local/pipx")
    elsewhere = base / "work"  # the rest from any folder, as QUICKSTART says
    elsewhere.mkdir()
    for command, codes in (("rebuilt config", {0}), ("rebuilt doctor", {0, 3}), ("rebuilt build.stack --dry-run", {0}),
                           ("rebuilt bench.compare latest~1 latest", {2}),
                           ("python3 -m venv ~/envs/sgl && rebuilt torch.backup --python ~/envs/sgl/bin/python", {2})):
        assert command.split(" && ")[-1].split(" --python")[0] in (ROOT / "docs" / "QUICKSTART.md").read_text()
        r = sh(command, env, elsewhere)
        assert r.returncode in codes and "Traceback" not in r.stderr, (command, r.stdout[-2000:], r.stderr[-2000:])
        if r.returncode == 2:
            assert r.stderr.startswith("rebuilt: ") and "-> " in r.stderr and " inv " not in r.stderr, r.stderr
    dry = sh("rebuilt build.stack --dry-run", env, elsewhere)
    assert "sgl-kernel:fetch" in dry.stdout and "verdict:" in dry.stdout and f"workdir  {elsewhere}/.rebuilt" in \
        dry.stdout, dry.stdout[:2000]
    assert "inv doctor" not in dry.stdout  # the hint names the program the user has
    completion = fenced("docs/QUICKSTART.md", "## 6. Shell completion")
    r = sh("set -e\n" + completion, env, elsewhere)
    assert r.returncode == 0 and (home / ".local/share/bash-completion/completions/rebuilt").is_file(), r.stderr
    # the non-editable wheel carries the hook that gives `inv -D ...` before the task name one message
    venv = home / ".local" / "pipx" / "venvs" / "rebuilt"
    assert misplaced_d(sh(f"{venv}/bin/python -m invoke {MISPLACED_D}", env, ROOT))
    hooks = list(venv.glob("lib/python*/site-packages/rebuilt-inv.pth"))
    assert len(hooks) == 1
    assert sh(f"{venv}/bin/python -m pip uninstall -q -y rebuilt", env, base).returncode == 0
    assert not hooks[0].exists()  # pip's RECORD lists it: no hook left behind


def test_readme_in_a_venv_with_inv(machine):
    env, base = dict(machine["env"]), machine["base"]
    clone = base / "checkout"
    r = sh(f"git clone -q {ROOT} {clone}", env, base)
    assert r.returncode == 0, r.stderr
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wants = [*project["project"]["dependencies"], *project["build-system"]["requires"], "wheel"]
    index = index_of(base / "index", closure(*wants))
    venv = base / "venv"
    assert sh(f"python3 -m venv {venv}", env, base).returncode == 0  # a plain venv: pip installs everything
    env.update(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}",  # `source venv/bin/activate`
               PIP_FIND_LINKS=str(index))
    first = fenced("README.md", "# rebuilt")
    commands = [ln for ln in first.splitlines() if ln and not ln.startswith("#")]
    assert commands[0] == "pip install -e . && inv build.sgl-kernel --dry-run", commands
    r = sh(commands[0], env, clone)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "sgl-kernel:rebuild" in r.stdout and "verdict:" in r.stdout and f"workdir  {clone}/.rebuilt" in r.stdout
    for command in ("inv --list", "inv config", "inv build.sgl-kernel --dry-run --jobs 64", "inv build.torch --help"):
        assert f"`{command.split(' --help')[0]}" in (ROOT / "README.md").read_text() or command.startswith("inv build")
        r = sh(command, env, clone)
        assert r.returncode == 0 and "Traceback" not in r.stderr, (command, r.stderr[-2000:])
    assert "sgl-kernel: 64 (" in sh("inv build.sgl-kernel --dry-run --jobs 64", env, clone).stdout
    assert misplaced_d(sh(f"inv {MISPLACED_D}", env, clone))  # the editable install has the hook too
