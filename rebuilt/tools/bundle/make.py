"""``inv src.bundle``: everything a plan fetches, in one verifiable file for hosts without network.

For every component of the plan: its checkout at the pinned ref (fetched the usual way first) and
its submodules, recursively, as git bundles; every CMake FetchContent dependency its tree declares
(``rebuilt.build.fetchcontent``), at the declared tag or commit, with its own submodules and the
dependencies of dependencies CMake adds as subprojects; a wheelhouse of the requirements the plan
installs. ``FILE.index.json`` beside the bundle remembers what was carried: the next bundle to the
same FILE holds only repositories and wheels that changed (a git bundle with the known commits as
prerequisites), unless ``full``.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
import time
from pathlib import Path

from rebuilt.build import builder, fetchcontent, sources
from rebuilt.build.features import offline
from rebuilt.core import runner
from rebuilt.core.fs import read_json, sha256_file, write_json
from rebuilt.core.secret import redact
from rebuilt.errors import ConfigError, InputError
from rebuilt.tools.bundle import archive, downloads, gitpack, shapes, wheelhouse


def index_of(out: Path) -> Path:
    return out.with_name(out.name + ".index.json")


def components(plan) -> list[dict]:
    """One entry per checkout of the plan: owner recipe, url, ref, dest, and the CMake roots built from it."""
    seen: dict[str, dict] = {}
    for rp in plan.recipes:
        fetch = next((s for s in rp.steps if s.action == "fetch"), None)
        if not fetch:
            continue
        a = fetch.args
        entry = seen.setdefault(a["dest"], {"recipe": rp.recipe.source.from_ or rp.recipe.name, "url": a["url"],
                                            "ref": a["ref"], "dest": a["dest"], "cmake_roots": [], "recipes": []})
        entry["recipes"].append(rp.recipe.name)
        build_dir = rp.context["build_dir"]
        if build_dir not in entry["cmake_roots"]:
            entry["cmake_roots"].append(build_dir)
    return list(seen.values())


def _scan_tree(root: Path, where: str, problems: list[str]) -> fetchcontent.Scan:
    s = fetchcontent.scan(root)
    problems += [f"{where}: {p}" for p in s.problems if "no CMakeLists.txt" not in p.why]
    return s


def _export(bare: Path, commit: str, into: Path) -> None:
    """The tree of ``commit`` written to the new folder ``into`` (to read a dependency's own CMake files);
    ``git archive`` runs through the runner like every other git command, its tar beside ``into``."""
    tar_path = into.with_name(into.name + ".tar")
    sources.git(bare, "archive", "--format=tar", "-o", str(tar_path), commit, timeout=gitpack.LONG, check=True)
    into.mkdir(parents=True)
    with tarfile.open(tar_path) as tar:
        tar.extractall(into, filter="data")


def fetchcontent_repos(root: Path, who: str, cache: Path, problems: list[str], deps: dict, repos: list, seen: set,
                       say) -> None:
    """Every FetchContent dependency reachable from ``root`` (and from subprojects it adds), collected."""
    s = _scan_tree(root, who, problems)
    for name, dep in s.deps.items():
        if name in deps:
            if (deps[name]["url"], deps[name]["ref"]) != (dep.git_repository or dep.url, dep.git_tag or dep.url_hash):
                problems.append(f"{who}: {name} is declared at {dep.git_tag or dep.url} here and at "
                                f"{deps[name]['ref']} by {deps[name]['for']}: FETCHCONTENT_SOURCE_DIR_{name.upper()} "
                                "can name one tree; the first is bundled")
            continue
        if not dep.git_repository:
            say(f"  {name}: {redact(dep.url)} (an archive)" + (" (conditional)" if dep.conditional else ""))
            if not dep.url_hash:
                problems.append(f"{who}: {name} ({dep.where}) has no URL_HASH: the archive is bundled as "
                                "downloaded now")
            path = downloads.fetch(dep.url, dep.url_hash, cache.parent / "bundle-downloads")
            deps[name] = {"kind": "archive", "url": dep.url, "ref": dep.url_hash, "sha256": sha256_file(path),
                          "file": str(path), "suffix": downloads.suffix(dep.url) or ".bin", "for": who,
                          "declared": dep.where, "conditional": dep.conditional}
            if name in s.subprojects:
                with tempfile.TemporaryDirectory(prefix="rebuilt-fc-") as tmp:
                    downloads.unpack(path, Path(tmp) / "src")
                    fetchcontent_repos(Path(tmp) / "src", f"{who} > {name}", cache, problems, deps, repos, seen, say)
            continue
        say(f"  {name}: {redact(dep.git_repository)} {dep.git_tag}" + (" (conditional)" if dep.conditional else ""))
        bare, commit = gitpack.cache_repo(cache, dep.git_repository, dep.git_tag)
        deps[name] = {"url": dep.git_repository, "ref": dep.git_tag, "commit": commit, "for": who,
                      "declared": dep.where, "conditional": dep.conditional}
        repo = gitpack.Repo(dep.git_repository, commit, "fetchcontent", name, ref=dep.git_tag, git_dir=str(bare))
        gitpack.collect(repo, None, cache, repos, seen)
        if name in s.subprojects:
            with tempfile.TemporaryDirectory(prefix="rebuilt-fc-") as tmp:
                _export(bare, commit, Path(tmp) / "src")
                fetchcontent_repos(Path(tmp) / "src", f"{who} > {name}", cache, problems, deps, repos, seen, say)


def writable(out: Path) -> None:
    """``out`` can become the bundle file: its folder exists and takes new files, and it is no folder itself."""
    hint = "give -o a file in an existing folder you can write to"
    if out.is_dir():
        raise InputError(f"-o {out}: is a folder, not a file name", hint=hint)
    if not out.parent.is_dir():
        raise InputError(f"-o {out}: the folder {out.parent} does not exist", hint=f"mkdir -p {out.parent}, or {hint}")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise InputError(f"-o {out}: cannot write in {out.parent}", hint=hint)


def bundle(settings, names: list[str], out: Path, *, full: bool = False, console=None) -> dict:
    """Fetch what the plan needs and write the bundle file ``out`` (plus ``out.index.json``)."""
    console = console or runner.Console()
    say = console.say
    if offline.enabled(settings):
        raise ConfigError("src.bundle runs on a connected host: offline is on", hint="drop --offline / offline=true")
    out = Path(out).absolute()
    writable(out)  # before anything is fetched: a real stack fetches for an hour
    builder.build(settings, names, builder.Options(checks=False, source_only=True), console)
    plan, _ = builder.make_plan(settings, names)
    workdir = settings.workdir()
    cache = workdir / "cache" / "bundle-git"
    previous = {} if full else _read_index(index_of(out))
    repos: list[gitpack.Repo] = []
    deps: dict[str, dict] = {}
    problems: list[str] = []
    seen: set = set()
    comps = components(plan)
    for c in comps:
        dest = Path(c["dest"])
        commit = sources.git(dest, "rev-parse", "HEAD", check=True)[1]
        say(f"{c['recipe']}: {redact(c['url'])} {c['ref']} ({commit[:12]})")
        gitpack.collect(gitpack.Repo(c["url"], commit, "component", c["recipe"], ref=c["ref"], git_dir=str(dest)),
                        dest, cache, repos, seen)
        c["commit"] = commit
        for root in c["cmake_roots"]:
            if (Path(root) / "CMakeLists.txt").is_file():
                fetchcontent_repos(Path(root), c["recipe"], cache, problems, deps, repos, seen, say)
    reqs = wheelhouse.plan_requirements(plan, list(settings["protected"]))
    problems += wheelhouse.unknown(plan)
    for p in problems:
        say(f"  ! {p}")
    with tempfile.TemporaryDirectory(prefix=".bundle-", dir=out.parent) as tmp:
        tmp = Path(tmp)
        members: dict[str, Path] = {}
        entries = []
        known = previous.get("repos", {})
        groups: dict[str, list[gitpack.Repo]] = {}
        for r in repos:
            groups.setdefault(offline.slug(r.url), []).append(r)
        for key, group in groups.items():
            urls = list(dict.fromkeys(offline.bare_url(r.url) for r in group))
            done = [c for u in urls for c in known.get(u, [])]
            name = f"git/{key}-{hashlib.sha256(' '.join(r.commit for r in group).encode()).hexdigest()[:12]}.bundle"
            prereq = gitpack.write_group(group, cache, tmp / name, done)
            if prereq is not None:
                members[name] = tmp / name
            for r in group:
                entries.append({"url": offline.bare_url(r.url), "commit": r.commit, "role": r.role, "name": r.name,
                                "ref": r.ref,
                                "submodules": r.submodules, "bundle": name if prereq is not None else None,
                                "prerequisites": prereq or []})
        carried = previous.get("downloads", {})
        for name, d in deps.items():
            if d.get("kind") == "archive":
                d["member"] = f"downloads/{name}-{d['sha256'][:12]}{d['suffix']}"
                if carried.get(d["url"]) != d["sha256"]:
                    members[d["member"]] = Path(d.pop("file"))
                else:
                    d.pop("file")
        log_path = workdir / "logs" / f"bundle-{time.strftime('%Y%m%d-%H%M%S')}-pip-download.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "w", encoding="utf-8") as log:  # what pip said, kept for a failed download
            files = wheelhouse.download(settings.python(), sorted(reqs), workdir / "cache" / "bundle-wheels",
                                        settings["python_version"],
                                        log, workdir / "state" / "constraints.txt", list(settings["protected"]))
        old_wheels = previous.get("wheels", {})
        wheels = []
        for f in files:
            digest = sha256_file(f)
            carried = old_wheels.get(f.name) == digest
            if not carried:
                members[f"wheels/{f.name}"] = f
            wheels.append({"file": f.name, "sha256": digest, "size": f.stat().st_size, "carried_before": carried})
        manifest = {
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "stack": settings.stack.name,
            "recipes": [rp.recipe.name for rp in plan.recipes], "python_version": settings["python_version"],
            "components": [{**{k: c.get(k) for k in ("recipe", "ref", "commit", "recipes")},
                            "url": offline.bare_url(c["url"]),
                            "dest_name": Path(c["dest"]).name} for c in comps],
            "repos": entries, "fetchcontent": deps, "wheels": wheels, "requirements": reqs, "problems": problems,
            "incremental_over": previous.get("bundles", []),
        }
        manifest = archive.write(out, manifest, members)
    _write_index(index_of(out), previous, manifest, sha256_file(out))
    size = out.stat().st_size
    say(f"bundle {out}: {len(members)} member(s), {_mib(size)}"
        + (f" (incremental: {len(repos) + len(wheels) - len(members)} item(s) already carried by an earlier bundle)"
           if previous else ""))
    return manifest


def _read_index(path: Path) -> dict:
    """What earlier bundles of this name carried (checked against ``shapes.INDEX``); {} before the first."""
    return read_json(path, shapes.INDEX, missing={}, what="bundle index",
                     hint="it lists what earlier bundles carried: remove it (or pass --full) for a full bundle")


def _write_index(path: Path, previous: dict, manifest: dict, digest: str) -> None:
    repos = {u: list(v) for u, v in previous.get("repos", {}).items()}
    for r in manifest["repos"]:
        if r["commit"] not in repos.setdefault(r["url"], []):
            repos[r["url"]].append(r["commit"])
    wheels = dict(previous.get("wheels", {}))
    wheels.update({w["file"]: w["sha256"] for w in manifest["wheels"]})
    fetched = dict(previous.get("downloads", {}))
    fetched.update({d["url"]: d["sha256"] for d in manifest["fetchcontent"].values() if d.get("kind") == "archive"})
    write_json(path, {"repos": repos, "wheels": wheels, "downloads": fetched,
                      "bundles": previous.get("bundles", []) + [digest]})


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"

