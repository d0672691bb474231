"""``inv src.unbundle FILE``: verify a bundle and make ``<workdir>/offline`` from it.

Every member is checked against the manifest while it is written into a temporary folder beside
the target (a corrupted, unlisted, linked or escaping member stops everything: exit 2 naming it).
Then git bundles are fetched into bare mirrors (``offline/git/<repo>.git``; an incremental bundle
needs the commits an earlier one brought), FetchContent dependencies are checked out with their
submodules into ``offline/deps/<name>-<commit>`` (a temporary folder renamed into place), wheels go
to ``offline/wheels``, and ``offline/index.json`` plus the CMake toolchain file are written last,
atomically: until then offline builds see the previous state.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from rebuilt.build import sources
from rebuilt.build.features import offline
from rebuilt.core.fs import mark_cachedir, write_json, write_text
from rebuilt.errors import InputError
from rebuilt.tools.bundle import archive, downloads, gitpack


def _has(mirror: Path, commit: str) -> bool:
    return mirror.is_dir() and gitpack.has_commit(mirror, commit)


def _serve_ref(mirror: Path, ref: str) -> None:
    """A branch or pull request the checkout pinned (kept as ``refs/rebuilt/<ref>``) where ``src.fetch``
    asks for it: ``refs/heads/<branch>``, ``refs/pull/<N>/head``."""
    rc, commit = sources.git(mirror, "rev-parse", "-q", "--verify", f"refs/rebuilt/{ref}^{{commit}}")
    if rc != 0:
        return
    pr = re.fullmatch(r"pr/(\d+)", ref)
    name = f"refs/pull/{pr.group(1)}/head" if pr else f"refs/heads/{ref}"
    sources.git(mirror, "update-ref", name, commit, check=True)


def unbundle(workdir: Path, path: Path | str, say=print) -> dict:
    """Verify ``path`` and add what it holds to ``<workdir>/offline``; the updated index."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such bundle file")
    root = offline.root(workdir)
    mark_cachedir(root)
    index = offline.read_index(workdir)
    with tempfile.TemporaryDirectory(prefix=".unbundle-", dir=root) as tmp:
        tmp = Path(tmp)
        manifest = archive.extract(path, tmp / "members")
        say(f"verified {len(manifest['members'])} member(s) of {path} (sha256)")
        repos = index.setdefault("repos", {})
        fetched: set = set()
        for r in manifest["repos"]:
            entry = repos.setdefault(r["url"], {"mirror": f"git/{offline.slug(r['url'])}.git", "commits": []})
            mirror = root / entry["mirror"]
            if r["bundle"] and (mirror, r["bundle"]) in fetched:
                pass  # one bundle holds every pinned commit of a repository
            elif r["bundle"]:
                fetched.add((mirror, r["bundle"]))
                if not mirror.is_dir():
                    mirror.parent.mkdir(parents=True, exist_ok=True)
                    sources.git(mirror.parent, "init", "-q", "--bare", str(mirror), check=True)
                missing = [c for c in r.get("prerequisites", []) if not _has(mirror, c)]
                if missing:
                    raise InputError(f"{path}: {r['name']} is incremental over commit {missing[0][:12]}, which no "
                                     "earlier bundle unpacked here brought", hint="unbundle the earlier bundle first")
                sources.git(mirror, "fetch", "-q", str(tmp / "members" / r["bundle"]), "+refs/*:refs/*",
                            timeout=gitpack.LONG, check=True)
            elif not _has(mirror, r["commit"]):
                raise InputError(f"{path}: {r['name']} ({r['url']} {r['commit'][:12]}) was carried by an earlier "
                                 "bundle that is not unpacked here", hint="unbundle the earlier bundle first")
            if r["role"] == "component" and r.get("ref"):
                _serve_ref(mirror, r["ref"])
            if r["commit"] not in entry["commits"]:
                entry["commits"].append(r["commit"])
        wheels = root / "wheels"
        wheels.mkdir(exist_ok=True)
        for w in manifest["wheels"]:
            src = tmp / "members" / "wheels" / w["file"]
            if src.is_file():
                os.replace(src, wheels / w["file"])
            elif not (wheels / w["file"]).is_file():
                raise InputError(f"{path}: wheel {w['file']} was carried by an earlier bundle that is not "
                                 "unpacked here",
                                 hint="unbundle the earlier bundle first")
        env = offline.git_config(workdir, index)
        deps = index.setdefault("deps", {})
        for name, d in manifest["fetchcontent"].items():
            rel = f"deps/{name}-{(d.get('commit') or d.get('sha256'))[:12]}"
            target = root / rel
            if not target.is_dir() and d.get("kind") == "archive":
                member = tmp / "members" / d["member"]
                if not member.is_file():
                    raise InputError(f"{path}: {name} ({d['url']}) was carried by an earlier bundle that is not "
                                     "unpacked here", hint="unbundle the earlier bundle first")
                downloads.unpack(member, target)
            elif not target.is_dir():
                work = tmp / "dep"
                shutil.rmtree(work, ignore_errors=True)
                mirror = root / repos[d["url"]]["mirror"]
                sources.git(work.parent, "clone", "-q", "--no-checkout", str(mirror), str(work), env=env,
                            timeout=gitpack.LONG, check=True)
                for args in (("checkout", "-q", "--detach", d["commit"]), ("remote", "set-url", "origin", d["url"]),
                             ("submodule", "update", "--init", "--recursive", "-q")):
                    sources.git(work, *args, env=env, timeout=gitpack.LONG, check=True)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(work, target)
            deps[name] = {"dir": rel, "url": d["url"], "ref": d["ref"], "commit": d.get("commit"),
                          "sha256": d.get("sha256")}
        for c in manifest.get("components", []):  # checkout folder -> URL, for builds that name another URL
            if c.get("dest_name"):
                index.setdefault("components", {})[c["dest_name"]] = c["url"]
        index.setdefault("bundles", []).append({"file": path.name, "created": manifest.get("created"),
                                                "recipes": manifest.get("recipes")})
        write_text(offline.toolchain_file(workdir), offline.toolchain_text(offline.cmake_defines(workdir, index)))
        write_json(offline.index_path(workdir), index)
    say(f"unpacked into {root}: {len(index['repos'])} repositories, {len(index['deps'])} CMake dependencies, "
        f"{len(list(wheels.glob('*')))} wheel(s); build with --offline")
    return index
