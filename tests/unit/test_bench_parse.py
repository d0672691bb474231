"""Parsers for bench_one_batch's printed log and JSONL, and bench_serving's summary and JSONL."""

from __future__ import annotations

import json
import math

import pytest

from rebuilt.errors import InputError
from rebuilt.tools.bench import parse

# A captured-style bench_one_batch run: log noise, a Warmup pass (not saved), then the
# measured pass over bs (1, 8, 64) x il 512 x ol (4, 1), where bs 64 is skipped.
ONE_BATCH_LOG = """\
$ python -m sglang.bench_one_batch --model-path /data/models/Llama-3.1-8B-Instruct/ --batch-size 1 8 64 --input-len 512 --output-len 4 1 --mem-fraction-static 0.6 --disable-cuda-graph --run-name sweep
[2025-10-30 12:00:01 TP0] Attention backend not explicitly specified. Use flashinfer backend by default.
[2025-10-30 12:00:01 TP0] Init torch distributed begin.
[2025-10-30 12:00:09 TP0] Load weight end. type=LlamaForCausalLM, dtype=torch.bfloat16, avail mem=125.71 GB, mem usage=15.06 GB.
[2025-10-30 12:00:09 TP0] KV Cache is allocated. #tokens: 20480, K size: 1.25 GB, V size: 1.25 GB
max_total_num_tokens=20480
Warmup ...
Prefill. latency: 0.04113 s, throughput:  12448.34 token/s
Decode 0. Batch size: 1, latency: 0.00958 s, throughput:    104.38 token/s
Decode 1. Batch size: 1, latency: 0.00702 s, throughput:    142.45 token/s
Decode 2. Batch size: 1, latency: 0.00700 s, throughput:    142.86 token/s
Decode.  median latency: 0.00702 s, median throughput:    142.45 token/s
Total. latency:  0.065 s, throughput:   7937.11 token/s
Benchmark ...
Prefill. latency: 0.02135 s, throughput:  23981.27 token/s
Decode 0. Batch size: 1, latency: 0.00699 s, throughput:    143.06 token/s
Decode 1. Batch size: 1, latency: 0.00697 s, throughput:    143.47 token/s
Decode 2. Batch size: 1, latency: 0.00701 s, throughput:    142.65 token/s
Decode.  median latency: 0.00699 s, median throughput:    143.06 token/s
Total. latency:  0.042 s, throughput:  12285.71 token/s
Prefill. latency: 0.02101 s, throughput:  24369.35 token/s
Total. latency:  0.021 s, throughput:  24416.95 token/s
Prefill. latency: 0.12560 s, throughput:  32611.46 token/s
Decode 0. Batch size: 8, latency: 0.00771 s, throughput:   1037.61 token/s
Decode 1. Batch size: 8, latency: 0.00768 s, throughput:   1041.67 token/s
Decode 2. Batch size: 8, latency: 0.00770 s, throughput:   1038.96 token/s
Decode.  median latency: 0.00770 s, median throughput:   1038.96 token/s
Total. latency:  0.149 s, throughput:  27704.70 token/s
Prefill. latency: 0.12498 s, throughput:  32773.24 token/s
Total. latency:  0.125 s, throughput:  32830.27 token/s
skipping (64, 512, 4) due to max batch size limit
skipping (64, 512, 1) due to max batch size limit
"""

SERVING_LOG = (
    "benchmark_args=Namespace(backend='sglang', dataset_name='random-ids', request_rate=inf)\n"
    "#Input tokens: 102400\n#Output tokens: 25600\n"
    "Starting warmup with 1 sequences...\n"
    "Warmup completed with 1 sequences. Starting main benchmark run...\n"
    "\n============ Serving Benchmark Result ============\n"
    + "".join(f"{k:<40} {v:<10}\n" for k, v in [
        ("Backend:", "sglang"), ("Traffic request rate:", float("inf")), ("Max request concurrency:", "not set"),
        ("Successful requests:", 200)])
    + "{:<40} {:<10.2f}\n".format("Benchmark duration (s):", 21.3456)
    + "".join(f"{k:<40} {v:<10}\n" for k, v in [
        ("Total input tokens:", 102400), ("Total generated tokens:", 25600),
        ("Total generated tokens (retokenized):", 25587)])
    + "".join(f"{k:<40} {v:<10.2f}\n" for k, v in [
        ("Request throughput (req/s):", 9.37), ("Input token throughput (tok/s):", 4797.2),
        ("Output token throughput (tok/s):", 1199.3), ("Total token throughput (tok/s):", 5996.5),
        ("Concurrency:", 187.21)])
    + "{s:{c}^{n}}\n".format(s="End-to-End Latency", n=50, c="-")
    + "{:<40} {:<10.2f}\n".format("Mean E2E Latency (ms):", 19980.11)
    + "{:<40} {:<10.2f}\n".format("Median E2E Latency (ms):", 20112.5)
    + "{s:{c}^{n}}\n".format(s="Time to First Token", n=50, c="-")
    + "{:<40} {:<10.2f}\n".format("Mean TTFT (ms):", 8123.4)
    + "{:<40} {:<10.2f}\n".format("Median TTFT (ms):", 8001.0)
    + "{:<40} {:<10.2f}\n".format("P99 TTFT (ms):", 15999.99)
    + "{s:{c}^{n}}\n".format(s="Inter-Token Latency", n=50, c="-")
    + "".join(f"{k:<40} {v:<10.2f}\n" for k, v in [
        ("Mean ITL (ms):", 93.2), ("Median ITL (ms):", 31.5), ("P95 ITL (ms):", 210.0),
        ("P99 ITL (ms):", 1040.7), ("Max ITL (ms):", 8055.1)])
    + "=" * 50 + "\n"
)


def test_one_batch_log_skips_warmup_and_maps_every_combination():
    recs = parse.parse_one_batch_log(ONE_BATCH_LOG)
    assert [(r["batch_size"], r["input_len"], r["output_len"]) for r in recs] == [
        (1, 512, 4), (1, 512, 1), (8, 512, 4), (8, 512, 1)]
    assert recs[0] == {
        "run_name": "sweep", "batch_size": 1, "input_len": 512, "output_len": 4,
        "prefill_latency": 0.02135, "prefill_throughput": 23981.27,
        "median_decode_latency": 0.00699, "median_decode_throughput": 143.06,
        "total_latency": 0.042, "overall_throughput": 12285.71}
    # output_len 1: no decode step, so no decode medians (as in upstream's JSONL)
    assert "median_decode_latency" not in recs[1] and "median_decode_throughput" not in recs[1]
    assert recs[3]["prefill_latency"] == 0.12498 and recs[3]["overall_throughput"] == 32830.27
    assert list(recs[2]) == list(parse.ONE_BATCH_FIELDS)  # upstream's field order


def test_one_batch_log_without_a_command_line_leaves_lengths_unknown():
    text = ONE_BATCH_LOG.split("\n", 1)[1]
    recs = parse.parse_one_batch_log(text)
    assert [(r["batch_size"], r["input_len"], r["output_len"]) for r in recs] == [
        (1, None, None), (None, None, None), (8, None, None), (None, None, None)]
    assert "run_name" not in recs[0]
    # a caller that knows the command supplies the lists
    recs = parse.parse_one_batch_log(text, {"batch_size": [1, 8, 64], "input_len": [512], "output_len": [4, 1]})
    assert [(r["batch_size"], r["output_len"]) for r in recs] == [(1, 4), (1, 1), (8, 4), (8, 1)]


def test_one_batch_log_of_an_older_sglang_and_without_markers():
    old = ("Prefill. latency: 0.50000 s, throughput:   1024.00 token/s\n"
           "Decode.  latency: 0.01000 s, throughput:    100.00 token/s\n"
           "Decode.  median latency: 0.01000 s, median throughput:    100.00 token/s\n"
           "Total. latency:  0.510 s, throughput:   1035.29 token/s\n")
    recs = parse.parse_one_batch_log(old)
    assert len(recs) == 1 and recs[0]["median_decode_latency"] == 0.01 and recs[0]["batch_size"] is None


def test_one_batch_log_whose_decode_batch_disagrees_with_the_command_is_rejected():
    bad = ONE_BATCH_LOG.replace("--batch-size 1 8 64", "--batch-size 2 8 64")
    with pytest.raises(InputError, match="batch size 1"):
        parse.parse_one_batch_log(bad)


def test_only_warmup_means_no_results():
    text = ONE_BATCH_LOG.split("Benchmark ...")[0]
    assert parse.parse_one_batch_log(text) == []
    with pytest.raises(InputError, match="no benchmark results"):
        parse.parse_text(text, "warm.log")


def test_serving_summary_with_trailing_spaces_and_inf():
    assert "Backend:                                 sglang    \n" in SERVING_LOG  # {:<10} pads
    [rec] = parse.parse_serving_log(SERVING_LOG)
    assert rec["backend"] == "sglang"
    assert rec["request_rate"] == math.inf
    assert rec["max_concurrency"] is None
    assert rec["completed"] == 200 and isinstance(rec["completed"], int)
    assert rec["duration"] == 21.35
    assert rec["request_throughput"] == 9.37
    assert rec["total_output_tokens"] == 25600 and rec["total_output_tokens_retokenized"] == 25587
    assert rec["total_throughput"] == 5996.5
    assert rec["mean_e2e_latency_ms"] == 19980.11 and rec["median_e2e_latency_ms"] == 20112.5
    assert rec["p99_ttft_ms"] == 15999.99 and rec["median_ttft_ms"] == 8001.0
    assert rec["p95_itl_ms"] == 210.0 and rec["max_itl_ms"] == 8055.1
    assert rec["concurrency"] == 187.21
    assert set(rec) == {  # upstream's JSONL names; no section titles or separators leaked in
        "backend", "request_rate", "max_concurrency", "completed", "duration", "total_input_tokens",
        "total_output_tokens", "total_output_tokens_retokenized", "request_throughput", "input_throughput",
        "output_throughput", "total_throughput", "concurrency", "mean_e2e_latency_ms", "median_e2e_latency_ms",
        "mean_ttft_ms", "median_ttft_ms", "p99_ttft_ms", "mean_itl_ms", "median_itl_ms", "p95_itl_ms",
        "p99_itl_ms", "max_itl_ms"}


def test_two_serving_blocks_give_two_records():
    text = SERVING_LOG + SERVING_LOG.replace("not set", "64")
    recs = parse.parse_serving_log(text)
    assert [r["max_concurrency"] for r in recs] == [None, 64]


def test_serving_jsonl_with_bare_infinity():
    line = '{"backend": "sglang", "request_rate": Infinity, "max_concurrency": null, "completed": 200, ' \
           '"request_throughput": 9.37, "median_ttft_ms": 8001.0}\n'
    assert "Infinity" in line and "inf" not in line.lower().replace("infinity", "")
    got = parse.parse_text(line + line, "serving.jsonl")
    assert got.kind == "serving" and got.format == "jsonl" and len(got.records) == 2
    assert got.records[0]["request_rate"] == math.inf
    assert parse.dumps(got.records[0]).count("Infinity") == 1


def test_one_batch_jsonl_and_detection():
    rec = {"run_name": "x", "batch_size": 64, "input_len": 512, "output_len": 1, "prefill_latency": 0.3,
           "prefill_throughput": 109226.7, "total_latency": 0.3, "overall_throughput": 109440.0}
    got = parse.parse_text(json.dumps(rec) + "\n\n")
    assert got.kind == "one_batch" and got.records == [rec]
    assert parse.parse_text(SERVING_LOG).kind == "serving"
    assert parse.parse_text(ONE_BATCH_LOG).kind == "one_batch"
    with pytest.raises(InputError, match="not bench_one_batch or bench_serving"):
        parse.parse_text('{"a": 1}\n', "other.jsonl")
    with pytest.raises(InputError, match=r"bad.jsonl:2: not a JSON line"):
        parse.parse_text(json.dumps(rec) + "\n{oops\n", "bad.jsonl")


def test_nothing_recognisable_names_the_file(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello\nworld\n")
    with pytest.raises(InputError) as err:
        parse.parse_file(p)
    assert str(p) in str(err.value)
    with pytest.raises(InputError, match="cannot read"):
        parse.parse_file(tmp_path / "missing.log")
