"""nox sessions: reproducible builds and benchmarks in isolated Python 3.11 environments, tests, lint.

    nox -s "build-3.11(stack='sglang-0.5.4')"     build the stack into its own virtualenv
    nox -s h200_bench -- --model-path /models/Llama-3.1-8B-Instruct
    REBUILT_PYTHON=/usr/bin/python3 nox -s h200_bench -- ...   an existing environment (NGC), no build
"""

import os

import nox

from rebuilt import nox_support as support

nox.options.default_venv_backend = "virtualenv"
nox.options.sessions = ["tests", "lint"]

PYTHON = False if support.EXISTING else os.environ.get("REBUILT_NOX_PYTHON", "3.11")
BENCH_STACK = os.environ.get("REBUILT_NOX_STACK", "sglang-0.5.4")
BUILD_OF_BENCH = f"build(stack='{BENCH_STACK}')"


@nox.session(python=PYTHON, default=False, venv_params=support.venv_params())
@nox.parametrize("stack", support.stacks())
def build(session, stack):
    """Build the stack into this session's environment, reusing wheels whose inputs are unchanged."""
    support.build(session, stack)


@nox.session(python=False, default=False, requires=[] if support.EXISTING else [BUILD_OF_BENCH])
def h200_bench(session):
    """Benchmark the built stack on the GPU: checks, GPU health, the bench spec's cases, a stored run."""
    support.bench(session, BENCH_STACK)


@nox.session(python="3.11")
def tests(session):
    """Run the test suite (CPU only; GPU tests are marked and skipped)."""
    session.install("-e", ".[test]", "torch==2.13.0")
    session.run("pytest", "-q", *session.posargs)


@nox.session(python="3.11")
def lint(session):
    """Lint with ruff."""
    session.install("ruff")
    session.run("ruff", "check", "rebuilt", "tests", "noxfile.py", "tasks.py", *session.posargs)
