"""A secret setting reaches a program in clear (argv and environment) and nothing else shows it."""

from __future__ import annotations

import io

import pytest

from rebuilt.core import runner, secret


@pytest.fixture(autouse=True)
def _clean_registry():
    secret.forget_secrets()
    yield
    secret.forget_secrets()


def test_programs_get_the_real_value():
    """A Secret handed to a program (argv, env) is its value, not its redacted text."""
    s = secret.Secret("https://x:tok-7788@git.example/a.git", "url")
    assert runner.capture(["echo", s]).stdout.strip() == "https://x:tok-7788@git.example/a.git"
    proc = runner.capture(["/bin/sh", "-c", 'printf %s "$TOKEN"'], env={"TOKEN": secret.Secret("tok-env-99")})
    assert proc.stdout == "tok-env-99"


def test_a_build_step_gets_the_value_and_its_log_shows_it_masked():
    s = secret.Secret("tok-step-4242")
    log = io.StringIO()
    rc = runner.stream(["/bin/sh", "-c", 'test "$1" = tok-step-4242 && echo "got $1"', "sh", s], cwd="/",
                       env={"PATH": "/usr/bin:/bin"}, log=log, console=runner.Console())
    assert rc == 0 and "got ***" in log.getvalue() and "tok-step-4242" not in log.getvalue()
