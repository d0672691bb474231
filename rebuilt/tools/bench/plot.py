"""Throughput and latency against batch size (or concurrency) for several runs, as a PNG.

matplotlib is imported inside ``plot`` with the Agg backend, so importing this module
costs nothing and no display is needed. Each run is a line (its median over repeats,
with a bar from the fastest to the slowest repeat); runs with several input/output
lengths get one line per length pair.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path

from rebuilt.core.fs import atomic_path
from rebuilt.errors import InputError
from rebuilt.tools.bench.compare import unit
from rebuilt.tools.bench.parse import finite

DEFAULT_METRICS = {
    "one_batch": ("prefill_throughput", "median_decode_throughput", "median_decode_latency", "total_latency"),
    "serving": ("output_throughput", "request_throughput", "median_ttft_ms", "median_itl_ms"),
}
X_AXIS = {"one_batch": ("batch_size", "batch size (requests)"),
          "serving": ("max_concurrency", "max concurrency (requests)")}
TITLES = {
    "prefill_throughput": "Prefill throughput", "median_decode_throughput": "Decode throughput (median step)",
    "overall_throughput": "Overall throughput", "prefill_latency": "Prefill latency",
    "median_decode_latency": "Decode step latency (median)", "total_latency": "Total latency",
    "output_throughput": "Output token throughput", "request_throughput": "Request throughput",
    "median_ttft_ms": "Time to first token (median)", "median_itl_ms": "Inter-token latency (median)",
    "median_e2e_latency_ms": "End-to-end latency (median)",
}


def series(run: dict, metric: str) -> dict[str, list[tuple[float, float, float, float]]]:
    """Line label suffix → [(x, median, min, max)] sorted by x, for one run and metric."""
    kind = run["spec"]["kind"]
    xkey = X_AXIS[kind][0]
    lines: dict[str, list] = {}
    for case in run["cases"]:
        p = case["params"]
        x = p.get(xkey)
        vals = [r[metric] for r in case["repeats"] if finite(r.get(metric))]
        if not finite(x) or not vals:
            continue
        if kind == "one_batch":
            group = f"il={p.get('input_len')} ol={p.get('output_len')}"
        else:
            group = f"in={p.get('random_input_len')} out={p.get('random_output_len')} rate={p.get('request_rate')}"
        lines.setdefault(group, []).append((x, statistics.median(vals), min(vals), max(vals)))
    return {g: sorted(pts) for g, pts in lines.items()}


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed); missing matplotlib → InputError."""
    try:
        import matplotlib
    except ImportError:
        raise InputError("matplotlib is not installed, so there is no plot (the text report has the numbers)",
                         hint="pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(plt, fig, output: Path | str) -> Path:
    """Lay out ``fig``, write it to ``output`` as a PNG in one step (never half-written) and close it."""
    fig.tight_layout()
    output = Path(output)
    with atomic_path(output) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return output


def plot(runs: Sequence[dict], output: Path | str, metrics: Sequence[str] | None = None,
         labels: Sequence[str] | None = None) -> Path:
    """Draw ``metrics`` (one panel each) for ``runs`` into ``output`` (PNG)."""
    if not runs:
        raise InputError("no runs to plot")
    kinds = {r["spec"]["kind"] for r in runs}
    if len(kinds) != 1:
        raise InputError("cannot plot one_batch and serving runs together")
    kind = kinds.pop()
    metrics = list(metrics or DEFAULT_METRICS[kind])
    labels = list(labels or [r["run_id"] for r in runs])
    plt = pyplot()
    cols = 2 if len(metrics) > 1 else 1
    rows = (len(metrics) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 4.2 * rows), squeeze=False)
    from matplotlib.ticker import NullLocator, ScalarFormatter

    drawn = 0
    for ax, metric in zip(axes.flat, metrics):
        ticks: set[float] = set()
        for label, run in zip(labels, runs):
            for group, pts in series(run, metric).items():
                xs = [p[0] for p in pts]
                med = [p[1] for p in pts]
                err = [[p[1] - p[2] for p in pts], [p[3] - p[1] for p in pts]]
                name = label if len(series(run, metric)) == 1 else f"{label} ({group})"
                ax.errorbar(xs, med, yerr=err, marker="o", capsize=3, label=name)
                ticks.update(xs)
                drawn += 1
        u = unit(metric, kind)
        ax.set_title(TITLES.get(metric, metric.replace("_", " ")))
        ax.set_xlabel(X_AXIS[kind][1])
        ax.set_ylabel(f"{metric} ({u})" if u else metric)
        ax.set_xscale("log", base=2)
        if ticks:
            ax.set_xticks(sorted(ticks))
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_locator(NullLocator())
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    if not drawn:
        plt.close(fig)
        raise InputError(f"nothing to plot: none of {', '.join(metrics)} has numbers in these runs")
    specs = sorted({r["spec"]["name"] for r in runs})
    fig.suptitle(f"{', '.join(specs)}: median of repeats, bars from min to max")
    return save_png(plt, fig, output)
