"""Read what sglang's benchmarks leave behind: printed logs and JSONL result files.

Records use upstream's JSONL field names. bench_one_batch's printed blocks carry no
input/output length, so those come from the command line when the log holds one
(the runner writes it as the first line; a pasted ``python -m sglang.bench_one_batch
...`` line works too); otherwise they are ``None``.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rebuilt.errors import InputError

NUM = r"([-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|inf|nan))"
PREFILL = re.compile(rf"Prefill\. latency: +{NUM} s, throughput: +{NUM} token/s")
DECODE_STEP = re.compile(rf"Decode(?: \d+)?\.\s+(?:Batch size: (\d+), )?latency: +{NUM} s")
DECODE_MEDIAN = re.compile(rf"Decode\.\s+median latency: +{NUM} s, median throughput: +{NUM} token/s")
TOTAL = re.compile(rf"Total\. latency: +{NUM} s, throughput: +{NUM} token/s")
SKIP = re.compile(r"skipping \((\d+), (\d+), (\d+)\) due to max batch size limit")
WARMUP = re.compile(r"(^|\s)Warmup \.\.\.")
BENCHMARK = re.compile(r"(^|\s)Benchmark \.\.\.")
SERVING_START = re.compile(r"=+ Serving Benchmark Result =+")
SERVING_END = re.compile(r"^={50}\s*$")
SERVING_LINE = re.compile(r"^(\S.*?:)\s+(.*?)\s*$")
LATENCY_LINE = re.compile(r"^(Mean|Median|Std|P\d+|Max) (E2E Latency|TTFT|TPOT|ITL) \(ms\):$")
SERVING_KEYS = {
    "Backend:": "backend",
    "Traffic request rate:": "request_rate",
    "Max request concurrency:": "max_concurrency",
    "Maximum request concurrency:": "max_concurrency",
    "Successful requests:": "completed",
    "Benchmark duration (s):": "duration",
    "Total input tokens:": "total_input_tokens",
    "Total input text tokens:": "total_input_text_tokens",
    "Total input vision tokens:": "total_input_vision_tokens",
    "Total generated tokens:": "total_output_tokens",
    "Total generated tokens (retokenized):": "total_output_tokens_retokenized",
    "Request throughput (req/s):": "request_throughput",
    "Input token throughput (tok/s):": "input_throughput",
    "Output token throughput (tok/s):": "output_throughput",
    "Total token throughput (tok/s):": "total_throughput",
    "Total throughput (tok/s):": "total_throughput",
    "Concurrency:": "concurrency",
    "Accept length:": "accept_length",
}
ONE_BATCH_FIELDS = ("run_name", "batch_size", "input_len", "output_len", "prefill_latency",
                    "prefill_throughput", "median_decode_latency", "median_decode_throughput",
                    "total_latency", "overall_throughput")
LIST_FLAGS = {"--batch-size": "batch_size", "--input-len": "input_len", "--output-len": "output_len"}
DEFAULT_LISTS = {"batch_size": [1], "input_len": [1024], "output_len": [16]}


@dataclass
class Parsed:
    kind: str  # one_batch | serving
    format: str  # jsonl | log
    records: list[dict[str, Any]]


def number(text: str) -> Any:
    """``"12"`` → 12, ``"1.5"`` → 1.5, ``"inf"`` → inf; anything else stays text (``"not set"`` → None)."""
    text = text.strip()
    if text == "not set":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


# --------------------------------------------------------------------------- bench_one_batch log


def command_lists(line: str) -> tuple[dict[str, list[int]], str | None] | None:
    """Batch/input/output lists and run name from a ``sglang.bench_one_batch`` command line."""
    if "sglang.bench_one_batch" not in line:
        return None
    try:
        words = shlex.split(line.split("sglang.bench_one_batch", 1)[1])
    except ValueError:
        words = line.split("sglang.bench_one_batch", 1)[1].split()
    lists = {k: list(v) for k, v in DEFAULT_LISTS.items()}
    run_name = None
    for i, word in enumerate(words):
        flag, _, inline = word.partition("=")
        if flag in LIST_FLAGS:
            values = [inline] if inline else list(itertools.takewhile(lambda w: not w.startswith("-"), words[i + 1:]))
            lists[LIST_FLAGS[flag]] = [int(v) for v in values if v.isdigit()]
        elif flag == "--run-name":
            run_name = inline or (words[i + 1] if i + 1 < len(words) else None)
    return lists, run_name


def _product(lists: dict[str, list[int]]) -> Iterator[tuple[int, int, int]]:
    """The cases in bench_one_batch's own order (itertools.product of bs, il, ol)."""
    return itertools.product(lists["batch_size"], lists["input_len"], lists["output_len"])


def parse_one_batch_log(text: str, lists: dict[str, list[int]] | None = None) -> list[dict[str, Any]]:
    """Measured blocks of a bench_one_batch log; the ``Warmup ...`` pass is left out."""
    records: list[dict[str, Any]] = []
    run_name = None
    no_markers = WARMUP.search(text) is None and BENCHMARK.search(text) is None
    measured = WARMUP.search(text) is None  # no warm-up marker: every block counts
    combos: Iterator | None = _product(lists) if lists and no_markers else None
    block: dict[str, Any] | None = None
    step_bs: int | None = None

    def next_combo():
        return next(combos, None) if combos is not None else None

    for lineno, line in enumerate(text.splitlines(), 1):
        if found := command_lists(line):
            lists, run_name = found
            combos = _product(lists) if no_markers else combos
        if WARMUP.search(line):
            measured, block = False, None
        elif BENCHMARK.search(line):
            measured = True
            combos = _product(lists) if lists else None
        elif (m := SKIP.search(line)) and measured:
            combo = next_combo()
            if combo is not None and combo != tuple(map(int, m.groups())):
                raise InputError(f"line {lineno}: skipped case {m.groups()} is not the expected {combo}")
        elif m := PREFILL.search(line):
            block = {"prefill_latency": float(m[1]), "prefill_throughput": float(m[2])}
            step_bs = None
        elif (m := DECODE_STEP.search(line)) and block is not None:
            step_bs = int(m[1]) if m[1] else step_bs
        elif (m := DECODE_MEDIAN.search(line)) and block is not None:
            block.update(median_decode_latency=float(m[1]), median_decode_throughput=float(m[2]))
        elif (m := TOTAL.search(line)) and block is not None:
            block.update(total_latency=float(m[1]), overall_throughput=float(m[2]))
            if measured:
                records.append(_one_batch_record(block, next_combo(), step_bs, run_name, lineno))
            block = None
    return records


def _one_batch_record(block, combo, step_bs, run_name, lineno) -> dict[str, Any]:
    bs, il, ol = combo if combo is not None else (step_bs, None, None)
    if combo is not None and step_bs is not None and step_bs != bs:
        raise InputError(f"line {lineno}: the Decode lines say batch size {step_bs}, "
                         f"but the command's case here is batch size {bs}")
    rec = {"run_name": run_name, "batch_size": bs, "input_len": il, "output_len": ol, **block}
    if run_name is None:
        del rec["run_name"]
    return {k: rec[k] for k in ONE_BATCH_FIELDS if k in rec}


# --------------------------------------------------------------------------- bench_serving summary


def serving_key(label: str) -> str:
    """A summary line's label → the JSONL field name (``Mean TTFT (ms):`` → ``mean_ttft_ms``)."""
    if label in SERVING_KEYS:
        return SERVING_KEYS[label]
    if m := LATENCY_LINE.match(label):
        metric = {"E2E Latency": "e2e_latency"}.get(m[2], m[2].lower())
        return f"{m[1].lower()}_{metric}_ms"
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def parse_serving_log(text: str) -> list[dict[str, Any]]:
    """One record per ``Serving Benchmark Result`` block (lines ``{:<40} {:<10}``, ended by 50 ``=``)."""
    records: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for line in text.splitlines():
        if SERVING_START.search(line):
            current = {}
        elif current is not None and SERVING_END.match(line):
            records.append(current)
            current = None
        elif current is not None and (m := SERVING_LINE.match(line)) and not line.startswith("-"):
            current[serving_key(m[1])] = number(m[2])
    return records


# --------------------------------------------------------------------------- JSONL and detection


def parse_jsonl(text: str, source: str = "<text>") -> list[dict[str, Any]]:
    """JSON objects, one per line; the bare ``Infinity``/``NaN`` bench_serving writes are floats."""
    records = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)  # the stdlib accepts Infinity/NaN (orjson would not)
        except json.JSONDecodeError as exc:
            raise InputError(f"{source}:{lineno}: not a JSON line ({exc.msg})") from None
        except RecursionError:
            raise InputError(f"{source}:{lineno}: JSON nested too deeply to be a benchmark record") from None
        if not isinstance(obj, dict):
            raise InputError(f"{source}:{lineno}: expected a JSON object")
        records.append(obj)
    return records


def record_kind(record: dict) -> str | None:
    if "batch_size" in record and ("prefill_latency" in record or "total_latency" in record):
        return "one_batch"
    if "request_throughput" in record or "completed" in record:
        return "serving"
    return None


KINDS = ("auto", "one_batch", "serving")


def _did_you_mean(kind: str) -> str:
    from rebuilt.core.text import did_you_mean

    return did_you_mean(str(kind), KINDS)


def parse_text(text: str, source: str = "<text>", kind: str = "auto",
               lists: dict[str, list[int]] | None = None) -> Parsed:
    """Parse a log or JSONL text, auto-detecting what it is; nothing recognisable → InputError."""
    if kind not in KINDS:
        raise InputError(f"--kind {kind!r} is not a kind of benchmark{_did_you_mean(kind)}",
                         hint=f"use one of: {', '.join(KINDS)}")
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if first.lstrip().startswith("{"):
        records = parse_jsonl(text, source)
        kinds = {record_kind(r) for r in records}
        found = kinds.pop() if len(kinds) == 1 else None
        if found and kind in ("auto", found):
            return Parsed(found, "jsonl", records)
        raise InputError(f"{source}: JSON lines, but not bench_one_batch or bench_serving results")
    if kind in ("auto", "serving") and (records := parse_serving_log(text)):
        return Parsed("serving", "log", records)
    if kind in ("auto", "one_batch") and (records := parse_one_batch_log(text, lists)):
        return Parsed("one_batch", "log", records)
    raise InputError(f"{source}: no benchmark results found",
                     hint="expected bench_one_batch output (Prefill./Decode./Total. lines after "
                          "'Benchmark ...'), a 'Serving Benchmark Result' block, or their JSONL")


def parse_file(path: Path | str, kind: str = "auto") -> Parsed:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    return parse_text(text, str(path), kind)


def dumps(record: dict) -> str:
    """One JSON line, upstream's way (an infinite request rate is written as ``Infinity``)."""
    return json.dumps(record, allow_nan=True)


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
