"""The first error lines of a step's log, shown above its tail when the step fails.

A failed CUDA build ends in 30 lines of Python traceback (setuptools, torch's cpp_extension, ninja's
summary); the line that says what went wrong (``fatal error: cuda/std/tuple: No such file or
directory``, ``ld: cannot find -l:libnvshmem_host.so``) is often a hundred lines above. This module
finds the first lines that look like an error, by kind:

- compiler: gcc/clang ``file:line:col: error:`` and ``fatal error:``, nvcc/cudafe ``file(line): error``,
  a bare ``error:`` (setuptools' ``error: command 'g++' failed``);
- linker: ``ld: cannot find``, ``undefined reference to``, ``collect2: error``;
- cmake: ``CMake Error``; ninja: ``FAILED: <target>``; make: ``make[1]: *** ...``;
- nvcc: ``nvcc fatal`` / ``nvcc error``; pip: ``ResolutionImpossible`` and ``ERROR: ...`` lines;
- python: the exception line that ends a traceback (``RuntimeError: Error compiling objects ...``).

The log is read in blocks of ``BLOCK`` bytes; in each, ``bytes.find`` looks for the literal words every
error pattern holds (``_FIND``), and only those lines go through the pattern, colour codes removed
(sgl-kernel builds with ``--color=always``). The log is never held whole in memory, and the scan stops at
the tail (those lines are printed anyway) or after ``limit`` lines.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

BLOCK = 1 << 20
MAX_LINE = 400  # characters of one error line that are shown
FIRST = 12  # error lines shown above the tail
KINDS = (
    ("linker", rb"\bld(?:\.[\w.]+)?: cannot find |undefined reference to |collect2: error"
               rb"|\bld returned \d+ exit status"),
    ("compiler", rb"fatal error: |: error: |\): error\b|^error: "),
    ("cmake", rb"^CMake Error"),
    ("ninja", rb"^FAILED: "),
    ("make", rb"^g?make(?:\[\d+\])?: \*\*\* "),
    ("nvcc", rb"\bnvcc (?:fatal|error)\b"),
    ("pip", rb"ResolutionImpossible|^ERROR: "),
    ("python", rb"^(?:[A-Za-z_]\w*\.)*\w*(?:Error|Exception)(?::|\r?$)"),
)
# Every kind's pattern holds one of these words (nvcc's "file(12): error: ...", "collect2: error: ld
# returned 1", "CMake Error" and pip's "ERROR: ResolutionImpossible" too): a line without any never reaches
# the regex. Each is one bytes.find pass over the block; -Werror=... flags hold none of them.
_FIND = (b"error: ", b"): error", b"cannot find ", b"undefined reference", b"FAILED: ", b"*** ", b"nvcc fatal",
         b"nvcc error", b"ERROR: ", b"Error", b"Exception")
_PATTERN = re.compile(b"|".join(b"(?P<%s>%s)" % (k.encode(), rx) for k, rx in KINDS), re.M)
_ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


@dataclass(frozen=True)
class ErrorLine:
    number: int  # 1-based line number in the log
    kind: str
    text: str


def _decode(line: bytes) -> str:
    text = _ANSI.sub(b"", line).decode("utf-8", errors="replace").rstrip("\r\n")
    return text if len(text) <= MAX_LINE else text[:MAX_LINE] + " ..."


def tail(path: Path, n: int = 30) -> tuple[str, int]:
    """The last ``n`` lines of ``path`` (read from the end) and the byte offset where they start."""
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        pos, data = end, b""
        while pos > 0 and data.count(b"\n", 0, len(data) - 1) < n:
            step = min(BLOCK, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
    body = data[:-1] if data.endswith(b"\n") else data
    cut = len(body)
    for _ in range(n):  # the n-th newline from the end: the tail starts after it
        cut = body.rfind(b"\n", 0, cut)
        if cut < 0:
            break
    start = cut + 1 if cut >= 0 else 0
    return _ANSI.sub(b"", data[start:]).decode("utf-8", errors="replace"), pos + start


def first_errors(path: Path, limit: int = FIRST, stop: int | None = None) -> list[ErrorLine]:
    """The first ``limit`` distinct error lines of ``path`` that start before byte ``stop``."""
    found: list[ErrorLine] = []
    seen: set[str] = set()
    line_no, offset, carry = 1, 0, b""
    with open(path, "rb") as f:
        while len(found) < limit:
            block = f.read(BLOCK)
            buf = carry + block
            if not buf:
                break
            cut = buf.rfind(b"\n") + 1 if block else len(buf)
            if cut == 0 and len(buf) < 8 * BLOCK:  # one very long line: read on
                carry = buf
                continue
            chunk, carry = buf[:cut], buf[cut:]
            if stop is not None and offset >= stop:
                break
            if stop is not None and offset + len(chunk) > stop:
                chunk = chunk[:stop - offset]
            line_no = _scan(chunk, line_no, found, seen, limit)
            offset += len(chunk)
    return found


def _candidates(chunk: bytes) -> list[int]:
    """Start offsets of the lines holding one of ``_FIND`` (bytes.find: C speed, no per-line Python)."""
    starts: set[int] = set()
    for lit in _FIND:
        pos = chunk.find(lit)
        while pos >= 0:
            start = chunk.rfind(b"\n", 0, pos) + 1
            starts.add(start)
            end = chunk.find(b"\n", pos)
            pos = chunk.find(lit, end) if end >= 0 else -1
    return sorted(starts)


def _scan(chunk: bytes, line_no: int, found: list[ErrorLine], seen: set[str], limit: int) -> int:
    """Add the chunk's error lines to ``found``; the line number after the chunk."""
    last = 0
    for start in _candidates(chunk):
        end = chunk.find(b"\n", start)
        line = chunk[start:end if end >= 0 else len(chunk)]
        if b"\x1b" in line:
            line = _ANSI.sub(b"", line)
        m = _PATTERN.search(line)
        if not m:
            continue
        line_no += chunk.count(b"\n", last, start)
        last = start
        text = _decode(line)
        if text.strip() and text not in seen:
            seen.add(text)
            found.append(ErrorLine(line_no, m.lastgroup or "error", text))
            if len(found) >= limit:
                return line_no
    return line_no + chunk.count(b"\n", last)


def excerpt(path: Path, tail_lines: int = 30, limit: int = FIRST) -> tuple[str, list[ErrorLine]]:
    """What a failure shows: the first error lines above the tail (when the tail lacks them), then the
    tail; and those error lines, for the manifest."""
    text, tail_start = tail(path, tail_lines)
    errors = first_errors(path, limit, stop=tail_start)
    parts = []
    if errors:
        width = len(str(errors[-1].number))
        parts.append(f"--- first error lines of {path} (line: text) ---")
        parts += [f"{e.number:>{width}}: {e.text}" for e in errors]
    parts.append(f"--- last {tail_lines} lines of {path} ---")
    parts.append(text.rstrip())
    return "\n".join(parts), errors
