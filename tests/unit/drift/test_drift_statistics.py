"""PSI, KS and the reference histogram: exact values on hand-made cases, and behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.special import kolmogorov

from streamer.drift import (
    DriftInputError,
    ReferenceHistogram,
    ks_critical_value,
    ks_pvalue,
    ks_statistic,
    psi,
)
from streamer.drift.kolmogorov_smirnov import kolmogorov_survival

EDGES = [0.0, 1.0, 2.0]
HALVES = [0.5, 0.5]


# ----------------------------------------------------------------------------- PSI


def test_psi_hand_made() -> None:
    # q = (0.75, 0.25) against p = (0.5, 0.5): 0.25 ln 1.5 - 0.25 ln 0.5 = 0.25 ln 3.
    assert psi([0.1, 0.2, 0.3, 1.5], EDGES, HALVES) == pytest.approx(0.25 * math.log(3.0), 1e-15)


def test_psi_identical_distribution_is_zero() -> None:
    assert psi([0.5, 1.5], EDGES, HALVES) == 0.0


def test_psi_empty_bin_uses_eps() -> None:
    # Everything in bin 0: q = (1, eps), p = (0.5, 0.5).
    eps = 1e-4
    expected = (1 - 0.5) * math.log(1 / 0.5) + (eps - 0.5) * math.log(eps / 0.5)
    assert psi([0.2, 0.7], EDGES, HALVES, eps=eps) == pytest.approx(expected, rel=1e-12)
    assert psi([0.2, 0.7], EDGES, HALVES, eps=1e-2) < psi([0.2, 0.7], EDGES, HALVES, eps=eps)


def test_psi_outside_values_go_to_end_bins_and_nan_is_ignored() -> None:
    assert psi([-5.0, 9.0, math.nan, math.inf], EDGES, HALVES) == 0.0


def test_psi_of_nothing_is_nan() -> None:
    assert math.isnan(psi([], EDGES, HALVES))
    assert math.isnan(psi([math.nan], EDGES, HALVES))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(0.01, 1.0), min_size=2, max_size=8),
    st.lists(st.floats(-1.0, 3.0), min_size=1, max_size=50),
)
def test_psi_is_nonnegative(weights: list[float], sample: list[float]) -> None:
    props = np.array(weights) / sum(weights)
    edges = np.linspace(0.0, 2.0, len(weights) + 1)
    assert psi(sample, edges, props) >= 0.0


def test_psi_small_on_reference_sample_large_on_shifted() -> None:
    rng = np.random.default_rng(7)
    ref = ReferenceHistogram.from_sample(rng.gamma(2.0, 0.5, 200_000), bins=20)
    same = psi(rng.gamma(2.0, 0.5, 4096), ref.edges, ref.proportions)
    shifted = psi(rng.gamma(2.0, 0.5, 4096) * 1.5, ref.edges, ref.proportions)
    assert same < 0.02  # sampling noise ~ (bins - 1) / n
    assert shifted > 0.25  # a major shift by the usual reading


@pytest.mark.parametrize(
    ("edges", "props", "match"),
    [
        ([0.0], [], "at least 2"),
        ([0.0, 2.0, 1.0], HALVES, "increasing"),
        ([0.0, math.inf], [1.0], "finite"),
        (EDGES, [1.0], "one proportion per bin"),
        (EDGES, [0.7, 0.7], "sum to 1"),
        (EDGES, [1.5, -0.5], ">= 0"),
    ],
)
def test_bad_bins_are_rejected(edges: list[float], props: list[float], match: str) -> None:
    with pytest.raises(DriftInputError, match=match):
        psi([1.0], edges, props)
    with pytest.raises(DriftInputError, match=match):
        ks_statistic([1.0], edges, props)


def test_psi_eps_must_be_positive() -> None:
    with pytest.raises(DriftInputError, match="eps"):
        psi([1.0], EDGES, HALVES, eps=0.0)


# ----------------------------------------------------------------------------- KS


def test_ks_hand_made() -> None:
    # Reference: uniform on [0, 2], F(x) = x / 2.
    assert ks_statistic([0.5, 1.5], EDGES, HALVES) == 0.25
    assert ks_statistic([1.0], EDGES, HALVES) == 0.5
    assert ks_statistic([0.2, 0.2, 0.2, 0.2], EDGES, HALVES) == 0.9
    # Outside the edges the reference CDF is 0 (below) or 1 (above).
    assert ks_statistic([-1.0], EDGES, HALVES) == 1.0
    assert ks_statistic([5.0, 5.0], EDGES, HALVES) == 1.0


def test_ks_uneven_bins() -> None:
    # p = (0.8, 0.2) on [0, 1) and [1, 3]: F(0.5) = 0.4, F(2) = 0.9.
    assert ks_statistic([0.5, 2.0], [0.0, 1.0, 3.0], [0.8, 0.2]) == pytest.approx(0.4)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-0.5, 2.5), min_size=1, max_size=40))
def test_ks_agrees_with_scipy(sample: list[float]) -> None:
    ours = ks_statistic(sample, [0.0, 0.5, 2.0], [0.25, 0.75])
    reference_cdf = ReferenceHistogram(np.array([0.0, 0.5, 2.0]), np.array([0.25, 0.75])).cdf
    theirs = stats.kstest(sample, reference_cdf).statistic
    assert ours == pytest.approx(theirs, abs=1e-12)


def test_ks_of_nothing_is_nan() -> None:
    assert math.isnan(ks_statistic([math.nan], EDGES, HALVES))


@pytest.mark.parametrize("lam", [0.05, 0.3, 0.8, 1.0, 1.17, 1.18, 1.5, 2.0, 3.0])
def test_kolmogorov_survival_matches_scipy(lam: float) -> None:
    assert kolmogorov_survival(lam) == pytest.approx(float(kolmogorov(lam)), abs=1e-12)


def test_ks_pvalue_is_close_to_the_exact_one() -> None:
    for n in (10, 50, 400):
        for d in (0.05, 0.1, 0.2, 0.3):
            exact = float(stats.kstwo.sf(d, n))
            assert ks_pvalue(d, n) == pytest.approx(exact, abs=0.025)
            if 1e-4 <= exact <= 0.1:  # the range where a p-value decides something
                assert ks_pvalue(d, n) == pytest.approx(exact, rel=0.05)
    assert math.isnan(ks_pvalue(math.nan, 10))
    assert math.isnan(ks_pvalue(0.1, 0))


def test_ks_critical_value() -> None:
    for n in (20, 100, 4096):
        d = ks_critical_value(n, 0.05)
        assert ks_pvalue(d, n) == pytest.approx(0.05, rel=1e-4)
    assert ks_critical_value(4096, 0.01) == pytest.approx(1.62762 / (64.12 + 0.11 / 64), rel=1e-5)
    with pytest.raises(DriftInputError):
        ks_critical_value(0)
    with pytest.raises(DriftInputError):
        ks_critical_value(10, 1.5)


def test_ks_small_on_reference_sample_large_on_shifted() -> None:
    rng = np.random.default_rng(8)
    ref = ReferenceHistogram.from_sample(rng.normal(0.0, 1.0, 200_000), bins=20)
    same = ks_statistic(rng.normal(0.0, 1.0, 4096), ref.edges, ref.proportions)
    shifted = ks_statistic(rng.normal(0.5, 1.0, 4096), ref.edges, ref.proportions)
    assert same < 0.05
    assert shifted > 0.15


# ----------------------------------------------------------------------------- histogram


def test_reference_from_sample_quantile() -> None:
    ref = ReferenceHistogram.from_sample(np.arange(1.0, 9.0), bins=4)
    assert ref.edges.tolist() == [1.0, 2.75, 4.5, 6.25, 8.0]
    assert ref.proportions.tolist() == [0.25, 0.25, 0.25, 0.25]
    assert ref.bins == 4


def test_reference_from_sample_uniform() -> None:
    ref = ReferenceHistogram.from_sample([0.0, 0.0, 0.0, 4.0], bins=4, strategy="uniform")
    assert ref.edges.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert ref.proportions.tolist() == [0.75, 0.0, 0.0, 0.25]


def test_reference_of_a_binary_feature_has_one_bin_per_value() -> None:
    ref = ReferenceHistogram.from_sample([0.0] * 95 + [1.0] * 5, bins=20)
    assert ref.edges.tolist() == [-0.5, 0.5, 1.5]
    assert ref.proportions.tolist() == [0.95, 0.05]
    assert psi([0.0] * 80 + [1.0] * 20, ref.edges, ref.proportions) > 0.1


def test_reference_of_a_constant() -> None:
    ref = ReferenceHistogram.from_sample([2.0, 2.0, math.nan], bins=5)
    assert ref.edges.tolist() == [1.5, 2.5]
    assert ref.proportions.tolist() == [1.0]


def test_reference_from_card_like_object() -> None:
    class Card:
        bin_edges = (0.0, 1.0, 2.0)
        proportions = (0.25, 0.75)

    ref = ReferenceHistogram.from_reference(Card())
    assert ref.cdf([0.5, 1.5, 3.0]).tolist() == [0.125, 0.625, 1.0]
    assert ref.proportions_of([0.1, 1.1, 1.9, 7.0]).tolist() == [0.25, 0.75]


def test_reference_is_read_only_and_validated() -> None:
    ref = ReferenceHistogram(np.array(EDGES), np.array(HALVES))
    with pytest.raises(ValueError, match="read-only"):
        ref.edges[0] = 5.0
    with pytest.raises(DriftInputError):
        ReferenceHistogram(np.array([1.0, 0.0]), np.array([1.0]))
    with pytest.raises(DriftInputError, match="finite"):
        ReferenceHistogram.from_sample([math.nan])
    with pytest.raises(DriftInputError, match="strategy"):
        ReferenceHistogram.from_sample([1.0, 2.0], strategy="log")  # type: ignore[arg-type]
