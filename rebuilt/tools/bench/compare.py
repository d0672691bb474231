"""Compare two stored runs case by case and metric by metric.

A change counts (as asv counts it) only when it is statistically significant
(``stats.differs``) AND the ratio of medians is beyond ``factor`` (default 1.05) in
either direction. Whether it is better or worse depends on the metric: throughput
higher, latency and duration lower.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rebuilt.errors import InputError
from rebuilt.tools.bench import stats
from rebuilt.tools.bench.parse import finite

METRICS = {
    "one_batch": ("prefill_latency", "prefill_throughput", "median_decode_latency",
                  "median_decode_throughput", "total_latency", "overall_throughput"),
    "serving": ("request_throughput", "input_throughput", "output_throughput", "total_throughput",
                "mean_e2e_latency_ms", "median_e2e_latency_ms", "p99_e2e_latency_ms",
                "mean_ttft_ms", "median_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "median_tpot_ms",
                "mean_itl_ms", "median_itl_ms", "p99_itl_ms", "duration"),
}


def direction(metric: str) -> int:
    """+1 when higher is better (throughput), -1 when lower is better (latency, time), 0 unknown."""
    if "throughput" in metric:
        return 1
    if "latency" in metric or metric.endswith("_ms") or metric in ("duration",):
        return -1
    return 0


def unit(metric: str, kind: str) -> str:
    if metric.endswith("_ms"):
        return "ms"
    if metric == "request_throughput":
        return "req/s"
    if "throughput" in metric:
        return "token/s" if kind == "one_batch" else "tok/s"
    if "latency" in metric or metric == "duration":
        return "s"
    return ""


@dataclass(frozen=True)
class Row:
    metric: str
    case: str
    a: list[float]
    b: list[float]
    verdict: stats.Verdict | None
    change: str  # better | worse | same | ? | only A | only B

    @property
    def a_median(self) -> float | None:
        return stats.median(self.a) if self.a else None

    @property
    def b_median(self) -> float | None:
        return stats.median(self.b) if self.b else None

    @property
    def ratio(self) -> float | None:
        if self.a_median and self.b_median is not None:
            return self.b_median / self.a_median
        return None


def samples(run: dict, metric: str) -> dict[str, list[float]]:
    """Case id → the metric's value in every repeat (non-numbers left out)."""
    return {c["id"]: [r[metric] for r in c["repeats"] if finite(r.get(metric))] for c in run["cases"]}


def judge(a: list[float], b: list[float], metric: str, factor: float, alpha: float) -> tuple[stats.Verdict, str]:
    verdict = stats.differs(a, b, alpha)
    ratio = stats.median(b) / stats.median(a) if stats.median(a) else float("inf")
    big = ratio >= factor or ratio <= 1 / factor
    if verdict.significant is None:
        return verdict, "?" if big else "same"
    if not (verdict.significant and big):
        return verdict, "same"
    sign = direction(metric)
    if sign == 0:
        return verdict, "changed"
    return verdict, "better" if (ratio > 1) == (sign > 0) else "worse"


def compare(run_a: dict, run_b: dict, *, metrics: Iterable[str] | None = None,
            factor: float = 1.05, alpha: float = 0.05) -> list[Row]:
    kind_a, kind_b = run_a["spec"]["kind"], run_b["spec"]["kind"]
    if kind_a != kind_b:
        raise InputError(f"cannot compare a {kind_a} run with a {kind_b} run")
    if factor < 1:
        raise InputError("--factor must be >= 1 (1.05 means a 5% change)")
    rows = []
    for metric in metrics or METRICS[kind_a]:
        sa, sb = samples(run_a, metric), samples(run_b, metric)
        for case in list(dict.fromkeys([*sa, *sb])):
            a, b = sa.get(case, []), sb.get(case, [])
            if not a and not b:
                continue
            if not a or not b:
                rows.append(Row(metric, case, a, b, None, "only B" if not a else "only A"))
                continue
            verdict, change = judge(a, b, metric, factor, alpha)
            rows.append(Row(metric, case, a, b, verdict, change))
    return rows


def regressions(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.change == "worse"]


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.4g}" if abs(x) < 1000 else f"{x:,.0f}"


def format_table(rows: list[Row], kind: str, label_a: str, label_b: str, factor: float, alpha: float) -> str:
    """One table per metric: medians, ratio, test and verdict per case; a summary line last."""
    out = [f"A = {label_a}", f"B = {label_b}",
           f"a change counts when significant (alpha {alpha}) and beyond x{factor} of the median", ""]
    for metric in dict.fromkeys(r.metric for r in rows):
        sign = direction(metric)
        better = {1: "higher is better", -1: "lower is better"}.get(sign, "no better direction")
        u = unit(metric, kind)
        out.append(f"{metric}{f' ({u})' if u else ''}, {better}")
        table = [("case", "A median", "B median", "B/A", "n A/B", "test", "verdict")]
        for r in (r for r in rows if r.metric == metric):
            v = r.verdict
            test = "-" if v is None else v.method + (f" p={v.p:.3g}" if v.p is not None else "")
            ratio = f"{r.ratio:.3f}" if r.ratio is not None else "-"
            table.append((r.case, _num(r.a_median), _num(r.b_median), ratio, f"{len(r.a)}/{len(r.b)}", test, r.change))
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        for row in table:
            out.append("  " + "  ".join(cell.ljust(w) if i in (0, 5, 6) else cell.rjust(w)
                                        for i, (cell, w) in enumerate(zip(row, widths))).rstrip())
        out.append("")
    counts = {k: sum(1 for r in rows if r.change == k) for k in ("worse", "better", "same", "?", "changed")}
    summary = f"{counts['worse']} worse, {counts['better']} better, {counts['same']} unchanged"
    if counts["?"]:
        summary += f", {counts['?']} beyond the factor but not judged (fewer than 2 repeats)"
    if counts["changed"]:
        summary += f", {counts['changed']} changed (metric without a better direction)"
    out.append(summary)
    return "\n".join(out)


def describe(row: Row) -> dict[str, Any]:
    """A row as plain data (for --json)."""
    v = row.verdict
    return {"metric": row.metric, "case": row.case, "a": row.a, "b": row.b, "a_median": row.a_median,
            "b_median": row.b_median, "ratio": row.ratio, "change": row.change,
            "significant": None if v is None else v.significant, "test": None if v is None else v.method,
            "p": None if v is None else v.p}
