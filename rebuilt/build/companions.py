"""Which torchvision, torchaudio and triton go with a torch: the one table both the guard and the checks read.

torch 2.N pairs with torchvision 0.(N+15) and torchaudio 2.N (each project's release notes and
``pytorch/vision``'s README compatibility table: 2.5/0.20 ... 2.10/0.25). 2.11 and later follow the same
step; that is an assumption until their releases say so. triton: what torch's own Requires-Dist names,
else the table below.
"""

from __future__ import annotations

import re

TORCHVISION_STEP = 15  # torchvision 0.(N+15) for torch 2.N
RELEASED = ("2.5", "2.6", "2.7", "2.8", "2.9", "2.10")  # torch minors whose pairing the releases state
# triton of each torch release, from the Requires-Dist of torch's default build on the package index
# (torch-<v>-cp311-cp311-manylinux_2_28_x86_64.whl). Used when the installed torch names no triton itself:
# CPU builds (+cpu) and many source builds declare none.
TRITON_OF_TORCH = {"2.8.0": "3.4.0", "2.9.0": "3.5.0", "2.9.1": "3.5.1", "2.10.0": "3.6.0", "2.11.0": "3.6.0",
                   "2.13.0": "3.7.1"}


def torchvision_minor(torch_version: str) -> str | None:
    """``2.8.1`` (or ``2.8``) -> ``0.23``; None for a torch that is not 2.x."""
    m = re.match(r"(\d+)\.(\d+)", torch_version or "")
    if not m or m.group(1) != "2":
        return None
    return f"0.{int(m.group(2)) + TORCHVISION_STEP}"


def torchaudio_minor(torch_version: str) -> str | None:
    """``2.8.1`` -> ``2.8``: torchaudio carries torch's own version."""
    m = re.match(r"(\d+)\.(\d+)", torch_version or "")
    return f"{m.group(1)}.{m.group(2)}" if m and m.group(1) == "2" else None


def assumed(torch_version: str) -> bool:
    """Is the pairing for this torch the rule's guess rather than a release's statement?"""
    m = re.match(r"(\d+\.\d+)", torch_version or "")
    return not m or m.group(1) not in RELEASED
