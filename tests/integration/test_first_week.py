"""What a user trips on in the first week, each through the real programs: the dry run's hint names a
doctor command that shows the same checks; checks appear only for recipes that use what they check;
`--explain --dry-run` says what a real build would do; messages of `rebuilt` name `rebuilt`; serve's
hints are commands that work; aiak's MODEL_ID is what SERVE.md says; git's patch failure in one line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.gitrepo import GIT_ENV, git

ROOT = Path(__file__).resolve().parents[2]
INV = [sys.executable, "-m", "invoke"]
REBUILT = [sys.executable, "-m", "rebuilt.cli"]


def clean_env(tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_REBUILT_", "REBUILT_"))}
    return {**env, "HOME": str(tmp_path), **extra}


def run(argv, env, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def failed_checks(text: str) -> set[str]:
    """Check names a dry run's verdict or the doctor's table reports as failed."""
    names = set(re.findall(r"^  ([\w .<>-]+?): .*$", text.split("would stop the build")[1].split("warnings:")[0],
                           re.MULTILINE)) if "would stop the build" in text else set()
    return names | set(re.findall(r"^(\S[\w .-]*?)\s+FAIL\s", text, re.MULTILINE))


def test_the_dry_run_hint_names_a_doctor_command_that_shows_the_same_checks(tmp_path):
    env = clean_env(tmp_path, CUDA_HOME=str(tmp_path / "no-cuda"))  # a check fails on any machine
    for prog, argv in (("inv", INV), ("rebuilt", REBUILT)):
        dry = run([*argv, "build.stack", "--dry-run", "--workdir", str(tmp_path / "wd")], env)
        assert dry.returncode == 0 and "would stop the build" in dry.stdout, dry.stdout[-2000:] + dry.stderr
        hint = re.search(r"fix these \(`([^`]+)` shows the same checks\)", dry.stdout)
        assert hint and hint.group(1).startswith(f"{prog} doctor --recipe "), dry.stdout[-1000:]
        doctor = run(["bash", "-c", hint.group(1).replace(prog, " ".join(argv), 1) +
                      f" --workdir {tmp_path / 'wd'}"], env)
        assert doctor.returncode == 3, doctor.stdout[-2000:] + doctor.stderr
        assert failed_checks(dry.stdout) == failed_checks(doctor.stdout) != set(), (dry.stdout, doctor.stdout)


def test_uv_and_cuda_appear_only_for_recipes_that_use_them(tmp_path):
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    tools = tmp_path / "tools"  # a PATH with git and make, without uv
    tools.mkdir()
    for tool in ("git", "make", "sh", "bash"):
        found = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        if found:
            (tools / tool).symlink_to(found)
    env = clean_env(tmp_path, PATH=str(tools), CUDA_HOME=str(tmp_path / "no-cuda"))
    common = ["--python", str(bare / "bin" / "python"), "--workdir", str(tmp_path / "wd")]
    extras = run([*INV, "build.extras", "--dry-run", *common], env)
    assert extras.returncode == 0, extras.stderr
    doctor = run([*INV, "doctor", "--recipe", "extras", *common], env)
    for text in (extras.stdout, doctor.stdout):
        assert not re.search(r"^\s*(uv|cuda)\b", text, re.MULTILINE), text
    kernel = run([*INV, "doctor", "--recipe", "sgl-kernel", *common], env)
    assert re.search(r"^cuda\s+FAIL", kernel.stdout, re.MULTILINE), kernel.stdout
    assert re.search(r"^uv\s+ok\s+not installed yet: sgl-kernel:install-uv installs it", kernel.stdout, re.MULTILINE)


TINY = """[recipe]
name = "tiny"
summary = "a recipe of one shell step (tests)"

[options]
word = "hello"

[[steps]]
name = "say"
shell = "echo {word} > {workdir}/said.txt"
cwd = "{workdir}"
"""


def test_explain_with_dry_run_says_what_a_real_build_would_do(tmp_path):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "tiny.toml").write_text(TINY)
    env = clean_env(tmp_path, REBUILT_RECIPES_DIR=f"{recipes}{os.pathsep}{ROOT / 'recipes'}")
    common = ["build.tiny", "--workdir", str(tmp_path / "wd"), "--no-checks", "--set", "auto_backup=false"]
    first = run([*INV, *common, "--explain", "--dry-run"], env)
    assert "tiny: a real build builds it (no earlier successful build to compare with)" in first.stdout, first.stdout
    built = run([*INV, *common], env)
    assert built.returncode == 0 and (tmp_path / "wd" / "said.txt").read_text() == "hello\n", built.stderr
    same = run([*INV, *common, "--explain", "--dry-run"], env)
    assert re.search(r"tiny: up to date \(inputs unchanged since \S+\): a real build skips it", same.stdout), same.stdout
    other = run([*INV, *common, "--explain", "--dry-run", "--set", "tiny.word=bye"], env)
    assert "tiny: a real build rebuilds it, changed since the last build: plan" in other.stdout, other.stdout
    assert (tmp_path / "wd" / "said.txt").read_text() == "hello\n"  # a dry run ran nothing


def test_messages_of_rebuilt_name_rebuilt(tmp_path):
    env = clean_env(tmp_path)
    r = run([*REBUILT, "torch.restore", "--workdir", str(tmp_path / "wd")], env, cwd=tmp_path)
    assert r.returncode == 2 and "-> rebuilt torch.backup first" in r.stderr, r.stderr
    r = run([*INV, "torch.restore", "--workdir", str(tmp_path / "wd")], env)
    assert r.returncode == 2 and "-> inv torch.backup first" in r.stderr, r.stderr
    # the doctor's rows: a hint such as `inv proxy.on` (a host that cannot be reached) names `rebuilt`
    doctor = run([*REBUILT, "doctor", "--workdir", str(tmp_path / "wd"), "--set", "cuda_home=/nonexistent"],
                 env, cwd=tmp_path)
    assert doctor.returncode == 3 and "-> " in doctor.stdout and " inv " not in doctor.stdout, doctor.stdout


def test_the_aiak_dry_run_shows_the_model_path_as_model_id(tmp_path):
    env = clean_env(tmp_path)
    r = run([*INV, "serve.up", "aiak", "--dry-run", "--set", "serve.model_path=/models/llama",
             "--workdir", str(tmp_path / "wd")], env)
    assert r.returncode == 0, r.stderr
    assert "MODEL_ID=''" not in r.stdout and "MODEL_ID=/models/llama" in r.stdout, r.stdout
    named = run([*INV, "serve.up", "aiak", "--dry-run", "--set", "serve.model_path=/models/llama", "--set",
                 "serve.served_model_name=llama", "--workdir", str(tmp_path / "wd")], env)
    assert "MODEL_ID=llama" in named.stdout and "MODEL_ID=/models" not in named.stdout


def test_serve_down_hint_after_already_running_is_a_command_that_works(tmp_path):
    from tests.integration.test_serve import Box

    box = Box(tmp_path)
    try:
        assert box.inv("serve.up", "fake-single").returncode == 0
        again = box.inv("serve.up", "fake-single")
        assert again.returncode == 2 and "is already running" in again.stderr, again.stderr
        hint = re.search(r"-> inv (serve\.down [^\n]*?) first", again.stderr)
        assert hint and "--profile fake-single" in hint.group(1), again.stderr
        down = box.inv(*hint.group(1).split())
        assert down.returncode == 0, down.stdout + down.stderr
        assert "running" not in box.inv("serve.status", "--profile", "fake-single").stdout.split("\n", 1)[-1]
    finally:
        box.inv("serve.down", "--profile", "fake-single")


def test_a_patch_that_does_not_apply_is_said_in_git_s_words_in_one_line(tmp_path):
    from rebuilt.build.sources import first_failure

    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.txt").write_text("one\ntwo\nthree\n")
    git(repo, "add", "a.txt")
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "a"], env={**os.environ, **GIT_ENV}, check=True)
    patch = tmp_path / "p.patch"
    patch.write_text("--- a/a.txt\n+++ b/a.txt\n@@ -1,3 +1,3 @@\n one\n-TWO\n+2\n three\n")
    said = first_failure(repo, str(patch))
    assert said == "patch failed: a.txt:1; a.txt: patch does not apply", said
