"""nox sessions: reproducible builds and benchmarks in isolated Python 3.11 environments, tests, lint.

    nox -s "build(stack='sglang-0.5.4')"                      build the stack into its own virtualenv
    nox -s h200_bench -- --model-path /models/Llama-3.1-8B-Instruct --cases 'bs=1,8;il=512'
        (h200_preflight: the GPU in seconds -> h200_build: the stack, only if that passed -> h200_bench)
    nox -s h200_bench -- --dry-run                            every command, anywhere
    REBUILT_PYTHON=/usr/bin/python3 nox -s h200_bench -- ...   an existing environment (NGC): no venv, no build

The logic lives in rebuilt/cli/nox_sessions.py; docs/NOX.md explains the sessions and their flags.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # rebuilt importable without installing it

import nox

from rebuilt.cli import nox_sessions as support

nox.options.default_venv_backend = "virtualenv"
nox.options.sessions = ["tests", "lint"]

PYTHON = False if support.EXISTING else os.environ.get("REBUILT_NOX_PYTHON", "3.11")
BENCH_STACK = support.bench_stack()
# h200_bench's chain is h200_preflight -> h200_build -> h200_bench, each requiring the one before: a
# machine without a usable GPU stops at the preflight, in seconds, before any virtualenv or build, also
# with --no-stop-on-first-error or --parallel (nox skips a session whose requirement failed).
BENCH_NEEDS = [] if support.EXISTING else ["h200_build"]


@nox.session(python=PYTHON, default=False)
@nox.parametrize("stack", support.stacks())
def build(session, stack):
    """Build the stack into this session's environment, reusing wheels whose inputs are unchanged."""
    support.build(session, stack)


@nox.session(python=False, default=False)
def h200_preflight(session):
    """Check in seconds that this machine can run the bench (GPU, free memory, model) before building."""
    support.preflight(session, BENCH_STACK)


@nox.session(python=PYTHON, default=False, requires=["h200_preflight"])
def h200_build(session):
    """Build the bench's stack into this session's environment, only after h200_preflight passed."""
    support.build(session, BENCH_STACK)


@nox.session(python=False, default=False, requires=BENCH_NEEDS)
def h200_bench(session):
    """Benchmark the built stack on the GPU: checks, GPU health, the bench spec's cases, a stored run."""
    support.bench(session, BENCH_STACK)


@nox.session(python="3.11")
def tests(session):
    """Run the test suite in its own environment (CPU only; GPU runs are recorded in docs/GPU.md)."""
    session.install("-e", ".[test]", "torch==2.13.0")
    session.run("python", "-m", "pytest", "-q", *session.posargs)


@nox.session(python="3.11", default=False)
def mutants(session):
    """Mutation testing of the core modules with mutmut (slow, not in CI); posargs pick mutants: 'rebuilt.build.guard*'."""
    session.install("-e", ".[test]", "torch==2.13.0", "mutmut==3.8.1", "pytest-timeout==2.4.0")
    session.run("mutmut", "run", *session.posargs)
    session.run("mutmut", "results")


@nox.session(python="3.11")
def lint(session):
    """Lint with ruff and check the layers with import-linter (versions pinned, rules in pyproject.toml)."""
    session.install("ruff==0.17.6", "import-linter==2.17", "-e", ".")
    session.run("ruff", "check", "rebuilt", "tests", "perf", "noxfile.py", "tasks.py")
    session.run("lint-imports")


# The perf scripts' quick variants: each runs both sides of its comparison in one process tree, prints
# the ratio against its goal and exits non-zero when the goal is missed (docs/PERFORMANCE.md has the
# full-size figures and their commands). Not a default session and not in CI: timings need a quiet machine.
PERF_QUICK = [
    ("perf/startup.py", "--quick"),
    ("perf/noop_check.py", "--files", "20000", "--repeats", "5"),
    ("perf/trace_speed.py", "--size-mb", "100"),
    ("perf/backup_vs_zip.py",),
    ("perf/ccache_warm.py",),
    ("perf/logscan_speed.py", "--mb", "20", "--repeats", "1"),
    ("perf/fleet.py", "--repeat", "1"),
    ("perf/fail_fast.py", "--quick"),
]


@nox.session(python="3.11", default=False)
def perf(session):
    """Run the quick variant of every perf/ script; fails when one misses its goal."""
    session.install("-e", ".[test]", "torch==2.13.0")
    failed = []
    for script, *args in PERF_QUICK:
        if session.posargs and not any(p in script for p in session.posargs):
            continue
        try:
            session.run("python", script, *args)
        except nox.command.CommandFailed:
            failed.append(script)
    if failed:
        session.error(f"goal missed or script failed: {', '.join(failed)}")
