"""Real upstream sources for the upstream tier: sdists from the package index, laid out like their checkouts.

Each sdist is downloaded once into ``~/.cache/rebuilt-tests/sdists/`` (sha256 checked), unpacked,
arranged like the project's GitHub tree at that tag, and committed into a git repository with the
upstream tag, so that a recipe can fetch it with ``--set <recipe>.url=file://...`` exactly as it
fetches GitHub. What the layout changes, per project:

* every sdist: ``PKG-INFO``, ``*.egg-info`` and the ``setup.cfg`` that only holds sdist's
  ``[egg_info]`` tag are removed (the GitHub trees have none of them);
* vllm: ``vllm/_version.py``, which setuptools-scm wrote into the sdist, is removed;
* sglang: the sdist holds only the monorepo's ``python/`` folder: it goes under ``python/``;
* flashinfer-python: ``version.txt`` (in the GitHub tree, read by its build backend) is written
  back, and the generated ``flashinfer/_build_meta.py`` removed.

The file is fetched by URL from the index's simple page, not with ``pip download``: pip would build
the metadata first, which vLLM's setup.py cannot do without ``VLLM_TARGET_DEVICE`` and flashinfer's
cannot without a build requirement the index lacks.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import html.parser
import os
import shutil
import subprocess
import tarfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import requests

CACHE = Path(os.environ.get("REBUILT_TESTS_CACHE", Path.home() / ".cache" / "rebuilt-tests"))
LAYOUT = 2  # bump when _lay_out changes: cached repositories are rebuilt
GIT_ENV = {"GIT_AUTHOR_NAME": "rebuilt tests", "GIT_AUTHOR_EMAIL": "tests@rebuilt.invalid",
           "GIT_COMMITTER_NAME": "rebuilt tests", "GIT_COMMITTER_EMAIL": "tests@rebuilt.invalid"}


@contextlib.contextmanager
def cache_lock(name: str):
    """Hold ``CACHE/locks/<name>.lock``: one test process (a pytest-xdist worker) fills a cache entry while
    the others wait for it, instead of two writing the same files."""
    folder = CACHE / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@dataclass(frozen=True)
class Sdist:
    project: str  # name on the package index
    version: str
    filename: str
    sha256: str
    tag: str  # the upstream tag of that release
    subdir: str = ""  # where the sdist's tree sits in the GitHub checkout

    @property
    def key(self) -> str:
        return f"{self.project}-{self.version}"


SDISTS = {
    "vllm": Sdist("vllm", "0.6.4.post1", "vllm-0.6.4.post1.tar.gz",
                  "3cf6fdb46f50fa66cbeec87738e4b91bf2cb086979b4fc74a782cd30f75d1af1", "v0.6.4.post1"),
    "sglang": Sdist("sglang", "0.5.4", "sglang-0.5.4.tar.gz",
                    "897a88edad78ddd8109e2f4e152d6481518c1eaddaf1cdcfac60545208bbe465", "v0.5.4", subdir="python"),
    "flashinfer": Sdist("flashinfer-python", "0.4.1", "flashinfer_python-0.4.1.tar.gz",
                        "fd120f05139d2c75b09c039009eec58ad1278c95bcf16466b90d480042b13a39", "v0.4.1"),
    "flashinfer-0.3.1": Sdist("flashinfer-python", "0.3.1", "flashinfer_python-0.3.1.tar.gz",
                              "992017d193dfbbc62e67401a6d5416629bf90b640872d14b7863de45e9371446", "v0.3.1"),
}


def index_url() -> str:
    """The index pip uses here (PIP_INDEX_URL, pip's configuration, else the public one)."""
    url = os.environ.get("PIP_INDEX_URL")
    if not url:
        proc = subprocess.run(["python3", "-m", "pip", "config", "get", "global.index-url"], capture_output=True,
                              text=True)
        url = proc.stdout.strip() if proc.returncode == 0 else ""
    return (url or "https://pypi.org/simple").rstrip("/") + "/"


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.links += [v for k, v in attrs if k == "href" and v]


def _file_url(sd: Sdist) -> str:
    page_url = urllib.parse.urljoin(index_url(), f"{sd.project}/")
    page = requests.get(page_url, timeout=120)
    page.raise_for_status()
    parser = _Links()
    parser.feed(page.text)
    for link in parser.links:
        url = urllib.parse.urljoin(page_url, link)
        if urllib.parse.urlparse(url).path.rsplit("/", 1)[-1] == sd.filename:
            return url.split("#", 1)[0]
    raise FileNotFoundError(f"{sd.filename} is not on {page_url}")


def download(sd: Sdist) -> Path:
    """The sdist file, from the cache or the index (sha256 checked, written atomically, one process at a time)."""
    path = CACHE / "sdists" / sd.filename
    with cache_lock(f"sdist-{sd.key}"):
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == sd.sha256:
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        data = requests.get(_file_url(sd), timeout=900).content
        got = hashlib.sha256(data).hexdigest()
        if got != sd.sha256:
            raise ValueError(f"{sd.filename}: sha256 {got}, expected {sd.sha256}")
        tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout.strip()


def _lay_out(sd: Sdist, tree: Path) -> None:
    for name in ("PKG-INFO",):
        (tree / name).unlink(missing_ok=True)
    for info in tree.glob("*.egg-info"):
        shutil.rmtree(info)
    cfg = tree / "setup.cfg"
    if cfg.is_file() and cfg.read_text().split() == ["[egg_info]", "tag_build", "=", "tag_date", "=", "0"]:
        cfg.unlink()
    if sd.project == "vllm":  # written by setuptools-scm when the sdist was made; ignored by vLLM's .gitignore
        (tree / "vllm" / "_version.py").unlink(missing_ok=True)
    if sd.project == "flashinfer-python":
        (tree / "version.txt").write_text(sd.version + "\n")
        (tree / "flashinfer" / "_build_meta.py").unlink(missing_ok=True)


def checkout(name: str) -> str:
    """A ``file://`` URL of a git repository holding ``name``'s release laid out like GitHub, tagged."""
    sd = SDISTS[name]
    repo = CACHE / "repos" / f"{sd.key}-layout{LAYOUT}"
    with cache_lock(f"repo-{sd.key}"):
        if not ((repo / ".git").is_dir() and _git(repo, "tag", "--list", sd.tag) == sd.tag):
            _make_repo(sd, repo)
    return repo.as_uri()


def _make_repo(sd: Sdist, repo: Path) -> None:
    archive = download(sd)
    work = CACHE / "repos" / f".{sd.key}.{os.getpid()}.tmp"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with tarfile.open(archive) as tf:  # files owned by whoever runs the tests (git refuses others' trees)
        if hasattr(tarfile, "data_filter"):
            tf.extractall(work / "unpacked", filter="data")
        else:
            for member in tf.getmembers():
                member.uid = member.gid = os.getuid()
            tf.extractall(work / "unpacked")
    [top] = list((work / "unpacked").iterdir())
    _lay_out(sd, top)
    tree = work / "tree"
    target = tree / sd.subdir if sd.subdir else tree
    target.parent.mkdir(parents=True, exist_ok=True)
    top.rename(target)
    _git(tree, "init", "-q", "-b", "main")
    _git(tree, "add", "-A", "-f")
    _git(tree, "commit", "-q", "-m", f"{sd.project} {sd.version} from {sd.filename} (laid out like its checkout)")
    _git(tree, "tag", sd.tag)
    shutil.rmtree(repo, ignore_errors=True)
    tree.rename(repo)
    shutil.rmtree(work, ignore_errors=True)


def pip_has(python: str, requirement: str, env: dict | None = None) -> bool:
    """Whether pip can find ``requirement`` on the index here (a dry run of just that, no dependencies)."""
    proc = subprocess.run([python, "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed", "-q",
                           requirement], capture_output=True, text=True, env=env)
    return proc.returncode == 0
