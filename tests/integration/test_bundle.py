"""Bundles for hosts without network, end to end on loopback.

Git servers (HTTP, git's dumb protocol) serve the fixture project, its submodule and its two
FetchContent dependencies; a PEP 503 index serves two wheels the test builds. ``inv src.bundle``
takes all of it; the servers are stopped; ``inv src.unbundle`` and ``inv build.offline-proj --offline``
run in a fresh work dir inside a network namespace without a route (``unshare -n``; else every
proxy variable points to a closed port and a listener checks nothing connected).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from tests.gitrepo import commit, git, make_repo

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "offline_proj"
RECIPES = f"{FIX / 'recipes'}{os.pathsep}{ROOT / 'recipes'}"
pytestmark = pytest.mark.skipif(not shutil.which("cmake") or not shutil.which("cc"), reason="needs cmake and cc")


def _netns() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-n", "true"], capture_output=True).returncode == 0


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Server:
    """A folder served over HTTP on 127.0.0.1 (git dumb protocol and a PEP 503 index alike)."""

    def __init__(self, root: Path, port: int = 0):
        handler = functools.partial(Quiet, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _publish(src: Path, www: Path, name: str) -> None:
    dest = www / f"{name}.git"
    shutil.rmtree(dest, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(src), str(dest)], check=True)
    subprocess.run(["git", "-C", str(dest), "update-server-info"], check=True)


def _wheel(dest: Path, name: str, requires: list[str]) -> Path:
    dist = name.replace("-", "_")
    files = {f"{dist}/__init__.py": f"VALUE = {name!r}\n",
             f"{dist}-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: " + name + "\nVersion: 1.0\n"
             + "".join(f"Requires-Dist: {r}\n" for r in requires),
             f"{dist}-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                            "Tag: py3-none-any\n"}
    record = [f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(t.encode()).digest()).rstrip(b'=').decode()},"
              f"{len(t.encode())}" for n, t in files.items()]
    files[f"{dist}-1.0.dist-info/RECORD"] = "\n".join(record + [f"{dist}-1.0.dist-info/RECORD,,"]) + "\n"
    path = dest / f"{dist}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for n, t in files.items():
            zf.writestr(n, t)
    return path


@pytest.fixture
def world(tmp_path):
    """Upstream repos, served; a wheel index, served; a target venv; the env for inv."""
    www, index = tmp_path / "www", tmp_path / "index" / "simple"
    www.mkdir()
    servers = {"git": Server(www)}
    base = servers["git"].url
    depa = make_repo(tmp_path / "up" / "depa", copy_from=FIX / "depa")
    git(depa, "tag", "v1")
    depb = make_repo(tmp_path / "up" / "depb", copy_from=FIX / "depb")
    depb_commit = git(depb, "rev-parse", "HEAD")
    sub = make_repo(tmp_path / "up" / "sub", {"sub.h": "#define SUB_VALUE 33\n"})
    for repo, name in ((depa, "depa"), (depb, "depb"), (sub, "sub")):
        _publish(repo, www, name)
    depc = www / "depc-1.0.tar.gz"
    with tarfile.open(depc, "w:gz") as tar:
        data = b"#define DEPC_VALUE 44\n"
        info = tarfile.TarInfo("depc-1.0/depc.h")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    proj = make_repo(tmp_path / "up" / "proj", copy_from=FIX / "project")
    (proj / "cmake" / "urls.cmake").write_text(
        f'set(DEPA_URL {base}/depa.git)\nset(DEPA_TAG v1)\nset(DEPB_URL {base}/depb.git)\nset(DEPB_TAG {depb_commit})\n'
        f'set(DEPC_URL {base}/depc-1.0.tar.gz)\nset(DEPC_SHA256 {hashlib.sha256(depc.read_bytes()).hexdigest()})\n')
    git(proj, "-c", "protocol.file.allow=always", "submodule", "add", "-q", f"{base}/sub.git", "third_party/sub")
    commit(proj, "urls and the submodule")
    git(proj, "tag", "v1")
    _publish(proj, www, "proj")
    for name, requires in (("offdep-a", ["offdep-b>=1.0"]), ("offdep-b", [])):
        folder = index / name
        folder.mkdir(parents=True)
        whl = _wheel(folder, name, requires)
        (folder / "index.html").write_text(f'<a href="{whl.name}">{whl.name}</a>\n')
    servers["index"] = Server(index.parent)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "REBUILT_RECIPES_DIR": RECIPES, "PIP_CONFIG_FILE": os.devnull,
           "PIP_INDEX_URL": f"{servers['index'].url}/simple/", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           "INVOKE_REBUILT_STACK": "offline", "INVOKE_REBUILT_OFFLINE_PROJ_URL": f"{base}/proj.git"}
    for k in ("PIP_CONSTRAINT", "PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL"):
        env.pop(k, None)
    yield {"tmp": tmp_path, "proj": proj, "servers": servers, "python": str(venv / "bin" / "python"), "env": env,
           "www": www}
    for s in servers.values():
        s.stop()


def inv(*args, env, netns=False, timeout=300) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "invoke", *args]
    if netns:
        argv = ["unshare", "-n", *argv]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _member_offset(bundle: Path, prefix: str) -> tuple[str, int]:
    with tarfile.open(bundle) as tar:
        for info in tar:
            if info.name.startswith(prefix) and info.size > 64:
                return info.name, info.offset_data + info.size // 2
    raise AssertionError(f"no member {prefix}*")


def _closed_port_listener():
    """A listener that counts connections: offline steps must never reach it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.settimeout(0.2)
    hits = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                hits.append(1)
                conn.close()
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    return sock, hits, stop


def test_bundle_then_offline_build_corruption_and_increment(world):
    tmp, env, py = world["tmp"], world["env"], world["python"]
    wd1, out = tmp / "wd-online", tmp / "out" / "proj.bundle.tar"
    out.parent.mkdir()
    common = ["--recipe", "offline-proj", "--workdir", str(wd1), "--python", py]

    dry = inv("src.bundle", "--dry-run", *common, env=env)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "checkout  offline-proj" in dry.stdout and "ref found" in dry.stdout

    made = inv("src.bundle", *common, "-o", str(out), env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    manifest = json.loads(tarfile.open(out).extractfile("manifest.json").read())
    with tarfile.open(out) as tar:
        assert tar.getnames()[0] == "manifest.json"
    roles = sorted((r["role"], r["name"]) for r in manifest["repos"])
    assert roles == [("component", "offline-proj"), ("fetchcontent", "depa"), ("fetchcontent", "depb"),
                     ("submodule", "offline-proj/third_party/sub")]
    assert manifest["fetchcontent"]["depb"]["declared"] == "cmake/deps.cmake:4"  # the nested one
    assert manifest["fetchcontent"]["depc"]["kind"] == "archive" and manifest["fetchcontent"]["depc"]["member"] in \
        manifest["members"]
    assert sorted(w["file"] for w in manifest["wheels"]) == ["offdep_a-1.0-py3-none-any.whl",
                                                             "offdep_b-1.0-py3-none-any.whl"]
    assert all(len(m["sha256"]) == 64 and m["size"] > 0 for m in manifest["members"].values())

    for s in world["servers"].values():  # from here on, nothing answers
        s.stop()
    shutil.rmtree(world["www"])

    bad = tmp / "bad.tar"
    shutil.copy(out, bad)
    name, offset = _member_offset(bad, "git/")
    with open(bad, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))
    wd_bad = tmp / "wd-bad"
    r = inv("src.unbundle", str(bad), "--workdir", str(wd_bad), env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"member {name} is corrupted" in r.stderr
    assert not (wd_bad / "offline" / "index.json").exists()
    assert not list((wd_bad / "offline").glob("git/*")), "a corrupted bundle left repositories behind"

    wd2 = tmp / "wd-offline"
    r = inv("src.unbundle", str(out), "--workdir", str(wd2), env=env)
    assert r.returncode == 0, r.stdout + r.stderr

    sock, hits, stop = _closed_port_listener()
    port = sock.getsockname()[1]
    off_env = {**env, **{k: f"http://127.0.0.1:{port}" for k in ("http_proxy", "https_proxy", "HTTP_PROXY",
                                                                   "HTTPS_PROXY", "ALL_PROXY")},
               "PIP_INDEX_URL": f"http://127.0.0.1:{port}/simple/", "INVOKE_REBUILT_OFFLINE": "1"}
    build = ["build.offline-proj", "--workdir", str(wd2), "--python", py, "--no-checks", "--verbose"]
    netns = _netns()
    r = inv(*build, env=off_env, netns=netns)
    stop.set()
    sock.close()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "offline-proj: depa=11 depb=22 depc=44 sub=33" in r.stdout
    assert hits == [], "an offline step connected to the network"
    installed = subprocess.run([py, "-c", "import offdep_a, offdep_b; print(offdep_a.VALUE, offdep_b.VALUE)"],
                               capture_output=True, text=True)
    assert installed.stdout.split() == ["offdep-a", "offdep-b"]

    # a CMake dependency the unpacked bundle lacks: the configure step fails before it starts, naming it
    depb = next((wd2 / "offline" / "deps").glob("depb-*"))
    depb.rename(tmp / "depb-away")
    missing = inv(*build, "--force", env=off_env, netns=netns, timeout=120)
    assert missing.returncode == 1, missing.stdout + missing.stderr
    assert "offline-proj:configure needs the network, offline, for: the CMake dependency depb" in missing.stderr
    (tmp / "depb-away").rename(depb)
    # a checkout URL the bundle does not hold, for a recipe it does (bundled from a mirror): the bundled one
    other = inv(*build, "--force", "--set", "offline-proj.url=https://git.example.invalid/mirror/proj.git",
                env=off_env, netns=netns)
    assert other.returncode == 0, other.stdout + other.stderr
    # a component the bundle does not hold at all: its fetch fails at once, naming it
    absent = inv("build.deepep", "--workdir", str(wd2), "--python", py, "--no-checks", env=off_env, netns=netns)
    assert absent.returncode == 1, absent.stdout + absent.stderr
    assert "deepep:fetch needs the network, offline, for: the checkout https://github.com/deepseek-ai/DeepEP.git" \
        in absent.stderr

    # incremental: a new commit and tag upstream; the second bundle to the same FILE carries only that.
    # Only the project's server is back: the dependencies and wheels were carried, they are not asked again.
    world["www"].mkdir()
    proj = world["proj"]
    (proj / "NEWS").write_text("v2\n")
    commit(proj, "v2")
    git(proj, "tag", "v2")
    _publish(proj, world["www"], "proj")
    world["servers"]["git"] = Server(world["www"], int(world["servers"]["git"].url.rsplit(":", 1)[1]))
    again = inv("src.bundle", *common, "--set", "offline-proj.ref=v2", "-o", str(out), env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    m2 = json.loads(tarfile.open(out).extractfile("manifest.json").read())
    assert list(m2["members"]) == [next(r["bundle"] for r in m2["repos"] if r["role"] == "component")]
    assert m2["incremental_over"], "the second bundle does not say what it builds on"
    for s in world["servers"].values():
        s.stop()
    r = inv("src.unbundle", str(out), "--workdir", str(wd2), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    r = inv(*build, "--set", "offline-proj.ref=v2", env=off_env, netns=netns)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (wd2 / "src" / "offline-proj" / "NEWS").read_text() == "v2\n"


# --- no servers: the pieces --------------------------------------------------------------------------


def _index(wd: Path) -> None:
    from rebuilt.build.features import offline

    (wd / "offline").mkdir(parents=True)
    (wd / "offline" / "index.json").write_text(json.dumps({
        "repos": {"https://git.example/org/dep.git": {"mirror": "git/dep.git", "commits": ["a" * 40]}},
        "deps": {"repo-dep": {"dir": "deps/repo-dep-aaaaaaaaaaaa", "url": "https://git.example/org/dep.git",
                              "ref": "v1.0", "commit": "a" * 40, "sha256": None}},  # as src.unbundle writes it
        "components": {}, "bundles": []}))
    assert offline.read_index(wd)["deps"]


def test_offline_env_of_a_step(tmp_path):
    from rebuilt.build.features import offline

    _index(tmp_path)
    env = offline.env_for(tmp_path, {"CMAKE_ARGS": "-DSGL_KERNEL_COMPILE_THREADS=8"},
                          environ={"GIT_CONFIG_COUNT": "1"})
    wheels = str(tmp_path / "offline" / "wheels")
    assert (env["PIP_NO_INDEX"], env["PIP_FIND_LINKS"], env["UV_OFFLINE"], env["UV_FIND_LINKS"]) == \
        ("1", wheels, "1", wheels)
    assert env["CMAKE_ARGS"] == ("-DSGL_KERNEL_COMPILE_THREADS=8 -DFETCHCONTENT_FULLY_DISCONNECTED=ON "
                                 f"-DFETCHCONTENT_SOURCE_DIR_REPO-DEP={tmp_path}/offline/deps/repo-dep-aaaaaaaaaaaa")
    assert env["CMAKE_TOOLCHAIN_FILE"] == str(tmp_path / "offline" / "fetchcontent.cmake")
    keys = {env[k]: env[k.replace("KEY", "VALUE")] for k in env if k.startswith("GIT_CONFIG_KEY_")}
    assert "GIT_CONFIG_KEY_0" not in env and env["GIT_CONFIG_COUNT"] == "4"  # after the caller's entry 0
    assert keys["protocol.file.allow"] == "always" and env["GIT_ALLOW_PROTOCOL"] == "file"
    assert f"url.{tmp_path}/offline/git/dep.git.insteadOf" in keys
    assert env["https_proxy"] == env["HTTP_PROXY"] == "http://127.0.0.1:9"
    mine = offline.env_for(tmp_path, {}, environ={"CMAKE_TOOLCHAIN_FILE": "/opt/my.cmake"})
    assert "CMAKE_TOOLCHAIN_FILE" not in mine and "CMAKE_ARGS" not in mine


def test_nox_sessions_and_settings_take_offline():
    from rebuilt.cli import nox_sessions as nox_support
    from rebuilt.core import settings

    args = nox_support.parse_posargs(["--offline"])
    assert nox_support._settings("sglang-0.5.4", args)["offline"] is True
    assert settings.resolve({}, environ={"INVOKE_REBUILT_OFFLINE": "1"})["offline"] is True
    assert settings.resolve({}, environ={})["offline"] is False


@pytest.mark.parametrize("bad", ["../escape.txt", "/abs.txt", "link"])
def test_unbundle_refuses_escaping_members(tmp_path, bad):
    from rebuilt.errors import InputError
    from rebuilt.tools.bundle import archive

    path = tmp_path / "b.tar"
    manifest = {"format": archive.FORMAT, "version": archive.VERSION, "members": {bad: {"sha256": "0" * 64, "size": 1}},
                "repos": [], "wheels": [], "fetchcontent": {}}  # a whole manifest: only the member is wrong
    data = json.dumps(manifest).encode()
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo(archive.MANIFEST)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo(bad)
        if bad == "link":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        else:
            info.size = 1
        tar.addfile(info, io.BytesIO(b"x") if bad != "link" else None)
    with pytest.raises(InputError, match="refused") as exc:
        archive.extract(path, tmp_path / "out")
    assert bad.lstrip("/") in str(exc.value) or bad in str(exc.value)
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "out" / "link").exists()


# --- the sgl-kernel chain offline: make rebuild -> uv build -> scikit-build-core -> CMake FetchContent -----

WHEELS = Path(os.path.expanduser("~/.cache/rebuilt-tests/bundle-wheels"))


def _cached_wheels() -> Path:
    """uv and scikit-build-core (with their requirements) from the package index, downloaded once."""
    if not list(WHEELS.glob("scikit_build_core-*.whl")) or not list(WHEELS.glob("uv-*.whl")):
        WHEELS.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", str(WHEELS), "uv", "scikit-build-core"],
                       check=True, env={**os.environ, "PIP_CONFIG_FILE": os.devnull}, timeout=600)
    return WHEELS


@pytest.mark.slow
def test_sgl_kernel_shaped_build_offline_through_make_uv_and_scikit_build_core(tmp_path):
    from tests.envs import make_venv

    www = tmp_path / "www"
    www.mkdir()
    server = Server(www)
    depa = make_repo(tmp_path / "up" / "depa", copy_from=FIX / "depa")
    git(depa, "tag", "v1")
    _publish(depa, www, "depa")
    sglang = make_repo(tmp_path / "up" / "sglang", copy_from=ROOT / "tests" / "fixtures" / "sglang_like")
    cml = sglang / "sgl-kernel" / "CMakeLists.txt"
    cml.write_text(cml.read_text() + (
        "\n# as sgl-kernel: a dependency cloned at configure time\ninclude(FetchContent)\n"
        f"FetchContent_Declare(repo-depa GIT_REPOSITORY {server.url}/depa.git GIT_TAG v1 GIT_SHALLOW OFF)\n"
        "FetchContent_Populate(repo-depa)\nfile(READ ${repo-depa_SOURCE_DIR}/depa.h DEPA)\n"
        "file(WRITE ${CMAKE_BINARY_DIR}/depa_seen.txt \"${DEPA}\")\n"))
    commit(sglang, "FetchContent")
    git(sglang, "tag", "v0.5.4")
    _publish(sglang, www, "sglang")
    target = make_venv(tmp_path / "venv")
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(_cached_wheels()),
           "INVOKE_REBUILT_AUTO_BACKUP": "false", "INVOKE_REBUILT_SGLANG_URL": f"{server.url}/sglang.git"}
    env.pop("PIP_CONSTRAINT", None)
    out, wd1, wd2 = tmp_path / "sgl.bundle.tar", tmp_path / "wd1", tmp_path / "wd2"
    made = inv("src.bundle", "--recipe", "sgl-kernel", "--python", str(target), "--workdir", str(wd1), "-o", str(out),
               env=env)
    server.stop()
    assert made.returncode == 0, made.stdout + made.stderr
    manifest = json.loads(tarfile.open(out).extractfile("manifest.json").read())
    assert manifest["fetchcontent"]["repo-depa"]["declared"] == "CMakeLists.txt:24"
    assert {w["file"].split("-")[0] for w in manifest["wheels"]} >= {"uv", "scikit_build_core"}
    assert sorted(manifest["requirements"]) == ["scikit-build-core", "uv"]  # Makefile install-deps, install-uv
    shutil.rmtree(www)
    assert inv("src.unbundle", str(out), "--workdir", str(wd2), env=env).returncode == 0
    off = {**env, "INVOKE_REBUILT_OFFLINE": "1"}
    off.pop("PIP_FIND_LINKS")
    r = inv("build.sgl-kernel", "--python", str(target), "--workdir", str(wd2), "--jobs", "2", "--no-checks",
            env=off, netns=_netns(), timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-3000:]
    build = wd2 / "src" / "sglang" / "sgl-kernel" / "build"
    assert (build / "depa_seen.txt").read_text() == "#define DEPA_VALUE 11\n"
    cache = (build / "CMakeCache.txt").read_text()
    assert f"FETCHCONTENT_SOURCE_DIR_REPO-DEPA:UNINITIALIZED={wd2}/offline/deps/" in cache \
        or f"FETCHCONTENT_SOURCE_DIR_REPO-DEPA:STRING={wd2}/offline/deps/" in cache
    assert "FETCHCONTENT_FULLY_DISCONNECTED" in cache


def test_branch_and_pull_request_refs_offline(world):
    tmp, env, py = world["tmp"], world["env"], world["python"]
    bare = world["www"] / "proj.git"
    head = git(world["proj"], "rev-parse", "HEAD")
    subprocess.run(["git", "-C", str(bare), "update-ref", "refs/pull/7/head", head], check=True)
    subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True)
    wd2 = tmp / "wd-offline"
    for ref in ("main", "pr/7"):
        out = tmp / f"{ref.replace('/', '-')}.tar"
        made = inv("src.bundle", "--recipe", "offline-proj", "--workdir", str(tmp / "wd1"), "--python", py,
                   "--set", f"offline-proj.ref={ref}", "-o", str(out), env=env)
        assert made.returncode == 0, made.stdout + made.stderr
        assert inv("src.unbundle", str(out), "--workdir", str(wd2), env=env).returncode == 0
    for s in world["servers"].values():
        s.stop()
    for ref in ("main", "pr/7"):
        shutil.rmtree(wd2 / "src", ignore_errors=True)
        r = inv("src.fetch", "--recipe", "offline-proj", "--workdir", str(wd2), "--set", f"offline-proj.ref={ref}",
                "--set", "offline=true", env=env, netns=_netns())
        assert r.returncode == 0, r.stdout + r.stderr
        assert git(wd2 / "src" / "offline-proj", "rev-parse", "HEAD") == head


# --- bad bundles and bad output paths: one message, exit 2, nothing fetched or unpacked -------------------------

def _inv(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "REBUILT_RECIPES_DIR": f"{ROOT / 'tests' / 'fixtures' / 'recipes'}{os.pathsep}{ROOT / 'recipes'}"}
    return subprocess.run([sys.executable, "-m", "invoke", *args, "--workdir", str(tmp_path / "wd")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def _bundle_file(path: Path, members: list[tuple[str, bytes]], declared: dict | None = None) -> Path:
    """A bundle whose manifest lists ``declared`` (default: every member as written) and holds ``members``."""
    from rebuilt.tools.bundle import archive

    listed = declared if declared is not None else {
        n: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for n, d in members}
    data = json.dumps({"format": archive.FORMAT, "version": archive.VERSION, "members": listed, "repos": [],
                       "wheels": [], "fetchcontent": {}}).encode()
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, body in [(archive.MANIFEST, data), *members]:
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return path


@pytest.mark.parametrize("second", [b"same bytes", b"other bytes"])
def test_a_member_twice_is_refused_whatever_its_content(tmp_path, second):
    path = _bundle_file(tmp_path / "b.tar", [("wheels/a.whl", b"same bytes"), ("wheels/a.whl", second)],
                        declared={"wheels/a.whl": {"sha256": hashlib.sha256(b"same bytes").hexdigest(), "size": 10}})
    r = _inv(tmp_path, "src.unbundle", str(path))
    assert r.returncode == 2 and "wheels/a.whl" in r.stderr and "twice" in r.stderr, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "wd" / "offline" / "wheels" / "a.whl").exists()


def test_a_truncated_bundle_and_a_huge_member_header_are_one_message(tmp_path):
    body = os.urandom(64 << 10)
    whole = _bundle_file(tmp_path / "whole.tar", [("wheels/a.whl", body)])
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole.read_bytes()[: len(whole.read_bytes()) // 2])
    huge = tmp_path / "huge.tar"  # the member's header says 1 TiB; the manifest says what was written
    data = bytearray(whole.read_bytes())
    start = data.index(b"wheels/a.whl", 1024)  # the member's ustar header (after the manifest and a PAX header)
    header = start - start % 512
    data[header + 124:header + 136] = b"\x80" + (1 << 40).to_bytes(11, "big")  # GNU base-256: past 8 GiB
    data[header + 148:header + 156] = b"        "
    data[header + 148:header + 156] = b"%06o\0 " % sum(data[header:header + 512])
    huge.write_bytes(bytes(data))
    for path, said in ((cut, "truncated or damaged"), (huge, f"declares {1 << 40} bytes")):
        r = _inv(tmp_path, "src.unbundle", str(path))
        assert r.returncode == 2 and said in r.stderr, (path.name, r.stdout + r.stderr)
        assert "Traceback" not in r.stderr and "ReadError" not in r.stderr, r.stderr
        assert str(path) in r.stderr and r.stderr.count("rebuilt:") == 1, r.stderr
        assert not (tmp_path / "wd" / "offline" / "wheels" / "a.whl").exists()


def test_an_output_in_a_missing_folder_is_refused_before_anything_is_fetched(tmp_path):
    upstream = make_repo(tmp_path / "upstream", {"tool.py": "print(1)\n"})
    git(upstream, "tag", "v1.0")
    out = tmp_path / "no" / "such" / "b.tar"
    r = _inv(tmp_path, "src.bundle", "--recipe", "patched-tool", "-o", str(out), "--python", sys.executable,
             "--set", f"patched-tool.url={upstream}")
    assert r.returncode == 2 and f"{out.parent} does not exist" in r.stderr, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "wd" / "src").exists()  # nothing was fetched
