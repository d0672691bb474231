"""The task namespace: one letter per flag everywhere, --help on tasks with positional arguments,
and the `rebuilt` program built on the same namespace."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rebuilt.cli.tasks import SHORT_FLAGS, namespace

ROOT = Path(__file__).resolve().parents[2]


def _flags():
    for ctx in namespace().to_contexts(ignore_unknown_help=False):
        for arg in ctx.args.values():
            yield ctx.name, arg


def test_a_short_flag_means_the_same_long_flag_in_every_task():
    meaning: dict[str, set[str]] = {}
    for task, arg in _flags():
        if arg.positional:
            continue
        longs = [n for n in arg.names if len(n) > 1]
        for short in (n for n in arg.names if len(n) == 1):
            meaning.setdefault(short, set()).update(longs)
            assert (arg.attr_name or arg.name) in SHORT_FLAGS, f"{task}: -{short} for {longs} is not in SHORT_FLAGS"
    allowed = ({"output", "out"}, {"force", "follow"})  # same meaning; -f follows logs as in `tail -f`
    assert meaning and all(len(v) == 1 or v in allowed for v in meaning.values()), meaning


CHECK_HELP = """
from rebuilt.cli.tasks import namespace
ns = namespace()
missing = [ctx.name + ' --' + a.name for ctx in ns.to_contexts(ignore_unknown_help=False)
           for a in ctx.args.values() if not a.help]
missing += [n + ' (no docstring)' for n in ns.task_names if not (ns[n].__doc__ or '').strip()]
print('\\n'.join(missing))
"""


def test_every_task_has_a_docstring_and_help_for_every_flag():
    # a fresh interpreter: invoke consumes a task's help dict the first time it builds the arguments
    r = subprocess.run([sys.executable, "-c", CHECK_HELP], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "", r.stdout


def test_help_after_a_positional_task_shows_the_help(tmp_path):
    for task in ("profile.summary", "bench.parse", "src.patch-check"):
        r = subprocess.run([sys.executable, "-m", "invoke", task, "--help"], cwd=ROOT, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert f"{task} [--options]" in r.stdout and "no such file" not in r.stdout + r.stderr


def test_shell_completion_script_and_completion():
    script = subprocess.run([sys.executable, "-m", "rebuilt.cli", "--print-completion-script", "bash"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert script.returncode == 0 and "complete -F" in script.stdout and "rebuilt" in script.stdout
    done = subprocess.run([sys.executable, "-m", "rebuilt.cli", "--complete", "--", "rebuilt", "build.sgl-kernel", "--"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "--dry-run" in done.stdout and "--jobs" in done.stdout, done.stdout + done.stderr
