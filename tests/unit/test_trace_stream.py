"""The streaming reader: same events as a whole-file parse, a bounded window, gzip read in pieces."""

from __future__ import annotations

import gzip
import io as pyio
import json
import random
from pathlib import Path

import pytest

from rebuilt.tools.trace import io, perfetto_fix, records, reference, stream, synth
from tests.unit.test_trace_io import _dump, _events


@pytest.fixture
def small_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pieces of 997 bytes and batches of ~3 kB: events and strings cross every cut."""
    monkeypatch.setattr(stream, "CHUNK", 997)
    monkeypatch.setattr(stream, "OUT_MAX", 1500)
    monkeypatch.setattr(stream, "BATCH_BYTES", 3000)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("gz", [False, True])
def test_batches_match_json_on_nasty_strings(tmp_path: Path, seed: int, gz: bool, small_window: None) -> None:
    events = _events(random.Random(seed), 300)
    data = _dump(events, seed % 3, bare=seed == 5)
    path = tmp_path / "t.json"
    path.write_bytes(gzip.compress(data[:5000]) + gzip.compress(data[5000:]) if gz else data)
    ts = stream.TraceStream(path)
    for decode in (None, records.decoder()):
        batches = list(ts.batches(decode, size=3000))
        values = [v for b in batches for v in b.values if not b.records]
        if decode is None:
            assert values == events
        for b in batches:  # each batch is exactly its events' bytes
            assert json.loads(b"[" + data[b.start:b.end] + b"]") == events[b.first:b.first + len(b.values)]
    assert ts.event_count == len(events)
    if seed != 5:
        assert ts.member("before") == {"x": "},{"} and ts.member("after") == [1, {"y": "]"}]


def test_records_and_dicts_collect_the_same(tmp_path: Path) -> None:
    spec = synth.SynthSpec(n_kernels=400, seed=3, weird_every=3)
    path = tmp_path / "t.json"
    with open(path, "wb") as f:
        synth.write(f, spec)
    ts = stream.TraceStream(path)
    by_records = perfetto_fix.collect(ts)
    by_dicts = perfetto_fix.Collector()
    for b in ts.batches(size=2000):
        by_dicts.add_batch(b.first, b.values)
    for attr in ("kernels", "flows", "thread_names", "thread_sort", "tids", "events", "opaque"):
        assert getattr(by_records, attr) == getattr(by_dicts, attr), attr


def test_the_window_stays_small_on_a_large_trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "CHUNK", 4096)
    monkeypatch.setattr(stream, "OUT_MAX", 8192)
    monkeypatch.setattr(stream, "BATCH_BYTES", 8192)
    path = tmp_path / "t.json.gz"
    with gzip.open(path, "wb") as f:
        synth.write(f, synth.SynthSpec(target_bytes=1_500_000, seed=4, weird_every=5))
    widest = 0
    more = stream.Window.more

    def watch(self: stream.Window, want: int = 1) -> bool:
        nonlocal widest
        got = more(self, want)
        widest = max(widest, len(self.buf))
        return got

    monkeypatch.setattr(stream.Window, "more", watch)
    written = pyio.BytesIO()
    ts = stream.TraceStream(path)
    result = perfetto_fix.plan(perfetto_fix.collect(ts))
    perfetto_fix.write_fixed(ts, result, written)
    assert result.moved and 0 < widest < 64 * 1024  # the file is 1.5 MB: never held whole
    assert json.loads(written.getvalue()) == _reference_fixed(path)


def _reference_fixed(path: Path) -> dict:
    doc = reference.load(path)
    reference.fix_doc(doc)
    return doc


@pytest.mark.parametrize("ext", [".json", ".json.gz"])
def test_fix_in_small_pieces_matches_reference(tmp_path: Path, ext: str, small_window: None) -> None:
    src = tmp_path / f"t{ext}"
    with (gzip.open(src, "wb") if ext.endswith(".gz") else open(src, "wb")) as f:
        synth.write(f, synth.SynthSpec(n_kernels=300, seed=9, weird_every=3))
    result = perfetto_fix.fix_file(src, tmp_path / f"fast{ext}")
    reference.fix(src, tmp_path / "ref.json")
    assert result.moved and reference.load(tmp_path / f"fast{ext}") == reference.load(tmp_path / "ref.json")


def test_truncated_gzip_is_refused_with_the_file_named(tmp_path: Path, small_window: None) -> None:
    path = tmp_path / "t.json.gz"
    path.write_bytes(gzip.compress(_dump(_events(random.Random(2), 200), 0))[:-100])
    with pytest.raises(io.TraceInputError) as err:
        for _ in stream.TraceStream(path).batches():
            pass
    text = err.value.render()
    assert str(path) in text and "truncated" in text and "copy it again" in text


def test_garbage_after_gzip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.json.gz"
    path.write_bytes(gzip.compress(b'{"traceEvents": []}') + b"junk")
    with pytest.raises(io.TraceInputError, match="trailing garbage"):
        for _ in stream.TraceStream(path).batches():
            pass
