"""Stored runs: atomic strict-JSON run.json, lookup by id/prefix/path/latest, listing."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest

from rebuilt.errors import InputError
from rebuilt.tools.bench import store


def make(workdir, name, created, **extra):
    run_id = store.new_run_id(name, dt.datetime.fromisoformat(created))
    d = store.create_run_dir(workdir, run_id)
    store.write_run(d, {"run_id": run_id, "created": created, "status": "complete",
                        "spec": {"name": name, "kind": "serving"}, "cases": [], **extra})
    return run_id, d


def test_run_json_is_strict_and_round_trips(tmp_path):
    run_id, d = make(tmp_path, "serving-random-ids", "2026-01-02T10:00:00",
                     cases=[{"id": "rateinf", "params": {"request_rate": math.inf},
                             "repeats": [{"request_rate": math.inf, "x": float("nan"), "y": 1.5}]}])
    text = (d / "run.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON token {c}"))
    data = store.load_run(d)
    assert data["schema_version"] == store.SCHEMA_VERSION
    assert data["cases"][0]["params"]["request_rate"] == "inf"
    assert data["cases"][0]["repeats"][0] == {"request_rate": "inf", "x": "nan", "y": 1.5}
    assert (tmp_path / "bench" / "CACHEDIR.TAG").is_file()
    assert not list(d.glob(".*.part"))  # the atomic write left no temp file
    assert run_id.startswith("20260102-100000-serving-random-ids-")


def test_resolve_ids_prefixes_paths_and_latest(tmp_path):
    old, d_old = make(tmp_path, "a", "2026-01-01T09:00:00")
    mid, d_mid = make(tmp_path, "b", "2026-01-01T10:00:00")
    new, d_new = make(tmp_path, "c", "2026-01-02T08:00:00")
    assert store.resolve("latest", tmp_path) == d_new
    assert store.resolve("latest~1", tmp_path) == d_mid
    assert store.resolve("latest~2", tmp_path) == d_old
    assert store.resolve(mid, tmp_path) == d_mid
    assert store.resolve(new[:20], tmp_path) == d_new  # unique prefix
    assert store.resolve(str(d_old), "/nonexistent") == d_old
    assert store.resolve(str(d_old / "run.json"), "/nonexistent") == d_old
    with pytest.raises(InputError, match="only 3 run"):
        store.resolve("latest~3", tmp_path)
    with pytest.raises(InputError, match="matches 2 runs"):
        store.resolve("20260101", tmp_path)
    with pytest.raises(InputError, match="no bench run 'nope'"):
        store.resolve("nope", tmp_path)


def test_list_shows_date_spec_cases_gpu_and_stack(tmp_path):
    make(tmp_path, "one-batch-default", "2026-01-01T09:00:00",
         cases=[{"id": "bs64", "params": {}, "repeats": [{}, {}, {}]}],
         gpu={"gpus": [{"index": 0, "name": "NVIDIA H200"}, {"index": 1, "name": "NVIDIA H200"}], "selected": [1]},
         stack={"components": {"sglang": {"version": "0.5.4", "commit": "1053e1be17ac"}, "torch": {"version": "2.8.0"}}})
    make(tmp_path, "x", "2026-01-01T10:00:00", target={"modules": {"torch": {"version": "2.8.0"}}})
    (tmp_path / "bench" / "broken").mkdir()
    (tmp_path / "bench" / "broken" / "run.json").write_text("{")
    text = store.format_list(store.runs(tmp_path))
    lines = text.splitlines()
    assert len(lines) == 3  # header + 2 runs; the broken one is skipped
    assert "2026-01-01 09:00" in lines[1] and "one-batch-default" in lines[1] and "1 (3 results)" in lines[1]
    assert "1x NVIDIA H200" in lines[1] and "sglang 0.5.4@1053e1b, torch 2.8.0" in lines[1]
    assert lines[2].endswith("torch 2.8.0")
    assert store.format_list([]) == "no bench runs yet"


def test_load_rejects_other_schema_versions_and_garbage(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(InputError, match="schema_version 99"):
        store.load_run(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        store.load_run(tmp_path / "nothing")


def test_attach_copies_files_and_folders(tmp_path):
    _, d = make(tmp_path / "w", "s", "2026-01-01T09:00:00")
    f = tmp_path / "server.log"
    f.write_text("log")
    traces = tmp_path / "traces"
    traces.mkdir()
    (traces / "1-TP-0.trace.json.gz").write_bytes(b"x")
    assert store.attach(d, [f, traces]) == ["attachments/server.log", "attachments/traces"]
    assert (d / "attachments" / "traces" / "1-TP-0.trace.json.gz").read_bytes() == b"x"
    with pytest.raises(InputError):
        store.attach(d, [tmp_path / "missing"])
