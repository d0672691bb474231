"""Where a project is: the folder whose invoke.yaml and work dir every command uses.

Found the same way from any folder: the nearest folder, from the current one upwards, that
holds an ``invoke.yaml``/``invoke.yml``, a work dir ``.rebuilt/`` or a ``tasks.py`` (this
checkout: the folder `inv` itself finds by searching upwards); else the current folder.
``REBUILT_PROJECT=/path`` names it outright. Relative settings (``workdir``) are relative to it,
so ``inv``/``rebuilt`` run from a subfolder use the same work dir as from the top.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

MARKERS = ("invoke.yaml", "invoke.yml", ".rebuilt", "tasks.py")  # tasks.py: where `inv` finds its tasks too


def root(cwd: Path | None = None, environ=None) -> Path:
    environ = os.environ if environ is None else environ
    if environ.get("REBUILT_PROJECT"):
        return Path(environ["REBUILT_PROJECT"]).expanduser().resolve()
    start = Path(cwd or Path.cwd()).resolve()
    home = Path.home().resolve()
    for folder in (start, *start.parents):
        if folder == home and folder != start:
            break  # ~/.invoke.yaml is the user layer, not a project
        if any((folder / m).exists() for m in MARKERS):
            return folder
    return start


def data_root() -> Path:
    """Where the shipped recipes/, bench/ and patches/ are: the checkout, or <prefix>/share/rebuilt."""
    here = Path(__file__).resolve().parents[2]  # rebuilt/core/project.py -> the checkout
    if (here / "recipes").is_dir():
        return here
    installed = Path(sys.prefix) / "share" / "rebuilt"
    return installed if (installed / "recipes").is_dir() else here
