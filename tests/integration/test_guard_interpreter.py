"""A target interpreter that cannot be inspected: one clear message and exit 2, never a traceback."""

from __future__ import annotations

import pytest

from rebuilt.build import guard
from rebuilt.errors import ConfigError
from tests.integration.test_fixture_builds import inv

SCRIPTS = {
    "not-python": '#!/bin/sh\necho "Python 3.11.9"\n',  # answers, but not what a Python 3 would
    "broken": '#!/bin/sh\necho "ImportError: libpython3.11.so.1.0: cannot open shared object file" >&2\nexit 1\n',
}


@pytest.fixture(params=sorted(SCRIPTS))
def python(request, tmp_path):
    path = tmp_path / request.param / "bin" / "python"
    path.parent.mkdir(parents=True)
    path.write_text(SCRIPTS[request.param])
    path.chmod(0o755)
    return path


def test_a_build_for_it_stops_with_exit_2_naming_it(python, tmp_path):
    r = inv("build.extras", "--python", str(python), "--no-checks", "--workdir", str(tmp_path / "wd"))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and str(python) in r.stderr and "--python" in r.stderr


def test_the_guard_snapshot_names_it(python):
    with pytest.raises(ConfigError, match=f"cannot inspect the target interpreter {python}"):
        guard.snapshot(str(python), ["torch"])
    with pytest.raises(ConfigError, match="does not exist or cannot run"):
        guard.snapshot(str(python.parent / "python9"), ["torch"])


def test_a_real_interpreter_reports_its_distributions():
    import sys
    from importlib import metadata

    snap = guard.snapshot(sys.executable, ["pytest", "no-such-distribution-x"])
    assert list(snap) == ["pytest"] and snap["pytest"].version == metadata.version("pytest")
    assert len(snap["pytest"].record) == 64 and snap["pytest"].path
