"""Fault injection: a real venv with torch 2.13.0, real pip, real signals to a real `inv`.

One venv (seeing the test interpreter's packages for torch's own dependencies, with its own
copy of torch) and one backup wheel of it serve the whole session: every probe must leave torch
exactly as it found it, which is what the suite checks.

Each probe ends with a verdict, the first of: lost (torch's files changed), leaked (a
process of the run still alive, a `.part` file left), traceback, wrong (exit status,
manifest, lock or journal not as promised), else clean. The totals are written to
``$REBUILT_FAULTS_REPORT`` (JSON) when it is set; docs/RELIABILITY.md quotes them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.envs import make_venv
from tests.fakewheels import wheel_of_files as make_wheel

ROOT = Path(__file__).resolve().parents[2]
RECIPES = f"{ROOT / 'tests' / 'fixtures' / 'recipes'}{os.pathsep}{ROOT / 'recipes'}"
CATEGORIES = ("clean", "traceback", "wrong", "lost", "leaked")
_VERDICTS: dict[str, str] = {}


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.faults)


def pytest_sessionfinish(session):
    out = os.environ.get("REBUILT_FAULTS_REPORT")
    if not out or not _VERDICTS:
        return
    totals = {c: sum(1 for v in _VERDICTS.values() if v == c) for c in CATEGORIES}
    Path(out).write_text(json.dumps({"suite": "faults", "probes": len(_VERDICTS), **totals,
                                     "verdicts": _VERDICTS}, indent=2, sort_keys=True) + "\n")


# --------------------------------------------------------------------------- the environment

def run(*argv, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=600, **kw)


def torch_files(python) -> tuple[str, str] | None:
    """(version, digest of torch's installed files as its RECORD lists them), or None when torch is not there.

    The installer's own files (.dist-info, .data, scripts, byte code) are left out: a reinstall
    from a backup rewrites those, while every file of the package itself keeps its hash.
    """
    code = ("import hashlib, importlib.metadata as m, os, sys\n"
            "d = m.distribution('torch')\n"
            "rows = sorted(l for l in d.read_text('RECORD').splitlines() if l and not l.startswith('../')\n"
            "              and '.dist-info/' not in l.split(',')[0] and '.data/' not in l.split(',')[0]\n"
            "              and '__pycache__' not in l)\n"
            "gone = sum(not os.path.lexists(d.locate_file(l.rsplit(',', 2)[0])) for l in rows)\n"
            "import torch\n"
            "print(d.version, hashlib.sha256('\\n'.join(rows).encode()).hexdigest(), gone, torch.__file__,\n"
            "      d.locate_file(''))")
    r = run(python, "-c", code)
    if r.returncode != 0:
        return None
    version, digest, gone, where, meta = r.stdout.split()
    venv = str(Path(python).parent.parent)
    if not where.startswith(venv) or not meta.startswith(venv):
        return None  # the venv's own torch (or its metadata) is gone; what shows is the parent interpreter's
    if gone != "0":
        return None  # files its RECORD lists are missing (pip stopped after moving some aside)
    return version, digest


def stash_left(site: Path) -> list[str]:
    """pip's stash folders (~orch, ~orch-2.13.0+cpu.dist-info) that a stopped pip leaves in site-packages."""
    return sorted(p.name for p in site.iterdir() if p.name.startswith("~"))


@pytest.fixture(scope="session")
def torch_env(tmp_path_factory):
    base = tmp_path_factory.mktemp("faults")
    path = base / "venv"
    py = make_venv(path)  # sees the test interpreter's packages after its own
    r = run(py, "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", "--disable-pip-version-check",
            "torch==2.13.0")
    assert r.returncode == 0, r.stderr
    site = Path(run(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    backups = base / "backups"
    b = inv_run("torch.backup", "--python", py, "-o", backups, "--fast")
    assert b.returncode == 0, b.stderr
    [wheel] = backups.glob("torch-*.whl")
    fake = make_wheel(base / "fake", "torch", "2.5.1", {"torch/__init__.py": "__version__ = '2.5.1'\n"})
    state = torch_files(py)
    assert state and state[0] == "2.13.0+cpu"
    return {"python": py, "site": site, "backups": backups, "wheel": wheel, "fake": fake, "torch": state,
            "base": base}


# --------------------------------------------------------------------------- running inv

def inv_env(extra=None) -> dict:
    env = {**os.environ, "REBUILT_RECIPES_DIR": RECIPES, **(extra or {})}
    env.pop("PIP_CONSTRAINT", None)
    return env


def inv_run(*args, env=None) -> subprocess.CompletedProcess:
    return run(sys.executable, "-m", "invoke", *args, cwd=ROOT, env=inv_env(env))


class Inv:
    """`inv` started as a terminal would start it: its own process group (Ctrl-C goes to the whole group)."""

    def __init__(self, *args, env=None, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.out_path, self.err_path = folder / "stdout", folder / "stderr"
        self._out, self._err = open(self.out_path, "w"), open(self.err_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "invoke", *map(str, args)], cwd=ROOT, env=inv_env(env),
                                     stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL,
                                     start_new_session=True)

    def ctrl_c(self) -> None:
        """What a terminal does on Ctrl-C: SIGINT to the foreground process group."""
        os.killpg(self.proc.pid, signal.SIGINT)

    def signal(self, sig) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 300) -> int:
        rc = self.proc.wait(timeout=timeout)
        self._out.close()
        self._err.close()
        return rc

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()


def wait_for(predicate, timeout: float = 120, what: str = "a condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# --------------------------------------------------------------------------- the process table

def members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``, from /proc."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(entry.name))
    return out


def pips_running(needle: str) -> list[int]:
    """pip processes whose command line contains ``needle``."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            if argv[1:4] == ["-m", "pip", "install"] and any(needle in a for a in argv):
                out.append(int(entry.name))  # pip itself, not a shell whose command line mentions it
    return out


def pgid_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def lock_record(workdir: Path) -> dict | None:
    """The work dir's lock record ({} when free), or None when there is no lock file."""
    p = Path(workdir) / "state" / "build.lock"
    if not p.exists():
        return None
    text = p.read_text().strip()
    return json.loads(text) if text else {}


def manifest_status(workdir: Path, recipe: str = "faults") -> str | None:
    found = sorted((Path(workdir) / "manifests").glob(f"*-{recipe}.json"))
    return json.loads(found[-1].read_text())["status"] if found else None


def journal_of(workdir: Path) -> Path:
    return Path(workdir) / "state" / "guard-journal.json"


# --------------------------------------------------------------------------- verdicts

class Probe:
    """Checks in a fixed order; the first failing kind is the probe's verdict."""

    def __init__(self, name: str):
        self.name = name
        self.verdict = None

    def expect(self, kind: str, ok: bool, message: str) -> None:
        assert kind in CATEGORIES[1:]
        if not ok:
            self.verdict = self.verdict or kind
            raise AssertionError(f"[{kind}] {message}")

    def torch_kept(self, env, output: str = "") -> None:
        """torch as it was and nothing of pip's left; ``output``: what the command printed, for the message."""
        said = f"\n--- the command's output (end):\n{output[-3000:]}" if output else ""
        now = torch_files(env["python"])
        self.expect("lost", now == env["torch"], f"torch changed: {now} instead of {env['torch']}{said}")
        left = stash_left(env["site"])
        self.expect("leaked", not left, f"pip's stash left in site-packages: {left}{said}")

    def no_process(self, *pgids) -> None:
        for pgid in pgids:
            if pgid:
                wait_until_gone(pgid)
                self.expect("leaked", not members(pgid), f"process group {pgid} still has {members(pgid)}")

    def no_parts(self, folder: Path) -> None:
        parts = sorted(Path(folder).glob(".*.part")) if Path(folder).exists() else []
        self.expect("leaked", not parts, f".part files left: {parts}")

    def clean_output(self, text: str) -> None:
        self.expect("traceback", "Traceback" not in text, f"a traceback:\n{text[-3000:]}")


def wait_until_gone(pgid: int, timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while members(pgid) and time.monotonic() < end:
        time.sleep(0.05)


def _record(request, p: Probe) -> bool:
    """Write the probe's verdict; True when it failed (an expected failure too: it needs the repair as much)."""
    rep = getattr(request.node, "rep_call", None)
    failed = rep is not None and (rep.failed or hasattr(rep, "wasxfail"))
    if rep is None or (rep.skipped and not failed):
        return False
    _VERDICTS[request.node.nodeid.split("::", 1)[1]] = (p.verdict or "wrong") if failed else "clean"
    return failed


@pytest.fixture
def probe(request, torch_env):
    p = Probe(request.node.nodeid)
    yield p
    if _record(request, p):
        _repair(torch_env)


@pytest.fixture
def bare_probe(request):
    """A probe of processes or the network alone (no torch venv to check or repair)."""
    p = Probe(request.node.nodeid)
    yield p
    _record(request, p)


def _repair(env) -> None:
    """After a failed probe: let any pip on the venv end, and put torch back, so one failure stays one."""
    wait_for(lambda: not pips_running(str(env["python"].parent.parent)) and not pips_running(str(env["python"])),
             timeout=300, what="pip on the test venv to end")
    if torch_files(env["python"]) != env["torch"] or stash_left(env["site"]):
        for name in stash_left(env["site"]):
            subprocess.run(["rm", "-rf", str(env["site"] / name)], check=True)
        for other in env["site"].glob("torch-*.dist-info"):  # a half-written one of a stopped pip
            if not other.name.startswith(f"torch-{env['torch'][0]}."):
                subprocess.run(["rm", "-rf", str(other)], check=True)
        r = run(env["python"], "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", "--no-index",
                "--disable-pip-version-check", env["wheel"])
        assert r.returncode == 0 and torch_files(env["python"]) == env["torch"], r.stderr


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item.rep_call = rep
