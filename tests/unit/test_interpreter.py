"""The target interpreter: one resolver, each rule, the refusal of rebuilt's own tool environment, the nox
hand-off, and the rule shown in every plan and in `inv config`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from rebuilt.core import interpreter
from rebuilt.core import settings as settings_mod
from rebuilt.errors import ConfigError

SYSTEM = ("/usr", "/usr")  # rebuilt run by a system interpreter: no tool environment of its own


def env_at(prefix: Path) -> Path:
    """A folder that looks like an environment: bin/python and bin/python3 files."""
    (prefix / "bin").mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3"):
        (prefix / "bin" / name).write_text("#!/bin/sh\n")
        (prefix / "bin" / name).chmod(0o755)
    return prefix / "bin" / "python"


def test_named_paths_and_names_on_path(tmp_path, monkeypatch):
    user = env_at(tmp_path / "user")
    t = interpreter.choose(str(user), "--python", environ={"VIRTUAL_ENV": "/elsewhere"}, running=SYSTEM)
    assert t == interpreter.Target(str(user), "--python")  # named wins over the active environment
    monkeypatch.chdir(tmp_path)
    assert interpreter.choose("user/bin/python", environ={}).python == str(user)  # relative to the current folder
    on_path = interpreter.choose("python3", "REBUILT_PYTHON", environ={"PATH": str(user.parent)})
    assert on_path == interpreter.Target(str(user.parent / "python3"), "REBUILT_PYTHON")
    with pytest.raises(ConfigError, match=r"--python: 'python9' is not on PATH"):
        interpreter.choose("python9", environ={"PATH": str(user.parent)})


def test_the_active_virtual_environment_then_conda_then_python3_on_path(tmp_path):
    venv, conda, plain = env_at(tmp_path / "venv"), env_at(tmp_path / "conda"), env_at(tmp_path / "plain")
    both = {"VIRTUAL_ENV": str(venv.parent.parent), "CONDA_PREFIX": str(conda.parent.parent), "PATH": "/nowhere"}
    assert interpreter.choose(environ=both, running=SYSTEM) == interpreter.Target(str(venv), interpreter.ACTIVE_VENV)
    conda_only = {"CONDA_PREFIX": str(conda.parent.parent), "PATH": "/nowhere"}
    assert interpreter.choose(environ=conda_only, running=SYSTEM).why == interpreter.ACTIVE_CONDA
    found = interpreter.choose(environ={"PATH": str(plain.parent)}, running=SYSTEM)
    assert found == interpreter.Target(str(plain.parent / "python3"), interpreter.ON_PATH)
    with pytest.raises(ConfigError, match="no active virtual or conda environment and no python3 on PATH"):
        interpreter.choose(environ={"PATH": str(tmp_path / "empty")}, running=SYSTEM)


def test_rebuilt_s_own_tool_environment_is_refused_unless_named(tmp_path):
    tool = env_at(tmp_path / "pipx" / "venvs" / "rebuilt")
    prefix = str(tool.parent.parent)
    running = (prefix, "/usr")  # rebuilt runs in a virtual environment nobody activated (pipx)
    environ = {"PATH": f"{tool.parent}:/usr/bin"}
    with pytest.raises(ConfigError, match=r"python3 on PATH is .*rebuilt's own tool environment") as err:
        interpreter.choose(environ=environ, running=running)
    assert f"--python {tool.parent / 'python3'}" in err.value.hint and "activate" in err.value.hint
    assert interpreter.choose(str(tool), environ=environ, running=running).python == str(tool)  # named: allowed
    active = {**environ, "VIRTUAL_ENV": prefix}  # the user activated it: their choice
    assert interpreter.choose(environ=active, running=running).why == interpreter.ACTIVE_VENV
    user = env_at(tmp_path / "user")
    elsewhere = {"PATH": f"{user.parent}:{tool.parent}"}  # python3 on PATH is the user's: fine
    assert interpreter.choose(environ=elsewhere, running=running).python == str(user.parent / "python3")
    assert interpreter.choose(environ=environ, running=SYSTEM).python == str(tool.parent / "python3")


def test_the_settings_say_which_rule_chose(resolve, tmp_path):
    venv = env_at(tmp_path / "venv")
    s = resolve({"python": None}, environ={"VIRTUAL_ENV": str(venv.parent.parent)})
    assert s.python() == str(venv) and s.target().why == interpreter.ACTIVE_VENV
    assert resolve().target() == interpreter.Target("/opt/env/bin/python", "--python")
    s = resolve({"python": None}, environ={"INVOKE_REBUILT_PYTHON": "/opt/other/bin/python"})
    assert s.target() == interpreter.Target("/opt/other/bin/python",
                                            "the python setting (env INVOKE_REBUILT_PYTHON)")
    fixed = interpreter.Target("/opt/nox/bin/python", "the nox session's virtualenv")
    assert settings_mod.resolve({"python": "/opt/x/bin/python"}, cwd=tmp_path, home=tmp_path, environ={},
                                target=fixed).target() == fixed


def test_the_nox_hand_off_is_one_file_written_and_read_here(resolve, tmp_path):
    venv, built = env_at(tmp_path / "venv"), env_at(tmp_path / "nox-env")
    s = resolve({"python": None}, environ={"VIRTUAL_ENV": str(venv.parent.parent)})
    wd, stack = s.workdir(), s.stack.name
    assert s.target(handoff=True).python == str(venv)  # nothing recorded: the active environment
    interpreter.record(wd, stack, str(built), dry_run=True)
    assert interpreter.recorded(wd, stack) is None and interpreter.recorded(wd, stack, dry_run=True).python == str(built)
    interpreter.record(wd, stack, str(built), dry_run=False)
    interpreter.record(wd, stack, str(built), dry_run=True)  # a dry run keeps the real build
    assert json.loads(interpreter.handoff_file(wd, stack).read_text())["built"] is True
    chosen = s.target(handoff=True)
    assert chosen.python == str(built) and f"nox -s build made for stack {stack}" in chosen.why
    assert s.target(str(venv), handoff=True).why == "--python"  # a task's own --python wins


def test_serve_and_bench_use_the_same_resolver(resolve, tmp_path):
    from rebuilt.cli.tasks.bench import _python
    from rebuilt.tools.serve.lifecycle import choose_python

    venv = env_at(tmp_path / "venv")
    s = resolve({"python": None}, environ={"VIRTUAL_ENV": str(venv.parent.parent)})
    assert choose_python(s, None) == _python(None, s) == str(venv)
    with pytest.raises(ConfigError, match=r"interpreter /nope/python does not exist \(chosen by --python\)"):
        _python("/nope/python", s)


def test_require_runs_names_the_rule(tmp_path):
    t = interpreter.Target(sys.executable, "python3 on PATH (no active virtual or conda environment)")
    interpreter.require_runs(t, "3.11.9")
    with pytest.raises(ConfigError, match=r"does not run: boom \(chosen by python3 on PATH"):
        interpreter.require_runs(t, None, "boom")


def test_every_plan_shows_the_interpreter_and_why(resolve, tmp_path):
    from rebuilt.build import builder
    from rebuilt.build import plan as plan_mod
    from tests.conftest import fake_machine

    venv = env_at(tmp_path / "venv")
    s = resolve({"python": None}, environ={"VIRTUAL_ENV": str(venv.parent.parent)})
    machine = fake_machine()
    plan, _ = builder.make_plan(s, ["sgl-kernel"], machine=machine, placeholders=True)
    header = plan_mod.render(plan, machine).splitlines()[1]
    assert header == f"  python   {venv} (3.11.9), chosen by the active virtual environment ($VIRTUAL_ENV)"
