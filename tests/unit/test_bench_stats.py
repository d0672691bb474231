"""Mann-Whitney U (checked against scipy's figures and a brute-force count) and the asv-style verdict."""

from __future__ import annotations

import itertools
import math

import pytest

from rebuilt.tools.bench import stats

# (a, b, U of a, two-sided p) from scipy.stats.mannwhitneyu(a, b, alternative="two-sided")
SCIPY = [
    ([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], 0.0, 0.007936507936507936),
    ([1.1, 2.3, 3.2, 4.8], [2.0, 5.5, 6.1, 7.7, 8.0], 3.0, 0.1111111111111111),
    ([1, 2, 2, 3, 3, 4], [3, 4, 4, 5, 5, 6], 3.0, 0.01810094873944969),  # ties: normal approximation
    (list(range(30)), [x + 7.5 for x in range(30)], 253.0, 0.003670893392450653),  # large: normal
    ([10.0, 10.1, 9.9, 10.05, 10.2], [10.02, 9.95, 10.1, 10.0, 10.15], 13.0, 1.0),
]


@pytest.mark.parametrize("a, b, u, p", SCIPY)
def test_mann_whitney_matches_scipy(a, b, u, p):
    got_u, got_p = stats.mann_whitney_u(a, b)
    assert got_u == u
    assert got_p == pytest.approx(p, rel=1e-9)


def test_exact_distribution_matches_brute_force():
    for n1, n2 in [(1, 1), (2, 3), (3, 3), (3, 4), (4, 2)]:
        counts = [0] * (n1 * n2 + 1)
        for picks in itertools.combinations(range(n1 + n2), n1):  # positions of sample a in the order
            rest = [i for i in range(n1 + n2) if i not in picks]
            counts[sum(1 for x in picks for y in rest if x > y)] += 1
        assert list(stats._u_counts(n1, n2)) == counts
        assert sum(counts) == math.comb(n1 + n2, n1)


def test_ranks_share_ties():
    assert stats.ranks([3.0, 1.0, 3.0, 2.0]) == [3.5, 1.0, 3.5, 2.0]


def test_differs_uses_the_test_only_when_it_can_reach_alpha():
    # 3 vs 3: the exact test cannot go below p = 0.1, so ranges decide
    assert stats.min_p(3, 3) == pytest.approx(0.1)
    v = stats.differs([1.0, 1.1, 1.2], [1.3, 1.4, 1.5])
    assert (v.significant, v.method) == (True, "ranges")
    v = stats.differs([1.0, 1.3, 1.2], [1.25, 1.4, 1.5])
    assert (v.significant, v.method) == (False, "ranges")
    # 5 vs 5: Mann-Whitney
    v = stats.differs([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert v.method == "mann-whitney" and v.significant and v.p == pytest.approx(2 / 252)
    v = stats.differs([1, 3, 5, 7, 9], [2, 4, 6, 8, 10])
    assert v.method == "mann-whitney" and not v.significant


def test_one_repeat_cannot_be_judged():
    v = stats.differs([1.0], [2.0, 2.1])
    assert v.significant is None and v.method == "n<2"
    assert stats.differs([1.0, float("nan")], [2.0, 2.1]).significant is None
