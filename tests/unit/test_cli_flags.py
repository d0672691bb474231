"""The task namespace: one letter per flag everywhere; the `rebuilt` program's own options take none of
them; a mistyped task or flag gets a did-you-mean; a task flag before the task name says where it goes;
completion candidates. (What needs a process is in tests/integration/test_cli_args.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

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


def test_the_rebuilt_program_takes_no_letter_a_task_flag_uses():
    from rebuilt.cli.program import program

    core = {n for arg in program.initial_context.args.values() for n in arg.names if len(n) == 1}
    task_letters = {n for _, arg in _flags() for n in arg.names if len(n) == 1} - {"h"}
    assert core and not core & task_letters, core & task_letters
    assert "D" in task_letters and "p" in task_letters  # what invoke's core options took before


def _contexts():
    return {c.name: c for c in namespace().to_contexts(ignore_unknown_help=True)}


@pytest.mark.parametrize("argv, flag, fixed", [
    (["-D", "sgl-kernel.nvcc_threads=4", "build.sgl-kernel", "-n"], "-D",
     "inv build.sgl-kernel -D sgl-kernel.nvcc_threads=4 -n"),
    (["-p", "/opt/env/bin/python", "build.torch"], "-p", "inv build.torch -p /opt/env/bin/python"),
    (["-e", "-w", "/tmp/w", "build.torch", "-n"], "-w", "inv -e build.torch -w /tmp/w -n"),
    (["-f", "build.torch"], "-f", "inv build.torch -f"),
    (["--stack=aiak", "build.stack", "-n"], "--stack", "inv build.stack --stack=aiak -n"),
])
def test_a_task_flag_before_the_task_name_says_where_it_goes(argv, flag, fixed):
    from rebuilt.cli.tasks._argv import misplaced

    text = misplaced(argv, _contexts())
    assert text and text.startswith(f"rebuilt: {flag} before the task name is ") and text.endswith(f"-> {fixed}")


def test_flags_of_the_program_before_the_task_are_fine():
    from rebuilt.cli.tasks._argv import misplaced

    for argv in (["-e", "build.torch", "-n"], ["--help", "build.torch"], ["--list"], ["build.torch", "-p", "x"],
                 ["--complete", "--", "inv", "-p", "build.torch"]):
        assert misplaced(argv, _contexts()) is None, argv


def test_a_mistyped_task_or_flag_gets_a_did_you_mean():
    from invoke.exceptions import ParseError

    from rebuilt.cli.tasks._argv import explain

    ctx = _contexts()
    text = explain(ParseError("No idea what 'build.sgl-kernal' is!"), ctx)
    assert "no task named 'build.sgl-kernal' (did you mean build.sgl-kernel?)" in text and "--list" in text
    text = explain(ParseError("No idea what '--dr' is!", ctx["build.sgl-kernel"]), ctx)
    assert "build.sgl-kernel has no flag --dr (did you mean --dry-run?)" in text
    assert "did you mean" not in explain(ParseError("No idea what 'zzzz' is!"), ctx)


def test_program_messages_name_the_running_program(monkeypatch):
    from rebuilt.core import command

    assert command.as_typed("run `inv doctor --recipe torch` (or inv --list)") == \
        "run `inv doctor --recipe torch` (or inv --list)"
    monkeypatch.setattr(command, "PROGRAM", "rebuilt")
    assert command.as_typed("run `inv doctor --recipe torch` (or inv --list); /usr/bin/inv x") == \
        "run `rebuilt doctor --recipe torch` (or rebuilt --list); /usr/bin/inv x"
    assert command.command("torch.restore") == "rebuilt torch.restore"


def _complete(*words):
    from rebuilt.cli.completion import candidates
    from rebuilt.cli.program import program

    return candidates(["rebuilt", *words], program.initial_context, _contexts(), namespace().task_names)


def test_completion_candidates():
    assert _complete("build.sgl-kernel", "--dr") == ["--dry-run"]
    assert _complete("build.sgl") == ["build.sgl-kernel", "build.sglang"]
    assert _complete("build.sgl-kernel", "--stack", "") == ["aiak", "sglang-0.5.4"]
    assert _complete("build.sgl-kernel", "--stack", "=", "a") == ["aiak"]  # bash splits --stack=a at '='
    assert _complete("serve.up", "--profile", "") == ["aiak", "pd", "single"]
    assert _complete("serve.up", "s")[:1] == ["single"]  # its positional profile, then tasks
    assert _complete("doctor", "--recipe", "torch") == ["torch", "torchvision"]
    assert _complete("--print-completion-script", "") == ["bash", "zsh", "fish"]
    assert "--list" in _complete("--li") and "--dry-run" not in _complete("--")
    assert _complete("build.torch", "--python", "") == []  # the shell completes file names


def test_the_task_list_summary_is_the_recipe_summary():
    from rebuilt.cli.tasks import _catalog
    from rebuilt.core import recipes

    names = _catalog.recipe_names()
    assert names == recipes.recipe_names()
    assert [_catalog.summary(n) for n in names] == [recipes.get(n).summary for n in names]
    assert _catalog.stack_names() == recipes.stack_names()
