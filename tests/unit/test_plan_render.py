"""What --dry-run prints: every step's title, flags, cwd, env changes, note and command, the internal actions in
words, credentials masked; and the checkout-only plan of `src.fetch`. Plans built by hand, no process."""

from __future__ import annotations

from dataclasses import replace

from rebuilt.build import jobs as jobs_mod
from rebuilt.build.plan import Plan, RecipePlan, Step, describe_action, env_diff, render, source_only
from rebuilt.core import recipes as recipes_mod
from tests.conftest import fake_machine


def action(name: str, **args) -> Step:
    return Step("r", name, "/w", action=name, args=args)


# --------------------------------------------------------------------------- the actions in words


def test_fetch_in_words_with_and_without_submodules_and_no_credentials():
    step = action("fetch", url="https://user:hunter2@git.example/x.git", ref="v1", dest="/w/src/x", submodules=False)
    assert describe_action(step) == "git fetch https://***@git.example/x.git v1 -> /w/src/x (checkout --detach)"
    step = replace(step, args={**step.args, "submodules": True})
    assert describe_action(step) == (
        "git fetch https://***@git.example/x.git v1 -> /w/src/x (checkout --detach); "
        "git submodule sync --recursive; git submodule update --init --recursive")


def test_patches_in_words_with_their_sha256():
    step = action("patches", patches=["/p/r/0001-a.patch", "/p/r/0002-b.patch"], sha256=["abc", "def"], dest="/w")
    assert describe_action(step) == ("git apply, in order, skipping patches already applied: "
                                     "0001-a.patch (abc), 0002-b.patch (def)")
    step = action("patches", patches=["/p/r/0001-a.patch", "/p/r/0002-b.patch"], dest="/w")
    assert describe_action(step) == ("git apply, in order, skipping patches already applied: "
                                     "0001-a.patch, 0002-b.patch")


def test_collect_in_words():
    assert describe_action(action("collect", patterns=["dist/*.whl", "x/*.whl"], dest="/w/wheels")) == \
        "copy dist/*.whl, x/*.whl -> /w/wheels (sha256 in the manifest)"


def test_pip_protected_in_words():
    step = action("pip-protected", python="/py", target=["-e", "."], protected=["triton", "torch"])
    assert describe_action(step) == (
        "/py -m pip install --no-deps -e .; then its requirements except protected ['torch', 'triton'] (printed), "
        "resolved first (pip --dry-run --report) and installed as resolved; a protected one not installed only at "
        "the version matching torch")


def test_drop_requirements_in_words_with_and_without_the_resolver_check():
    step = action("drop-requirements", files=["a.txt", "b.txt"], protected=["triton", "torch"])
    plain = ("remove requirement lines naming ['torch', 'triton'] from a.txt, b.txt "
             "(by requirement name, not upstream's substring match)")
    assert describe_action(step) == plain
    assert describe_action(replace(step, args={**step.args, "resolve": []})) == plain
    step = replace(step, args={**step.args, "resolve": ["a.txt", "c.txt"]})
    assert describe_action(step) == (
        "remove requirement lines naming ['torch', 'triton'] from a.txt, b.txt (by requirement name, not upstream's "
        "substring match); then the lines of a.txt, c.txt that pip's resolver (--dry-run --report) cannot install "
        "next to the installed protected versions (each with pip's reason)")


def test_check_import_in_words():
    assert describe_action(action("check-import", python="/py", module="deep_ep")) == \
        "/py -c 'import deep_ep' (prints its version and path)"


def test_keep_installed_in_words():
    assert describe_action(action("keep-installed", dist="torch", found="2.8.0", expect="2.8.0")) == \
        "keep the environment's torch (2.8.0); expected 2.8.0"
    assert describe_action(action("keep-installed", dist="torch", found=None, expect="")) == \
        "keep the environment's torch (not installed); expected any"


def test_an_unknown_action_is_named():
    assert describe_action(action("mystery")) == "<mystery>"


def test_command_text_quotes_argv_and_keeps_shell_lines():
    assert Step("r", "s", "/w", argv=("echo", "a b", "$HOME")).command_text() == "echo 'a b' '$HOME'"
    assert Step("r", "s", "/w", shell="make -j4 && echo $HOME").command_text() == "make -j4 && echo $HOME"
    assert Step("r", "s", "/w", action="collect", args={"patterns": ["a"], "dest": "/d"}).command_text() == \
        "copy a -> /d (sha256 in the manifest)"
    assert Step("r", "s", "/w", argv=("x",)).title == "r:s"


# --------------------------------------------------------------------------- env changes


def test_env_changes_only_what_differs_from_the_previous_step():
    assert env_diff({}, {"A": "1", "B": None}) == ["A=1", "unset B"]
    assert env_diff({"A": "1", "B": None}, {"A": "1", "B": None}) == []
    assert env_diff({"A": "1"}, {"A": "2 3"}) == ["A='2 3'"]
    assert env_diff({"A": None}, {"A": "1"}) == ["A=1"]
    assert env_diff({"A": "1"}, {"A": None}) == ["unset A"]
    assert env_diff({"Z": "1", "A": "1", "M": None}, {"M": None}) == [
        "(as in the caller's environment again: A, Z)"]
    assert env_diff({"A": "1"}, {"U": "https://u:hunter2@h/x"}) == [
        "U='https://***@h/x'", "(as in the caller's environment again: A)"]


# --------------------------------------------------------------------------- the whole plan


def a_plan(python_why="the python setting"):
    recipe = recipes_mod.get("sglang")
    steps = (
        Step("sglang", "fetch", "/w/src", action="fetch", network=True,
             args={"url": "https://u:hunter2@git.example/s.git", "ref": "v1", "dest": "/w/src/s", "submodules": False}),
        Step("sglang", "build", "/w/src/s", argv=("make", "-j8"), env={"MAX_JOBS": "8", "CC": None},
             installs=True, gpu=True, note="slow"),
        Step("sglang", "install", "/w/src/s", shell="pip install https://u:pw@h/x.tar.gz",
             env={"MAX_JOBS": "8", "CC": None}, network=True, installs=True),
        Step("sglang", "verify", "/w", action="check-import", args={"python": "/py", "module": "sglang"}),
    )
    rp = RecipePlan(recipe, {}, steps, ("one warning", "two"), jobs_mod.JobChoice(8, "auto: 8 CPUs"), "/w/src/s", {})
    return Plan(stack="sglang-0.5.4", python="/opt/env/bin/python", workdir="/w", recipes=(rp,),
                python_why=python_why)


def test_rendered_plan_line_by_line():
    assert render(a_plan(), fake_machine()).splitlines() == [
        "Plan: sglang (stack sglang-0.5.4)",
        "  python   /opt/env/bin/python (3.11.9), chosen by the python setting",
        "  workdir  /w",
        "  jobs     sglang: 8 (auto: 8 CPUs)",
        "  ! one warning",
        "  ! two",
        "[1/4] sglang:fetch  (network)",
        "      cwd  /w/src",
        "      > git fetch https://***@git.example/s.git v1 -> /w/src/s (checkout --detach)",
        "[2/4] sglang:build  (installs, gpu)",
        "      cwd  /w/src/s",
        "      env  MAX_JOBS=8",
        "      env  unset CC",
        "      note slow",
        "      $ make -j8",
        "[3/4] sglang:install  (network, installs)",
        "      cwd  /w/src/s",
        "      $ pip install https://***@h/x.tar.gz",
        "[4/4] sglang:verify",
        "      cwd  /w",
        "      env  (as in the caller's environment again: CC, MAX_JOBS)",
        "      > /py -c 'import sglang' (prints its version and path)",
    ]


def test_rendered_plan_of_an_interpreter_that_does_not_run():
    machine = fake_machine()
    machine = replace(machine, python=replace(machine.python, version=None, error="No such file"))
    lines = render(a_plan(python_why=""), machine).splitlines()
    assert lines[1] == "  python   /opt/env/bin/python (not runnable: No such file)"


def test_rendered_plan_of_several_recipes_numbers_steps_across_them():
    one = a_plan().recipes[0]
    two = replace(one, recipe=recipes_mod.get("sgl-kernel"), steps=one.steps[:1], warnings=(),
                  jobs=jobs_mod.JobChoice(4, "explicit"))
    plan = replace(a_plan(), recipes=(one, two))
    text = render(plan, fake_machine())
    assert text.startswith("Plan: sglang, sgl-kernel (stack sglang-0.5.4)\n")
    assert "  jobs     sglang: 8 (auto: 8 CPUs)\n  jobs     sgl-kernel: 4 (explicit)\n" in text
    assert "[5/5] sglang:fetch  (network)" in text and "[1/5] sglang:fetch" in text


# --------------------------------------------------------------------------- src.fetch's plan


def test_source_only_keeps_each_checkout_once_with_its_fetch_and_patches():
    plan = a_plan()
    one = plan.recipes[0]
    patches = Step("sglang", "patches", "/w/src/s", action="patches", args={"patches": [], "dest": "/w/src/s"})
    one = replace(one, steps=(one.steps[0], patches, *one.steps[1:]))
    kernel = replace(one, recipe=recipes_mod.get("sgl-kernel"), steps=tuple(replace(s, recipe="sgl-kernel")
                                                                            for s in one.steps))
    other = replace(one, recipe=recipes_mod.get("flashinfer"), source_dir="/w/src/f",
                    steps=(replace(one.steps[0], recipe="flashinfer"), one.steps[2]))
    none = replace(one, recipe=recipes_mod.get("extras"), source_dir=None, steps=(one.steps[3],))
    only = source_only(replace(plan, recipes=(none, one, kernel, other)))
    assert [rp.recipe.name for rp in only.recipes] == ["sglang", "flashinfer"]
    assert [s.title for s in only.steps] == ["sglang:fetch", "sglang:patches", "flashinfer:fetch"]
    assert only.warnings == [] and only.stack == plan.stack and only.python == plan.python
