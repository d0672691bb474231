"""rebuilt on every host: this checkout's source, packed once, unpacked once per host and version.

Why the source and not a wheel installed into each host's environment: the target environment of a
build host holds the custom torch that rebuilt protects, and installing rebuilt there (with invoke and
packaging) would change it; a wheel in a venv of its own would need the package index on every host.
The archive holds the ``rebuilt`` package, the recipes, stacks, serve profiles and bench specs, and the
two pure-Python libraries the remote commands import (invoke, packaging) under ``_deps``, so a host needs
nothing but a Python >= 3.10 (the one that runs rebuilt there is the host's target interpreter, with
``PYTHONPATH`` pointing at the unpacked folder: nothing is installed into it).
Its name is the sha256 of its content: a host that has this version skips the upload.
"""

from __future__ import annotations

import hashlib
import io
import os
import shlex
import tarfile
from pathlib import Path

from rebuilt.core import fs, project

DATA = ("recipes", "bench/specs", "patches/README.md")
DEPS = ("invoke", "packaging")


def _files() -> list[tuple[str, Path]]:
    """(name in the archive, file here), sorted."""
    import rebuilt

    out: list[tuple[str, Path]] = []

    def add_tree(base: Path, arcbase: str, suffixes=(".py", ".toml", ".md", ".txt", ".json", ".patch")) -> None:
        if base.is_file():
            out.append((arcbase, base))
            return
        for p in sorted(base.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts and p.suffix in suffixes:
                out.append((f"{arcbase}/{p.relative_to(base).as_posix()}", p))

    add_tree(Path(rebuilt.__file__).parent, "rebuilt")
    data = project.data_root()
    for rel in DATA:
        if (data / rel).exists():
            add_tree(data / rel, rel)
    for i, folder in enumerate(recipe_dirs()):  # REBUILT_RECIPES_DIR here: the same recipes there
        add_tree(folder, f"_recipes/{i}")
    for dep in DEPS:
        mod = __import__(dep)
        add_tree(Path(mod.__file__).parent, f"_deps/{dep}", suffixes=(".py", ".typed"))
    return sorted(out)


def recipe_dirs() -> list[Path]:
    """The recipe folders named by ``REBUILT_RECIPES_DIR`` here (empty: the shipped recipes only)."""
    spec = os.environ.get("REBUILT_RECIPES_DIR") or ""
    return [Path(p) for p in spec.split(os.pathsep) if p and Path(p).is_dir()]


def recipes_env(tree: str) -> str:
    """``REBUILT_RECIPES_DIR=...`` for a remote command: the shipped copies of :func:`recipe_dirs`, in order."""
    dirs = [f"{tree}/_recipes/{i}" for i in range(len(recipe_dirs()))]
    return f"REBUILT_RECIPES_DIR={shlex.quote(':'.join(dirs))} " if dirs else ""


def archive(folder: Path) -> tuple[Path, str]:
    """The archive of this checkout in ``folder`` (made when missing) and its short content hash."""
    files = _files()
    digest = hashlib.sha256()
    for name, path in files:
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    sha = digest.hexdigest()[:16]
    target = Path(folder) / f"rebuilt-{sha}.tar.gz"
    if not target.exists():
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for name, path in files:
                info = tarfile.TarInfo(name)
                data = path.read_bytes()
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                tar.addfile(info, io.BytesIO(data))
        with fs.atomic_path(target) as tmp:
            tmp.write_bytes(buf.getvalue())
    return target, sha


def ensure(session, workdir: str, local: Path, sha: str) -> str:
    """The unpacked folder of this version on the session's host (uploaded and unpacked when missing)."""
    tree = f"{workdir}/fleet/rebuilt-{sha}"
    q = shlex.quote
    if session.sh(f"test -f {q(tree)}/.complete", timeout=30).exited == 0:
        return tree
    remote_tar = f"{workdir}/fleet/rebuilt-{sha}.tar.gz.{session.run_id}"
    session.conn.put(str(local), remote_tar)
    part = f"{tree}.part-{session.run_id}"
    r = session.sh(f"rm -rf {q(part)} && mkdir -p {q(part)} && tar -xzf {q(remote_tar)} -C {q(part)} && "
                   f"touch {q(part)}/.complete && rm -f {q(remote_tar)} && "
                   f"{{ mv -T {q(part)} {q(tree)} 2>/dev/null || rm -rf {q(part)}; }}", timeout=120)
    if r.exited != 0:
        from rebuilt.tools.fleet.run import StepError

        raise StepError("failed", f"{session.host.name}: could not unpack rebuilt in {workdir}/fleet: "
                        f"{(r.stderr or r.stdout).strip()[-300:]}", "free space there or give the host another "
                        "work dir (fleet.hosts.<name>.workdir, or fleet.workdir)")
    return tree
