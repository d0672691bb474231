"""The command line as users type it, through the real programs: any order of arguments is either run or
one message with exit 2 (never a traceback), typos get a did-you-mean, and shell completion works when
driven the way bash and zsh drive it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INV = [sys.executable, "-m", "invoke"]
REBUILT = [sys.executable, "-m", "rebuilt.cli"]


def env_for(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_", "REBUILT_"))}
    return {**env, "HOME": str(tmp_path / "home")}


def run(argv: list[str], tmp_path: Path, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    (tmp_path / "home").mkdir(exist_ok=True)
    return subprocess.run(argv, cwd=cwd, env=env_for(tmp_path), capture_output=True, text=True, timeout=120)


# flags of build.torch/build.sgl-kernel given before the task name, in many orders
MISPLACED = [
    ["-p", "/opt/env/bin/python", "build.torch"],
    ["-w", "/tmp/w", "build.torch", "-n"],
    ["-f", "build.torch", "-n"],
    ["-s", "aiak", "build.torch", "-n"],
    ["-n", "build.torch"],
    ["-e", "-v", "build.torch", "-n"],
    ["--stack", "aiak", "build.stack", "--dry-run"],
    ["-j", "4", "build.sgl-kernel", "-n"],
    ["-r", "v1", "build.torch", "-n"],
    ["-D", "sgl-kernel.nvcc_threads=4", "build.sgl-kernel", "-n"],
]


def cases(lists):
    """Each command line under both programs. Under inv, -r and -D are read by invoke before it loads any task:
    rebuilt-inv.pth (setup.py, rebuilt/cli/invhook.py) catches them; it is installed with the package."""
    for prog in ("inv", "rebuilt"):
        for argv in lists:
            yield pytest.param(prog, argv, id=f"{prog} {' '.join(argv)}")


@pytest.mark.parametrize("prog, argv", list(cases(MISPLACED)))
def test_a_task_flag_before_the_task_name_is_one_message(prog, argv, tmp_path):
    r = run([*(INV if prog == "inv" else REBUILT), *argv], tmp_path)
    assert r.returncode == 2, r.stdout[-1000:] + r.stderr
    assert "Traceback" not in r.stderr and "before the task name" in r.stderr, r.stderr
    assert f"-> {prog} " in r.stderr and r.stdout == ""


@pytest.mark.parametrize("argv, meaning", [(["-D", "2", "--list"], "depth=2"), (["-r", "ROOT", "--list"], "build.torch")])
def test_invokes_own_d_and_r_still_work_where_they_are_meant(argv, meaning, tmp_path):
    r = run([*INV, *[str(ROOT) if a == "ROOT" else a for a in argv]], tmp_path, cwd=ROOT if "-D" in argv else tmp_path)
    assert r.returncode == 0 and meaning in r.stdout, r.stderr


def test_invoke_in_another_project_is_left_as_it_is(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "tasks.py").write_text("from invoke import task\n\n\n@task\ndef hello(c, r=''):\n    print('hello', r)\n")
    r = run([*INV, "-r", "v1", "hello"], tmp_path, cwd=other)  # invoke's own answer, not rebuilt's
    assert r.returncode == 1 and "Can't find any collection named 'tasks'!" in r.stderr and "rebuilt" not in r.stderr
    assert run([*INV, "hello", "-r", "v1"], tmp_path, cwd=other).stdout == "hello v1\n"


def test_rebuilt_takes_set_before_the_task_name_as_a_misplaced_flag(tmp_path):
    r = run([*REBUILT, "-D", "sgl-kernel.nvcc_threads=4", "build.sgl-kernel", "-n"], tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "-> rebuilt build.sgl-kernel -D sgl-kernel.nvcc_threads=4 -n" in r.stderr


ORDERS = [
    ["build.sgl-kernal"], ["build.sgl-kernel", "--dr"], ["build.sgl-kernel", "--jobs"], ["--help", "build.sgl-kernal"],
    ["bench.compare", "--top", "abc"], ["build.torch", "-n", "extra"], ["--nonsense"], ["-D"], ["-D", "x", "--list"],
    ["--list", "nope"], ["--print-completion-script", "tcsh"],
]


@pytest.mark.parametrize("prog, argv", list(cases(ORDERS)))
def test_no_order_of_arguments_is_a_traceback(prog, argv, tmp_path):
    r = run([*(INV if prog == "inv" else REBUILT), *argv], tmp_path)
    assert "Traceback" not in r.stderr and r.returncode in (0, 1, 2), r.stderr
    if prog == "rebuilt" or argv[0] != "--list":
        assert r.returncode != 0, r.stdout[-500:]


@pytest.mark.parametrize("prog", ["inv", "rebuilt"])
def test_a_mistyped_task_gets_a_did_you_mean(prog, tmp_path):
    r = run([*(INV if prog == "inv" else REBUILT), "build.sgl-kernal"], tmp_path)
    assert r.returncode == 2 and "did you mean build.sgl-kernel?" in r.stderr, r.stderr
    assert f"{prog} --list" in r.stderr
    r = run([*(INV if prog == "inv" else REBUILT), "build.sgl-kernel", "--dr"], tmp_path)
    assert r.returncode == 2 and "has no flag --dr (did you mean --dry-run?)" in r.stderr, r.stderr


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
        r = subprocess.run([*INV, task, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert f"{task} [--options]" in r.stdout and "no such file" not in r.stdout + r.stderr


def test_shell_completion_script_and_completion():
    script = subprocess.run([*REBUILT, "--print-completion-script", "bash"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert script.returncode == 0 and "complete -F" in script.stdout and "rebuilt" in script.stdout
    done = subprocess.run([*REBUILT, "--complete", "--", "rebuilt", "build.sgl-kernel", "--"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "--dry-run" in done.stdout and "--jobs" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("prog", ["inv", "rebuilt"])
def test_a_partial_flag_completes(prog, tmp_path):
    r = run([*(INV if prog == "inv" else REBUILT), "--complete", "--", prog, "build.sgl-kernel", "--dr"], tmp_path)
    assert r.returncode == 0 and "--dry-run" in r.stdout.split(), r.stdout + r.stderr
    assert "No idea" not in r.stdout + r.stderr


def fake_rebuilt(tmp_path: Path) -> Path:
    """A `rebuilt` command on PATH that is this checkout's program (what pipx puts on PATH)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / "rebuilt"
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} -m rebuilt.cli \"$@\"\n")
    exe.chmod(0o755)
    return bin_dir


def test_the_documented_completion_install_and_bash_completion(tmp_path):
    """QUICKSTART's install lines, run as written in a fresh home, then the installed function driven by bash."""
    quickstart = (ROOT / "docs" / "QUICKSTART.md").read_text()
    block = quickstart.split("## 6. Shell completion", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    bash_lines = [ln for ln in block.splitlines() if ln.strip() and "bash" in ln]
    assert any(ln.startswith("mkdir -p") for ln in bash_lines), block
    env = {**env_for(tmp_path), "PATH": f"{fake_rebuilt(tmp_path)}{os.pathsep}{os.environ['PATH']}"}
    (tmp_path / "home").mkdir()
    r = subprocess.run(["bash", "-c", "set -e\n" + "\n".join(bash_lines)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    installed = tmp_path / "home" / ".local/share/bash-completion/completions/rebuilt"
    drive = f"""source {installed}
complete_at() {{
    COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMPREPLY=()
    _rebuilt_complete; printf '%s\\n' "${{COMPREPLY[@]}}"; echo ---
}}
complete_at rebuilt build.sgl-kernel --dr
complete_at rebuilt build.sgl
complete_at rebuilt build.sgl-kernel --stack ''
complete_at rebuilt serve.up --profile ''
complete_at rebuilt doctor --recipe fl
complete_at rebuilt bui
"""
    r = subprocess.run(["bash", "-c", drive], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    answers = [part.split() for part in r.stdout.split("---\n")[:-1]]
    assert answers[0] == ["--dry-run"] and answers[1] == ["build.sgl-kernel", "build.sglang"], answers
    assert answers[2] == ["aiak", "sglang-0.5.4"] and answers[3] == ["aiak", "pd", "single"], answers
    assert answers[4] == ["flashinfer"] and "build.stack" in answers[5], answers
    assert "No idea" not in r.stdout + r.stderr


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (apt install zsh)")
def test_zsh_completion(tmp_path):
    env = {**env_for(tmp_path), "PATH": f"{fake_rebuilt(tmp_path)}{os.pathsep}{os.environ['PATH']}"}
    (tmp_path / "home").mkdir()
    fdir = tmp_path / "home" / ".zfunc"
    fdir.mkdir()
    r = subprocess.run(["bash", "-c", f"rebuilt --print-completion-script zsh > {fdir}/_rebuilt"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    # the completion system's compdef/compadd/_files stand in as recorders; words/CURRENT as zsh sets them
    drive = f"""compdef() {{ :; }}
compadd() {{ while [[ $1 == -* ]]; do [[ $1 == -- ]] && {{ shift; break; }}; shift; done; print -rl -- "$@"; }}
_files() {{ print FILES; }}
source {fdir}/_rebuilt
complete_at() {{ words=("$@"); CURRENT=$#; _rebuilt; print -- ---; }}
complete_at rebuilt build.sgl-kernel --dr
complete_at rebuilt build.sgl-kernel --stack ''
complete_at rebuilt serve.smoke --profile s
complete_at rebuilt build.torch --python ''
"""
    r = subprocess.run(["zsh", "-f", "-c", drive], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    answers = [part.split() for part in r.stdout.split("---\n")[:-1]]
    assert answers == [["--dry-run"], ["aiak", "sglang-0.5.4"], ["single"], ["FILES"]], r.stdout


@pytest.mark.parametrize("argv", [INV + ["--list"], INV + ["--help", "build.stack"], REBUILT + ["--list"],
                                  INV + ["--list", "--list-format", "json"]], ids=lambda a: " ".join(a[1:]))
def test_a_reader_that_closed_the_pipe_ends_it_quietly(argv, tmp_path):
    """`inv --list | head -1`: the reader is gone before the list is written; no BrokenPipeError traceback."""
    (tmp_path / "home").mkdir()
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write: every write fails with EPIPE
    try:
        done = subprocess.run(argv, cwd=ROOT, env=env_for(tmp_path), stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (0, "")
