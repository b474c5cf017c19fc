"""Exact funnel limits (pipeline/stats.py exact_funnel_limits) against scipy's binomial and a
quadrature of the random-effects mixture worked in the test."""

from __future__ import annotations

import math

import pytest
from scipy import integrate, stats

from pipeline.stats import Z95, count_tails, exact_funnel_limits


def reference_limits(pmf: list[float], n: int, tail: float):
    """Counts within (both tails >= tail) and the interpolated limits, from a pmf by brute force."""
    cdf = [sum(pmf[: r + 1]) for r in range(n + 1)]
    sf = [sum(pmf[r:]) for r in range(n + 1)]
    within = [r for r in range(n + 1) if cdf[r] >= tail and sf[r] >= tail]
    low, high = within[0], within[-1]
    before = cdf[low - 1] if low > 0 else 0.0
    after = sf[high + 1] if high < n else 0.0
    lower = (low - (cdf[low] - tail) / (cdf[low] - before)) / n
    upper = (high + (sf[high] - tail) / (sf[high] - after)) / n
    return (low, high), (max(lower, 0.0), min(upper, 1.0))


def test_n11_around_634_exact_against_scipy_binomial():
    # Binomial(11, 0.634): P(R <= 3) = 0.016461 < 0.025 <= P(R <= 4) = 0.063369, so 4 is the
    # lowest count within; P(R >= 10) = 1 - 0.951103 = 0.048897 >= 0.025 > P(R >= 11) = 0.006652,
    # so 10 is the highest. Lower line (Spiegelhalter's interpolation):
    # alpha = (0.063369 - 0.025) / (0.063369 - 0.016461) = 0.817964 -> (4 - 0.817964)/11 = 0.289276
    # Upper line, the same rule on the upper tail P(R >= r):
    # beta = (0.048897 - 0.025) / (0.048897 - 0.006652) = 0.565675 -> (10 + 0.565675)/11 = 0.960516
    binomial = stats.binom(11, 0.634)
    assert binomial.cdf(3) < 0.025 <= binomial.cdf(4)
    assert binomial.sf(9) >= 0.025 > binomial.sf(10)  # sf(9) = P(R >= 10)
    funnel = exact_funnel_limits(0.634, 11)
    assert funnel.counts95 == (4, 10)
    assert funnel.limits95 == pytest.approx((0.289276, 0.960516), abs=1e-5)
    assert funnel.limits95[0] == pytest.approx(0.289, abs=5e-4)  # the "about 28.9%"
    # the normal approximation around the 63.357% gives 34.9-91.8%:
    # 0.633569 -/+ 1.959964 * sqrt(0.232159 / 11) = 0.633569 -/+ 1.959964 * 0.145277 = -/+ 0.284738
    half = 1.959964 * math.sqrt(0.6335692 * (1 - 0.6335692) / 11)
    assert (0.6335692 - half, 0.6335692 + half) == pytest.approx((0.348831, 0.918307), abs=1e-5)
    # labels follow the tail rule: 10/11 has an upper tail of 4.9% >= 2.5%, so it is within
    # (a line at 86.9%, interpolated on P(R <= r) for the upper limit too, would call it above)
    assert [funnel.place(r)[0] for r in (3, 4, 10, 11)] == ["below", "within", "within", "above"]
    # 99.8%: P(R <= 1) = 0.000317 < 0.001 <= P(R <= 2) = 0.002922; P(R >= 11) = 0.0067 >= 0.001
    assert funnel.counts998 == (2, 11) and funnel.limits998[1] == 1.0
    assert funnel.place(1) == ("below", "below") and funnel.place(2) == ("below", "within")
    pmf = [float(binomial.pmf(r)) for r in range(12)]
    for tail, counts, limits in ((0.025, funnel.counts95, funnel.limits95),
                                 (0.001, funnel.counts998, funnel.limits998)):
        expected_counts, expected_limits = reference_limits(pmf, 11, tail)
        assert counts == expected_counts
        assert limits == pytest.approx(expected_limits, abs=1e-9)


@pytest.mark.parametrize(("p0", "n"), [(0.5, 1), (0.2, 7), (0.538, 48), (0.9, 120), (0.05, 300)])
def test_binomial_limits_are_scipy_quantiles(p0, n):
    funnel = exact_funnel_limits(p0, n)
    for tail, counts in ((0.025, funnel.counts95), (0.001, funnel.counts998)):
        assert counts[0] == int(stats.binom.ppf(tail, n, p0))  # least r with P(R <= r) >= tail
        # the highest r with P(R >= r) = sf(r - 1) >= tail
        assert stats.binom.sf(counts[1] - 1, n, p0) >= tail
        assert counts[1] == n or stats.binom.sf(counts[1], n, p0) < tail
    # each line lies between the last count within and the first count outside
    (low, high), (r_low, r_high) = funnel.limits95, funnel.counts95
    assert low == 0 or (r_low - 1) / n < low <= r_low / n
    assert high == 1 or r_high / n <= high < (r_high + 1) / n


def test_limits_mirror_when_response_and_non_response_swap():
    for p0, n, tau2 in ((0.634, 11, None), (0.3, 57, None), (0.55, 40, 0.05)):
        funnel, mirror = exact_funnel_limits(p0, n, tau2), exact_funnel_limits(1 - p0, n, tau2)
        assert funnel.limits95 == pytest.approx((1 - mirror.limits95[1], 1 - mirror.limits95[0]),
                                                abs=1e-6)
        assert funnel.counts998 == (n - mirror.counts998[1], n - mirror.counts998[0])


def mixture_pmf(r: int, n: int, p0: float, tau2: float) -> float:
    """P(R = r) with R | theta ~ Bin(n, expit theta), theta ~ N(logit p0, tau2), by quad."""
    mu, tau = math.log(p0 / (1 - p0)), math.sqrt(tau2)

    def integrand(theta: float) -> float:
        return stats.binom.pmf(r, n, 1 / (1 + math.exp(-theta))) * stats.norm.pdf(theta, mu, tau)

    return integrate.quad(integrand, mu - 12 * tau, mu + 12 * tau, limit=200,
                          epsabs=1e-13)[0]


def test_widened_limits_are_the_random_effects_mixture_by_quadrature():
    p0, n, tau2 = 0.55, 40, 0.05
    pmf = [mixture_pmf(r, n, p0, tau2) for r in range(n + 1)]
    assert sum(pmf) == pytest.approx(1.0, abs=1e-9)
    cdf, sf = count_tails(p0, n, tau2)
    for r in (10, 15, 22, 30, 34):
        assert cdf(r) == pytest.approx(sum(pmf[: r + 1]), abs=1e-9)
        assert sf(r) == pytest.approx(sum(pmf[r:]), abs=1e-9)
    funnel = exact_funnel_limits(p0, n, tau2)
    for tail, counts, limits in ((0.025, funnel.counts95, funnel.limits95),
                                 (0.001, funnel.counts998, funnel.limits998)):
        expected_counts, expected_limits = reference_limits(pmf, n, tail)
        assert counts == expected_counts
        assert limits == pytest.approx(expected_limits, abs=1e-7)
    plain = exact_funnel_limits(p0, n)
    assert funnel.limits95[0] < plain.limits95[0] and funnel.limits95[1] > plain.limits95[1]


def test_large_n_approaches_spiegelhalters_logit_normal_limits():
    # n = 4000, p0 = 0.5383, tau2 = 0.01626: logit variance 1/(4000*0.5383*0.4617) + 0.01626
    # = 0.0010060 + 0.01626 = 0.017266, sd 0.131399; limits expit(0.153459 -/+ 1.96*0.131399)
    p0, n, tau2 = 0.5383, 4000, 0.01626
    sd = math.sqrt(1 / (n * p0 * (1 - p0)) + tau2)
    mu = math.log(p0 / (1 - p0))
    expected = (1 / (1 + math.exp(-(mu - Z95 * sd))), 1 / (1 + math.exp(-(mu + Z95 * sd))))
    assert exact_funnel_limits(p0, n, tau2).limits95 == pytest.approx(expected, abs=2e-3)


def test_tau2_zero_is_plain_binomial_and_bad_input_is_refused():
    assert exact_funnel_limits(0.4, 30, 0.0) == exact_funnel_limits(0.4, 30, None)
    assert exact_funnel_limits(0.4, 0) is None
    with pytest.raises(ValueError, match="proportion"):
        exact_funnel_limits(1.2, 30)
    with pytest.raises(ValueError, match="successes"):
        exact_funnel_limits(0.4, 30).place(31)


@pytest.mark.parametrize(("p0", "tau2"), [(0.538, 0.0163), (0.05, 1.0), (0.6, None), (0.97, None)])
def test_search_start_never_changes_the_limits(p0, tau2):
    # the counts by scanning every r (no search at all): the lowest r with P(R <= r) >= tail
    # and the highest with P(R >= r) >= tail; a `near` funnel (good, poor or absurd) only moves
    # where the search starts, so the result is the same to the last bit
    n = 90
    cdf, sf = count_tails(p0, n, tau2)
    for tail, attr in ((0.025, "counts95"), (0.001, "counts998")):
        scanned = (min(r for r in range(n + 1) if cdf(r) >= tail),
                   max(r for r in range(n + 1) if sf(r) >= tail))
        assert getattr(exact_funnel_limits(p0, n, tau2), attr) == scanned
    plain = exact_funnel_limits(p0, n, tau2)
    for near_n in (89, 91, 2, 5000):
        near = exact_funnel_limits(p0, near_n, tau2)
        assert exact_funnel_limits(p0, n, tau2, near=near) == plain
    assert exact_funnel_limits(p0, n, tau2, near=exact_funnel_limits(1 - p0, 7, tau2)) == plain
