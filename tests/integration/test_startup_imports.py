"""What the task list and shell completion import: only what they need, never what a task's body needs.

Every `inv --list`, `rebuilt --list` and <TAB> starts an interpreter; the recipe parser (tomllib,
packaging), the settings cascade, requests and orjson belong to running a task. (The time itself is
measured by perf/startup.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ONLY_FOR_TASK_BODIES = ("packaging", "requests", "orjson", "tomllib", "rebuilt.core.recipes", "rebuilt.core.settings",
                        "rebuilt.build", "rebuilt.tools")

PROBE = """
import sys
from {module} import program
try:
    program.run({argv!r})
except SystemExit:
    pass
print("MODULES", " ".join(sorted(sys.modules)))
"""


@pytest.mark.parametrize("module, argv", [
    ("invoke.main", ["inv", "--list"]),
    ("invoke.main", ["inv", "--complete", "--", "inv", "build.sgl-kernel", "--dr"]),
    ("rebuilt.cli.program", ["rebuilt", "--list"]),
    ("rebuilt.cli.program", ["rebuilt", "--complete", "--", "rebuilt", "build.sgl-kernel", "--stack", ""]),
    ("rebuilt.cli.program", ["rebuilt", "--complete", "--", "rebuilt", "doctor", "--recipe", ""]),
], ids=lambda v: v if isinstance(v, str) else " ".join(v[1:3]))
def test_the_task_list_and_completion_import_no_task_body_module(module, argv, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_", "REBUILT_"))}
    r = subprocess.run([sys.executable, "-c", PROBE.format(module=module, argv=argv)], cwd=ROOT,
                       env={**env, "HOME": str(tmp_path)}, capture_output=True, text=True, timeout=120)
    assert "MODULES" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
    modules = r.stdout.split("MODULES", 1)[1].split()
    assert len(r.stdout.split("MODULES")[0].splitlines()) > 1  # it did list / complete something
    heavy = sorted(m for m in modules if m.split(".")[0] in ONLY_FOR_TASK_BODIES or m.startswith(ONLY_FOR_TASK_BODIES))
    assert not heavy, heavy
