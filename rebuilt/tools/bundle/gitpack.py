"""Git repositories into bundle files: a checkout, its submodules (recursively), CMake dependencies.

A repository is bundled with the history of its pinned refs (``git bundle``), so the pinned tag,
branch or commit and anything older can be checked out from it. Dependencies that are not checked
out yet are fetched (the pinned ref only, full history up to it: git cannot bundle a shallow
clone) into bare caches under ``<workdir>/cache/bundle-git``. An incremental bundle leaves out
the commits a previous bundle already carried (``^<commit>`` prerequisites).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from rebuilt.build import sources
from rebuilt.build.features import offline
from rebuilt.core.secret import redact
from rebuilt.errors import SourceError

PIN = "refs/rebuilt/pins/"
LONG = 3600  # seconds: fetching or bundling a large history


@dataclass
class Repo:
    url: str
    commit: str
    role: str                  # component | submodule | fetchcontent
    name: str                  # recipe, submodule path, or FetchContent name
    ref: str = ""
    git_dir: str = ""          # where its objects are here
    submodules: list[dict] = field(default_factory=list)  # {path, url, commit}


def has_commit(repo: Path | str, commit: str) -> bool:
    return sources.git(repo, "cat-file", "-e", f"{commit}^{{commit}}")[0] == 0


def gitlinks(repo: Path | str, commit: str, url: str) -> list[dict]:
    """Submodules recorded in ``commit``: path, commit and URL (from its .gitmodules; relative URLs resolved)."""
    out = sources.git(repo, "ls-tree", "-r", commit, timeout=LONG, check=True)[1]
    links = [(ln.split("\t", 1)[1], ln.split()[2]) for ln in out.splitlines() if ln.startswith("160000 ")]
    if not links:
        return []
    rc, conf = sources.git(repo, "config", "--blob", f"{commit}:.gitmodules", "--get-regexp",
                           r"^submodule\..*\.(path|url)$", timeout=LONG)
    conf = conf if rc == 0 else ""  # no .gitmodules, or no entries in it
    paths, urls = {}, {}
    for line in conf.splitlines():
        key, _, value = line.partition(" ")
        name, kind = key[len("submodule."):].rsplit(".", 1)
        (paths if kind == "path" else urls)[name] = value
    by_path = {p: urls.get(n, "") for n, p in paths.items()}
    result = []
    for path, sha in links:
        sub_url = by_path.get(path, "")
        if sub_url.startswith(("./", "../")):
            sub_url = _relative(url, sub_url)
        result.append({"path": path, "commit": sha, "url": sub_url})
    return result


def _relative(base: str, rel: str) -> str:
    base = base.rstrip("/")
    for part in rel.split("/"):
        if part == "..":
            base = base.rsplit("/", 1)[0]
        elif part not in (".", ""):
            base = f"{base}/{part}"
    return base


def cache_repo(cache: Path, url: str, ref: str) -> tuple[Path, str]:
    """A bare repository under ``cache`` holding ``ref`` of ``url`` (fetched when absent); its commit."""
    bare = cache / f"{offline.slug(url)}.git"
    if not bare.is_dir():
        bare.parent.mkdir(parents=True, exist_ok=True)
        sources.git(bare.parent, "init", "-q", "--bare", str(bare), timeout=LONG, check=True)
    if re.fullmatch(r"[0-9a-f]{40}", ref) and has_commit(bare, ref):
        sources.git(bare, "update-ref", PIN + ref, ref, timeout=LONG, check=True)
        return bare, ref
    if ref and has_commit(bare, f"refs/tags/{ref}"):  # a tag fetched before: pinned, not asked again
        return bare, sources.git(bare, "rev-parse", f"refs/tags/{ref}^{{commit}}", timeout=LONG, check=True)[1]
    attempts = [f"+refs/tags/{ref}:refs/tags/{ref}", f"+refs/heads/{ref}:{PIN}{ref}", f"+{ref}:{PIN}{ref}"] \
        if ref else ["+HEAD:" + PIN + "HEAD"]
    for spec in attempts:
        rc, said = sources.git(bare, "fetch", "-q", "--no-tags", url, spec, timeout=LONG)
        if rc == 0:
            break
    else:
        raise SourceError(f"cannot fetch {ref or 'HEAD'} of {redact(url)}: {said[-300:]}")
    commit = sources.git(bare, "rev-parse", f"{spec.split(':')[1]}^{{commit}}", timeout=LONG, check=True)[1]
    sources.git(bare, "update-ref", PIN + commit, commit, timeout=LONG, check=True)
    return bare, commit


def submodule_source(checkout: Path | None, path: str, commit: str) -> Path | None:
    """The checked-out submodule at ``path`` when it holds ``commit`` (no download needed)."""
    if checkout is None:
        return None
    sub = checkout / path
    if (sub / ".git").exists() and has_commit(sub, commit):
        return sub
    return None


def collect(repo: Repo, checkout: Path | None, cache: Path, out: list[Repo], seen: set) -> None:
    """``repo`` and, recursively, every submodule of its commit, each with where its objects are."""
    key = (repo.url, repo.commit)
    if key in seen:
        return
    seen.add(key)
    repo.submodules = gitlinks(repo.git_dir, repo.commit, repo.url)
    out.append(repo)
    for sub in repo.submodules:
        if not sub["url"]:
            raise SourceError(f"{repo.name}: submodule {sub['path']} has no URL in .gitmodules at {repo.commit[:12]}")
        local = submodule_source(checkout, sub["path"], sub["commit"])
        if local is None:
            bare, _ = cache_repo(cache, sub["url"], sub["commit"])
            local = bare
        else:
            sources.git(local, "update-ref", PIN + sub["commit"], sub["commit"], timeout=LONG, check=True)
        child = Repo(sub["url"], sub["commit"], "submodule", f"{repo.name}/{sub['path']}", git_dir=str(local))
        collect(child, local if (local / ".git").exists() else None, cache, out, seen)


def write_group(group: list[Repo], cache: Path, dest: Path, known: list[str]) -> list[str] | None:
    """One bundle for every pinned commit of one repository URL (cutlass is pinned by several
    dependencies: its history is carried once), leaving out the commits in ``known``.
    None when there is nothing new; else the known commits it needs as prerequisites."""
    commits = list(dict.fromkeys(r.commit for r in group))
    if all(c in known for c in commits):
        return None
    src = Path(group[0].git_dir)
    if not all(has_commit(src, c) for c in commits):  # the objects are spread over several repositories
        src = cache / f"{offline.slug(group[0].url)}.git"
        if not src.is_dir():
            sources.git(cache, "init", "-q", "--bare", str(src), timeout=LONG, check=True)
        for r in group:
            if not has_commit(src, r.commit):
                sources.git(r.git_dir, "update-ref", PIN + r.commit, r.commit, timeout=LONG, check=True)
                sources.git(src, "fetch", "-q", "--no-tags", str(r.git_dir), f"+{PIN}{r.commit}:{PIN}{r.commit}",
                            timeout=LONG, check=True)
    refs = []
    for c in commits:
        sources.git(src, "update-ref", PIN + c, c, timeout=LONG, check=True)
        refs.append(PIN + c)
    for r in group:
        if r.ref and r.role == "component":
            for candidate in (f"refs/tags/{r.ref}", f"refs/rebuilt/{r.ref}"):
                if sources.git(src, "rev-parse", "-q", "--verify", candidate)[0] == 0:
                    refs.append(candidate)
    prereq = [c for c in known if has_commit(src, c)]
    dest.parent.mkdir(parents=True, exist_ok=True)
    sources.git(src, "bundle", "create", "-q", str(dest), *refs, *(f"^{c}" for c in prereq), timeout=LONG,
                check=True)
    return prereq
