"""The same algorithms written the obvious way: ``json.load`` → algorithm → ``json.dump``.

Not used by the tasks. ``perf/trace_speed.py`` times it against the fast path, and
the tests use it as an oracle: both paths must produce the same JSON value.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from rebuilt.tools.trace import merge as merge_mod
from rebuilt.tools.trace import perfetto_fix as fix_mod


def load(path: Path | str) -> object:
    path = Path(path)
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    with opener(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def dump(doc: object, path: Path | str) -> None:
    path = Path(path)
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as f:
            json.dump(doc, f)
    else:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f)


def fix_doc(doc: object) -> fix_mod.Plan:
    """Apply the perfetto fix to a loaded trace in place."""
    events = doc["traceEvents"] if isinstance(doc, dict) else doc
    col = fix_mod.Collector()
    for i, ev in enumerate(events):
        col.add(i, ev if type(ev) is dict else None)
    result = fix_mod.plan(col)
    for key, change in result.changes.items():
        change.apply(events[key])
    events.extend(result.new_events)
    return result


def fix(src: Path | str, out: Path | str) -> fix_mod.Plan:
    doc = load(src)
    result = fix_doc(doc)
    dump(doc, out)
    return result


def merge(group: merge_mod.Group, out: Path | str, opts: merge_mod.Options) -> dict:
    """Merge one group of rank files with json.load/json.dump around the same mapping."""
    docs = [load(r.path) for r in group.ranks]
    scans = []
    for doc in docs:
        events = doc["traceEvents"] if isinstance(doc, dict) else doc
        scan = merge_mod.RankScan()
        plan = None
        if opts.fix:
            plan = fix_doc_plan(events)
        for ev in events:
            scan.add(ev)
        scans.append((scan, plan))
    needs_scan = opts.window_ms is not None or opts.gpu_only
    merger = merge_mod.Merger(group, opts, [s for s, _ in scans] if needs_scan else None)
    out_events = []
    for rank, doc, (_scan, plan) in zip(group.ranks, docs, scans):
        events = doc["traceEvents"] if isinstance(doc, dict) else doc
        if plan is not None:
            for key, change in plan.changes.items():
                change.apply(events[key])
            events = events + plan.new_events
        mapper = merger.rank(rank)
        mapper.members = {k: v for k, v in doc.items() if k != "traceEvents"} if isinstance(doc, dict) else {}
        for ev in events:
            mapped = mapper.map(ev)
            if mapped is not None:
                out_events.append(mapped)
        out_events.extend(mapper.finish())
    merger.check_kept()
    result = {"traceEvents": out_events}
    result.update(merger.top_level())
    dump(result, out)
    return result


def fix_doc_plan(events: list) -> fix_mod.Plan:
    col = fix_mod.Collector()
    for i, ev in enumerate(events):
        col.add(i, ev if type(ev) is dict else None)
    return fix_mod.plan(col)
