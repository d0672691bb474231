"""Statistics for comparing repeats, standard library only.

``differs`` follows asv: with enough repeats for the test to be able to reach ``alpha``,
a two-sided Mann-Whitney U test (exact when there are no ties and the samples are
small, else the normal approximation with tie and continuity corrections); with fewer
repeats, the two samples differ only when their ranges (min..max) do not overlap —
for 3 against 3 that is exactly U = 0, the most the test could say. Fewer than two
repeats on a side cannot be judged (``None``).
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

EXACT_LIMIT = 50  # exact U distribution when n1 + n2 is at most this and there are no ties


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


@functools.cache
def _u_counts(n1: int, n2: int) -> tuple[int, ...]:
    """How many orderings give each U = 0..n1·n2 (the Mann-Whitney null distribution)."""
    if n1 == 0 or n2 == 0:
        return (1,)
    a = _u_counts(n1 - 1, n2)  # the largest value is from the first sample: U gains n2
    b = _u_counts(n1, n2 - 1)
    out = [0] * (n1 * n2 + 1)
    for u, c in enumerate(a):
        out[u + n2] += c
    for u, c in enumerate(b):
        out[u] += c
    return tuple(out)


def mann_whitney_u(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """(U of ``a``, two-sided p-value)."""
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        raise ValueError("both samples need values")
    r = ranks(list(a) + list(b))
    u1 = sum(r[:n1]) - n1 * (n1 + 1) / 2
    u_small = min(u1, n1 * n2 - u1)
    tied = len(set(r)) < len(r)
    if not tied and n1 + n2 <= EXACT_LIMIT:
        counts = _u_counts(n1, n2)
        p = 2 * sum(counts[: int(u_small) + 1]) / math.comb(n1 + n2, n1)
        return u1, min(1.0, p)
    n = n1 + n2
    tie_term = sum(t**3 - t for t in _tie_sizes(r))
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))))
    if sigma == 0:
        return u1, 1.0
    z = (abs(u1 - n1 * n2 / 2) - 0.5) / sigma
    return u1, min(1.0, 2 * (1 - statistics.NormalDist().cdf(max(z, 0.0))))


def _tie_sizes(r: Sequence[float]) -> list[int]:
    counts: dict[float, int] = {}
    for x in r:
        counts[x] = counts.get(x, 0) + 1
    return [c for c in counts.values() if c > 1]


def min_p(n1: int, n2: int) -> float:
    """The smallest two-sided p-value the exact test can give for these sample sizes."""
    return min(1.0, 2 / math.comb(n1 + n2, n1))


@dataclass(frozen=True)
class Verdict:
    significant: bool | None  # None: too few repeats to tell
    method: str  # mann-whitney | ranges | n<2
    p: float | None = None


def differs(a: Sequence[float], b: Sequence[float], alpha: float = 0.05) -> Verdict:
    """Whether two samples of repeats differ (see the module docstring)."""
    a = [x for x in a if not math.isnan(x)]
    b = [x for x in b if not math.isnan(x)]
    if len(a) < 2 or len(b) < 2:
        return Verdict(None, "n<2")
    if min_p(len(a), len(b)) < alpha:
        _, p = mann_whitney_u(a, b)
        return Verdict(p < alpha, "mann-whitney", p)
    return Verdict(max(a) < min(b) or max(b) < min(a), "ranges")
