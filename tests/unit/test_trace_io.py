"""The byte-level trace reader: event boundaries, batches, spans, gzip, bad files."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from rebuilt.tools.trace import io

NASTY = ['},{', '}]', '{"ph": "X"}', '\\', '"', '\\"', '}\n,\n{', 'é中', '\u0000', '\t', '[{', ']]}']


def _events(rng: random.Random, n: int) -> list[dict]:
    out = []
    for i in range(n):
        name = "".join(rng.choice(NASTY + ["a", " ", "{", "}", ","]) for _ in range(rng.randint(0, 8)))
        ev = {"ph": rng.choice("XsfMi"), "name": name, "pid": rng.randint(0, 3), "tid": rng.randint(0, 9),
              "ts": round(rng.random() * 1e6, 3), "dur": rng.randint(0, 50)}
        if rng.random() < 0.5:
            ev["args"] = {"nested": [{"a": name}, {"b": [name, {"c": "}]"}]}], name: i}
        out.append(ev)
    return out


def _dump(events: list[dict], style: int, bare: bool = False) -> bytes:
    if style == 0:
        text = json.dumps(events)
    elif style == 1:
        text = json.dumps(events, indent=2, ensure_ascii=False)
    else:
        text = "[\n" + ",\n".join(json.dumps(e, separators=(",", ":"), ensure_ascii=False) for e in events) + "\n]"
    if bare:
        return text.encode()
    return ('{"before": {"x": "},{"}, "traceEvents": ' + text + ', "after": [1, {"y": "]"}]}').encode()


@pytest.mark.parametrize("seed", range(6))
def test_events_and_batches_match_json_on_nasty_strings(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    events = _events(rng, 300)
    data = _dump(events, seed % 3, bare=seed == 5)
    tf = io.TraceFile(tmp_path / "t.json", data)
    got = list(tf.events())
    assert [e.value for e in got] == events
    for e, want in zip(got, events):  # each span is exactly one event's bytes
        assert json.loads(data[e.start:e.end]) == want
    if seed != 5:
        assert tf.member("before") == {"x": "},{"} and tf.member("after") == [1, {"y": "]"}]
    for size in (1, 64, 700, 1 << 20):  # tiny batches put cuts inside strings and nested arrays
        batches = list(io.batch_scan(data, tf.array_open, tf.path, size=size))
        assert [v for _, _, vals in batches for v in vals] == events
    tf2 = io.TraceFile(tmp_path / "t.json", data)
    values = [v for b in tf2.batches() for v in b.values]
    assert values == events
    spans = [sp for s, e, first, count in tf2.batch_table for sp in tf2.spans(s, e, count)]
    assert spans == [(e.start, e.end) for e in got]
    assert tf2.last_event_end == got[-1].end and tf2.event_count == len(events)


def test_invalid_event_is_kept_opaque_and_the_rest_parses(tmp_path: Path) -> None:
    # torch.profiler writes record_function names with unescaped quotes
    data = (b'{"traceEvents": [{"ph": "X", "name": "a"},\n'
            b'{"ph": "X", "name": "my {block} "quoted"", "ts": 1},\n{"ph": "i", "name": "z"}]}')
    tf = io.TraceFile(tmp_path / "t.json", data)
    got = list(tf.events())
    assert [e.value for e in got] == [{"ph": "X", "name": "a"}, None, {"ph": "i", "name": "z"}]
    assert data[got[1].start:got[1].end].startswith(b'{"ph": "X", "name": "my {block}')
    assert [v for b in io.TraceFile(tmp_path / "t.json", data).batches() for v in b.values] == \
        [e.value for e in got]


def test_empty_event_list_and_key_order(tmp_path: Path) -> None:
    tf = io.TraceFile(tmp_path / "t.json", b'\xef\xbb\xbf {"traceEvents": [ ], "deviceProperties": []}')
    assert list(tf.events()) == [] and tf.last_event_end == -1
    assert tf.member("deviceProperties") == []


def test_nan_falls_back_to_the_stdlib_and_64_bit_ints_are_exact(tmp_path: Path) -> None:
    data = (b'{"traceEvents": [{"a": NaN}, {"b": 18446744073709551615, "c": -9223372036854775808}, '
            b'{"d": 1.5e300}]}')
    values = [v for b in io.TraceFile(tmp_path / "t.json", data).batches() for v in b.values]
    assert values[0]["a"] != values[0]["a"]  # NaN, read by json
    assert values[1] == {"b": 18446744073709551615, "c": -9223372036854775808}
    assert type(values[1]["b"]) is int and values[2] == {"d": 1.5e300}
    assert io.dumps(values[0]) == b'{"a":null}'  # rewritten events carry valid JSON


@pytest.mark.parametrize("members", [1, 3])
def test_gzip_is_read_by_magic_and_members_are_joined(tmp_path: Path, members: int) -> None:
    raw = _dump(_events(random.Random(1), 50), 1)
    cut = [raw[i * len(raw) // members:(i + 1) * len(raw) // members] for i in range(members)]
    path = tmp_path / "t.json"  # no .gz suffix on purpose
    path.write_bytes(b"".join(gzip.compress(c) for c in cut))
    assert bytes(io.read_bytes(path)) == raw


def test_truncated_gzip_names_the_file_and_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "t.json.gz"
    path.write_bytes(gzip.compress(_dump(_events(random.Random(2), 200), 0))[:-100])
    with pytest.raises(io.TraceInputError) as err:
        io.TraceFile(path)
    text = err.value.render()
    assert str(path) in text and "truncated" in text and "copy it again" in text


@pytest.mark.parametrize("content, words", [
    (b"", "empty"),
    (b"hello world", "does not start with a JSON object"),
    (b'{"schemaVersion": 1}', "no traceEvents"),
    (b'{"traceEvents": {"a": 1}}', "not a list"),
    (b'{"traceEvents": [1, 2]}', "not a JSON object"),
    (b'{"traceEvents": [{"ph": "X"}, {"ph": "X", "name": "cut', "cut short"),
    (b'{"traceEvents": [{"ph": "X"}', "cut short"),
])
def test_not_a_trace(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(content)
    with pytest.raises(io.TraceInputError) as err:
        tf = io.TraceFile(path)
        for _ in tf.batches():
            pass
    assert str(path) in str(err.value) and words in err.value.render()


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(io.TraceInputError, match="no such file"):
        io.TraceFile(tmp_path / "nope.json")
    with pytest.raises(io.TraceInputError, match="folder"):
        io.TraceFile(tmp_path)


def test_default_output_names() -> None:
    assert io.default_output(Path("/d/x.json.gz"), "perfetto") == Path("/d/x.perfetto.json.gz")
    assert io.default_output(Path("/d/x.json"), "perfetto") == Path("/d/x.perfetto.json")
    assert io.default_output(Path("/d/1-TP-0.trace.json.gz"), "perfetto") == Path("/d/1-TP-0.trace.perfetto.json.gz")


def test_output_is_atomic_and_never_an_input(tmp_path: Path) -> None:
    out = tmp_path / "o.json.gz"
    with pytest.raises(RuntimeError):
        with io.open_output(out) as fp:
            fp.write(b"partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with io.open_output(out) as fp:
        fp.write(b"{}")
    assert gzip.decompress(out.read_bytes()) == b"{}"
    with pytest.raises(io.InputError, match="refusing to overwrite"):
        io.check_not_input(out, [tmp_path / "." / "o.json.gz"])
