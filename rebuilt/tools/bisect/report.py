"""What a bisection found, as text (the `--log` table and the result) and as a plot of the metric per commit."""

from __future__ import annotations

import statistics
from pathlib import Path

from rebuilt.errors import InputError
from rebuilt.tools.bench.compare import unit
from rebuilt.tools.bench.plot import pyplot, save_png
from rebuilt.tools.bisect import search as bisect


def _spread(values: dict[str, list[float]]) -> str:
    parts = []
    for case, vals in values.items():
        if vals:
            med = statistics.median(vals)
            parts.append(f"{case}: median {med:.4g} (min {min(vals):.4g}, max {max(vals):.4g}, n={len(vals)})")
    return "; ".join(parts)


def _build_word(entry: bisect.Entry) -> str:
    return entry.builds[-1]["status"] if entry.builds else "-"


def table(state: bisect.State) -> str:
    """One line per commit in order: index, hash, verdict, how it was built, values, subject."""
    n = len(state.commits) - 1
    opts = state.options
    head = f"bisect {state.recipe}: {state.good}..{state.bad}, {n} commit(s), mode {state.mode}"
    if state.mode == "bench":
        head += f" ({opts['metric']} of {opts['spec']}, threshold {opts['threshold']:g}%)"
    elif state.mode == "cmd":
        head += f" ({opts['cmd']})"
    lines = [head, f"status: {state.status}" + (f" ({state.message})" if state.message else "")]
    rows = [("#", "commit", "verdict", "build", "value", "subject")]
    untested = 0
    for i in range(len(state.commits)):
        c, e = state.commit(i), state.entries.get(state.commits[i]["hash"])
        if not state.tested(i) and 0 < i < n:  # a run of untested commits: one line
            untested += 1
            if i + 1 < n and not state.tested(i + 1):
                continue
            rows.append(("", "", "", "", "", f"({untested} untested)"))
            untested = 0
            continue
        tag = " (good ref)" if i == 0 else " (bad ref)" if i == n else ""
        value = ""
        if e and e.values:
            meds = [statistics.median(v) for v in e.values.values() if v]
            value = ", ".join(f"{m:.4g}" for m in meds)
        rows.append((str(i), c.hash[:12], (e.verdict or "-") if e else "-", _build_word(e) if e else "-", value,
                     c.subject[:60] + tag))
    widths = [max(len(r[k]) for r in rows) for k in range(5)]
    for r in rows:
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(r[:5], widths)) + "  " + r[5])
    tested = [e for e in state.entries.values() if e.verdict]
    built = sum(1 for e in state.entries.values() for b in e.builds if b["status"] in ("built", "failed"))
    lines.append(f"{len(tested)} commit(s) tested, {built} build(s) compiled (at most "
                 f"{bisect.max_tests(n)} when every commit decides)")
    return "\n".join(lines)


def result(state: bisect.State) -> dict:
    """The first bad commit and its parent with their measurements, as plain data."""
    out = bisect.outcome(state.verdicts())

    def describe(i: int) -> dict:
        c, e = state.commit(i), state.entry(i)
        return {"index": i, "hash": c.hash, "subject": c.subject, "date": c.date, "verdict": e.verdict,
                "note": e.note, "values": e.values}

    return {"first_bad": describe(out.first_bad), "parent": describe(out.parent),
            "undecided": [describe(i) for i in out.undecided]}


def result_text(state: bisect.State) -> str:
    r = result(state)
    bad, parent = r["first_bad"], r["parent"]
    lines = []
    if r["undecided"]:
        lines.append(f"the first bad commit is one of these {len(r['undecided']) + 1} (the skipped or unclear ones "
                     f"could not be tested):")
        for u in r["undecided"]:
            lines.append(f"  {u['hash']} {u['subject']} ({u['verdict']}: {u['note']})")
        lines.append(f"  {bad['hash']} {bad['subject']} (bad)")
    else:
        lines.append(f"first bad commit: {bad['hash']}")
    lines += [f"  subject  {bad['subject']}", f"  date     {bad['date']}", f"  verdict  {bad['note']}"]
    if bad["values"]:
        lines.append(f"  measured {_spread(bad['values'])}")
    lines.append(f"its parent (last good): {parent['hash']} {parent['subject']} ({parent['date']})")
    if parent["values"]:
        lines.append(f"  measured {_spread(parent['values'])}")
    skipped = [(state.commit(i), state.entry(i)) for i, v in enumerate(state.verdicts()) if v in ("skip", "unclear")]
    if skipped:
        lines.append("skipped or unclear: " + ", ".join(f"{c.hash[:12]} ({e.verdict}: {e.note[:80]})"
                                                       for c, e in skipped))
    return "\n".join(lines)


def plot(state: bisect.State, output: Path | str) -> Path:
    """The metric (median, bars min..max) against commit order, colored by verdict; the first bad one marked."""
    points = [(i, state.entries[c["hash"]]) for i, c in enumerate(state.commits)
              if c["hash"] in state.entries and state.entries[c["hash"]].values]
    if not points:
        raise InputError("nothing to plot: no commit has measurements")
    plt = pyplot()

    colors = {"good": "tab:green", "bad": "tab:red", "unclear": "tab:gray", "skip": "tab:gray"}
    fig, ax = plt.subplots(figsize=(9, 4.5))
    cases = list(dict.fromkeys(case for _, e in points for case in e.values))
    markers = "osD^v<>"
    for k, case in enumerate(cases):
        for i, e in points:
            vals = e.values.get(case)
            if not vals:
                continue
            med = statistics.median(vals)
            ax.errorbar([i], [med], yerr=[[med - min(vals)], [max(vals) - med]], marker=markers[k % len(markers)],
                        color=colors.get(e.verdict or "", "tab:blue"), capsize=3)
    skipped = [i for i, v in enumerate(state.verdicts()) if v == "skip"]
    for k, i in enumerate(skipped):
        ax.axvline(i, color="tab:gray", linestyle=":", alpha=0.7, label="skipped (no build or no result)" if k == 0
                   else None)
    out = bisect.outcome(state.verdicts())
    if state.status == "done":
        ax.axvline(out.first_bad - 0.5, color="tab:red", linestyle="--", alpha=0.6,
                   label=f"first bad {state.commit(out.first_bad).hash[:12]}")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    metric = state.options.get("metric") or "value"
    ax.set_xlabel(f"commit order ({state.good} = 0 .. {state.bad} = {len(state.commits) - 1})")
    u = unit(metric, "one_batch")
    ax.set_ylabel(f"{metric} ({u})" if u else metric)
    ax.set_title(f"{state.recipe}: {metric} per commit (median, bars min..max; "
                 f"green good, red bad, gray unclear){' — cases: ' + ', '.join(cases) if len(cases) > 1 else ''}",
                 fontsize="small")
    ax.grid(True, alpha=0.3)
    return save_png(plt, fig, output)
