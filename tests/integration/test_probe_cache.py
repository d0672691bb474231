"""The machine probe's remembered answers: reused while their producer is unchanged, asked again when it changes.

A fake tool on PATH counts its runs in a file, so each test sees whether the probe asked it or
reused what ``<workdir>/state/probe.json`` remembered.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from rebuilt.core import machine

TOOL = "#!/bin/sh\necho run >> {count}\necho '{text}'\n"


@pytest.fixture
def world(tmp_path, monkeypatch):
    bin_dir, wd = tmp_path / "bin", tmp_path / "wd"
    bin_dir.mkdir()
    wd.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))  # only the fakes: no real gcc, cmake, nvidia-smi
    monkeypatch.delenv("CUDA_HOME", raising=False)
    return bin_dir, wd, tmp_path / "count"


def fake_tool(bin_dir: Path, count: Path, name: str, text: str, mtime: int | None = None) -> Path:
    path = bin_dir / name
    path.write_text(TOOL.format(count=count, text=text))
    path.chmod(0o755)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def runs(count: Path) -> int:
    return len(count.read_text().splitlines()) if count.exists() else 0


def probe(wd: Path, tmp: Path, **kw) -> machine.Machine:
    return machine.probe(sys.executable, cuda_home=str(tmp / "no-cuda"), cache=wd / "state" / "probe.json", **kw)


def test_an_unchanged_tool_is_not_asked_again(world):
    bin_dir, wd, count = world
    fake_tool(bin_dir, count, "gcc", "gcc (Fake) 12.3.0")
    assert probe(wd, wd.parent).tools["gcc"] == "12.3.0"
    assert runs(count) == 1
    again = probe(wd, wd.parent)
    assert again.tools["gcc"] == "12.3.0" and runs(count) == 1
    record = wd / "state" / "probe.json"
    assert stat.S_IMODE(record.stat().st_mode) == 0o600


def test_a_changed_tool_is_asked_again(world):
    bin_dir, wd, count = world
    fake_tool(bin_dir, count, "gcc", "gcc (Fake) 12.3.0", mtime=1_700_000_000)
    probe(wd, wd.parent)
    fake_tool(bin_dir, count, "gcc", "gcc (Fake) 13.1.0", mtime=1_700_000_000)  # same size, same mtime
    assert probe(wd, wd.parent).tools["gcc"] == "13.1.0" and runs(count) == 2
    os.utime(bin_dir / "gcc", (1_800_000_000, 1_800_000_000))  # only touched
    probe(wd, wd.parent)
    assert runs(count) == 3


def test_a_tool_that_appears_or_moves_on_path_is_asked(world, monkeypatch):
    bin_dir, wd, count = world
    assert probe(wd, wd.parent).tools["cmake"] is None
    fake_tool(bin_dir, count, "cmake", "cmake version 3.31.6")
    assert probe(wd, wd.parent).tools["cmake"] == "3.31.6"
    other = wd.parent / "other-bin"
    other.mkdir()
    fake_tool(other, count, "cmake", "cmake version 4.0.2")
    monkeypatch.setenv("PATH", f"{other}{os.pathsep}{bin_dir}")
    assert probe(wd, wd.parent).tools["cmake"] == "4.0.2"


def test_a_failing_tool_is_not_remembered(world):
    bin_dir, wd, count = world
    tool = fake_tool(bin_dir, count, "ninja", "1.12.1")
    tool.write_text(f"#!/bin/sh\necho run >> {count}\nexit 3\n")
    probe(wd, wd.parent)
    probe(wd, wd.parent)
    assert runs(count) == 2


@pytest.mark.parametrize("damage", ["{not json", '{"format": 1, "answers": {"gcc --version": {"key": 3}}}',
                                    '["a list"]', "\udcff"])
def test_a_damaged_record_is_never_trusted(world, damage):
    bin_dir, wd, count = world
    fake_tool(bin_dir, count, "gcc", "gcc (Fake) 12.3.0")
    record = wd / "state" / "probe.json"
    record.parent.mkdir()
    record.write_text(damage, errors="surrogateescape")
    assert probe(wd, wd.parent).tools["gcc"] == "12.3.0" and runs(count) == 1
    assert json.loads(record.read_text())["format"] == 1  # replaced by a good one


def test_a_record_under_another_key_is_not_trusted(world):
    bin_dir, wd, count = world
    fake_tool(bin_dir, count, "gcc", "gcc (Fake) 12.3.0")
    probe(wd, wd.parent)
    record = wd / "state" / "probe.json"
    data = json.loads(record.read_text())
    data["answers"]["gcc --version"] = {"key": "/usr/bin/gcc>elsewhere", "out": "gcc (Lie) 99.0.0\n"}
    record.write_text(json.dumps(data))
    assert probe(wd, wd.parent).tools["gcc"] == "12.3.0" and runs(count) == 2


def test_nothing_is_written_into_a_workdir_that_does_not_exist(world):
    bin_dir, wd, count = world
    fake_tool(bin_dir, count, "gcc", "gcc (Fake) 12.3.0")
    missing = wd / "not-yet"
    assert probe(missing, wd.parent).tools["gcc"] == "12.3.0"
    assert not missing.exists()


def test_the_interpreter_is_probed_again_when_its_packages_change(world, monkeypatch, tmp_path):
    _, wd, _ = world
    site = tmp_path / "site"
    (site / "torch").mkdir(parents=True)
    (site / "torch" / "__init__.py").write_text("")
    (site / "torch" / "version.py").write_text("git_version = 'aaaa'\ncuda = None\n")
    dist = site / "torch-2.9.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.9.0\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    first = probe(wd, wd.parent).python
    assert first.packages["torch"] == "2.9.0" and first.torch["git_version"] == "aaaa"

    (site / "torch" / "version.py").write_text("git_version = 'bbbbbb'\ncuda = None\n")  # a develop build again
    assert probe(wd, wd.parent).python.torch["git_version"] == "bbbbbb"

    dist.rename(site / "torch-2.10.0.dist-info")  # an upgrade
    (site / "torch-2.10.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.10.0\n")
    assert probe(wd, wd.parent).python.packages["torch"] == "2.10.0"

    (site / "triton-3.5.0.dist-info").mkdir()  # another watched package installed beside it
    (site / "triton-3.5.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: triton\nVersion: 3.5.0\n")
    assert probe(wd, wd.parent).python.packages["triton"] == "3.5.0"

    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "elsewhere"))  # another sys.path
    assert probe(wd, wd.parent).python.packages["torch"] != "2.10.0"


def test_later_questions_are_remembered_too(world):
    bin_dir, wd, count = world
    fake_tool(bin_dir, count, "g++-13", "g++-13 (Fake) 13.2.0")
    db = wd.parent / "ld.so.cache"
    db.write_text("libnuma.so.1 => /lib/libnuma.so.1\n")
    (bin_dir / "ldconfig").write_text(f"#!/bin/sh\necho run >> {count}\nwhile read -r l; do echo \"$l\"; done < {db}\n")
    (bin_dir / "ldconfig").chmod(0o755)
    m = probe(wd, wd.parent)
    assert m.tool_version("g++-13") == "13.2.0" and runs(count) == 1
    assert "libnuma" in m.command_output([str(bin_dir / "ldconfig"), "-p"], (str(db),)) and runs(count) == 2

    later = probe(wd, wd.parent)
    assert later.tool_version("g++-13") == "13.2.0"
    assert "libnuma" in later.command_output([str(bin_dir / "ldconfig"), "-p"], (str(db),))
    assert runs(count) == 2
    db.write_text("libc.so.6 => /lib/libc.so.6\n")  # the file it reads changed
    assert "libnuma" not in later.command_output([str(bin_dir / "ldconfig"), "-p"], (str(db),))
    assert runs(count) == 3


def test_a_dry_run_from_remembered_answers_says_the_same(tmp_path):
    import re
    import subprocess

    wd = tmp_path / "wd"
    wd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_", "REBUILT_"))}
    argv = [sys.executable, "-m", "invoke", "build.stack", "--dry-run", "--python", sys.executable, "--workdir", str(wd)]
    root = Path(__file__).resolve().parents[2]

    def dry_run() -> str:
        done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=300)
        return re.sub(r"\d+(\.\d+)? GiB|= \d+\)", "N", f"exit {done.returncode}\n{done.stdout}{done.stderr}")

    asked = dry_run()
    assert (wd / "state" / "probe.json").is_file()
    assert dry_run() == asked
