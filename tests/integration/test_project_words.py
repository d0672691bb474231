"""The project speaks to its users: no internal planning words in docs, recipes, comments or messages."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORDS = re.compile(r"\bissue \d+|\bissue #\d+|design card|UPSTREAM\.md|DESIGN\.md|shared/seeds|\bseed (notes?|\d{3})\b|"
                   r"\bthe seed'?s?\b|\blent (GPU )?machine\b|\bthe lent\b", re.IGNORECASE)
SELF = Path(__file__).relative_to(ROOT).as_posix()


def test_no_planning_words_in_tracked_text():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    hits = []
    for rel in files:
        if rel == SELF or not rel.endswith((".py", ".md", ".toml", ".yaml", ".txt", ".sh", ".cfg")):
            continue
        try:
            text = (ROOT / rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if WORDS.search(line):
                hits.append(f"{rel}:{n}: {line.strip()[:100]}")
    assert not hits, "\n".join(hits)
