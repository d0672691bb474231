"""``inv src.bundle --dry-run``: what a bundle would hold and how large it would be, fetching nothing.

Sizes come from what is already here: a checkout's (or a cached dependency's) git packs, which
is about what ``git bundle`` writes for it. A repository not here yet is asked ``git ls-remote``
(seconds) whether its ref exists; its size is "unknown". Wheels are listed by requirement, their
size unknown until ``pip download``. FetchContent dependencies are read from a checkout, so they
show only for components already fetched (``inv src.fetch``).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from rebuilt.build import builder, fetchcontent, sources
from rebuilt.build.features import offline
from rebuilt.core.secret import redact
from rebuilt.tools.bundle import downloads, wheelhouse
from rebuilt.tools.bundle.make import components

LS_REMOTE_TIMEOUT = 20


def pack_bytes(git_dir: Path) -> int | None:
    """Bytes of a repository's packs and loose objects, submodule repositories (.git/modules) included."""
    rc, out = sources.git(git_dir, "rev-parse", "--absolute-git-dir")
    if rc != 0:
        return None
    base = Path(out)
    return sum(f.stat().st_size for f in base.rglob("*") if f.is_file() and "objects" in f.parts)


def remote(url: str, ref: str) -> str:
    rc, out = sources.git(tempfile.gettempdir(), "ls-remote", url, *([ref] if ref else []), timeout=LS_REMOTE_TIMEOUT)
    if rc != 0:
        why = out.splitlines()[-1:] or ["no answer"]
        reason = re.sub(r"^fatal: unable to access '[^']*': ", "", redact(why[0]))[:70]
        return f"size unknown (not reachable from here: {reason})"
    if ref and not out and len(ref) != 40:
        return f"size unknown; ref {ref} NOT FOUND on the remote"
    return "size unknown (remote answers; ref found)"


def _fmt(n: int | None) -> str:
    return "unknown" if n is None else f"~{n / (1 << 20):.1f} MiB"


def _check_output(output: Path) -> None:
    """A dry run says now what the real run would meet: a folder it cannot write the bundle into."""
    from rebuilt.errors import InputError

    folder = output.parent if str(output.parent) else Path(".")
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("/"))
    try:
        if output.is_dir() or not existing.is_dir():
            raise OSError("not a file path in a folder")
        with tempfile.TemporaryFile(dir=existing):  # root passes os.access even on a read-only mount
            pass
    except OSError as exc:
        raise InputError(f"--output {output}: cannot write a bundle there ({exc.strerror or exc})",
                         hint="give a file path in a folder you can write") from None


def estimate(settings, names: list[str], say=print, output: Path | None = None) -> dict:
    plan, machine = builder.make_plan(settings, names)
    builder.check_python(machine, settings)  # the wheelhouse is for this interpreter: it must run
    if output is not None:
        _check_output(Path(output))
    cache = settings.workdir() / "cache" / "bundle-git"
    total, unknown = 0, 0
    say(f"src.bundle --dry-run: {', '.join(rp.recipe.name for rp in plan.recipes)} (stack {plan.stack})")
    rows = []
    for c in components(plan):
        dest = Path(c["dest"])
        size = pack_bytes(dest) if (dest / ".git").exists() else None
        detail = f"{_fmt(size)} (git packs of {dest}, submodules included)" if size is not None \
            else remote(c["url"], c["ref"])
        say(f"checkout  {c['recipe']}: {redact(c['url'])} {c['ref']}: {detail}")
        rows.append({"kind": "checkout", "name": c["recipe"], "size": size})
        for root in c["cmake_roots"]:
            if not (Path(root) / "CMakeLists.txt").is_file():
                continue
            scan = fetchcontent.scan(root)
            for name, dep in scan.deps.items():
                if dep.git_repository:
                    bare = cache / f"{offline.slug(dep.git_repository)}.git"
                    dsize = pack_bytes(bare) if bare.is_dir() else None
                    ddetail = _fmt(dsize) + " (cached)" if dsize is not None else remote(dep.git_repository,
                                                                                         dep.git_tag)
                else:
                    got = downloads.cache_path(dep.url, cache.parent / "bundle-downloads")
                    dsize = got.stat().st_size if got.is_file() else None
                    ddetail = f"{_fmt(dsize)} (downloaded before)" if dsize is not None \
                        else "an archive: size unknown until src.bundle downloads it"
                extra = "; its own FetchContent dependencies are read once it is fetched" \
                    if name in scan.subprojects else ""
                say(f"cmake dep {name}: {redact(dep.git_repository or dep.url)} {dep.git_tag} "
                    f"({dep.where}{', conditional' if dep.conditional else ''}): {ddetail}{extra}")
                rows.append({"kind": "fetchcontent", "name": name, "size": dsize})
            for p in scan.problems:
                say(f"  ! {p}")
        if not (dest / ".git").exists():
            say(f"  (FetchContent dependencies of {c['recipe']} are read from its checkout: inv src.fetch first)")
    for req, steps in sorted(wheelhouse.plan_requirements(plan, list(settings["protected"])).items()):
        say(f"wheel     {req} (for {', '.join(steps)}): size unknown until pip download")
        rows.append({"kind": "wheel", "name": req, "size": None})
    for text in wheelhouse.unknown(plan):
        say(f"  ! {text}")
    for r in rows:
        if r["size"] is None:
            unknown += 1
        else:
            total += r["size"]
    say(f"estimate: {_fmt(total)} known, {unknown} item(s) of unknown size (nothing was fetched)")
    return {"rows": rows, "known_bytes": total, "unknown": unknown}
