"""A forecast's expected value from its quantiles."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from streamer.groups import expected as expected_module
from streamer.groups.errors import GroupError
from streamer.groups.expected import expectation_weights, expected_kwh


def test_swanson_rule_for_p10_p50_p90() -> None:
    quantiles = np.array([[[0.1, 0.2, 0.9], [1.0, 1.0, 1.0]], [[-2.0, -1.0, 0.5], [0, 0, 0]]])
    got = expected_kwh(quantiles, (0.1, 0.5, 0.9))
    assert got.shape == (2, 2)
    np.testing.assert_allclose(got[0], [0.03 + 0.08 + 0.27, 1.0])
    np.testing.assert_allclose(got[1], [-0.6 - 0.4 + 0.15, 0.0])
    # a right-skewed forecast's expected value lies above its median: medians do not add up
    assert got[0, 0] > 0.2


@pytest.mark.parametrize(
    "levels",
    [(0.05, 0.25, 0.5, 0.75, 0.95), (0.1, 0.9), (0.2, 0.5, 0.6), (0.01, 0.3, 0.5, 0.99)],
)
def test_general_levels_integrate_the_quantile_function(levels: tuple[float, ...]) -> None:
    weights = expectation_weights(levels)
    assert weights.sum() == pytest.approx(1.0)
    # exact for a linear quantile function (a uniform distribution on [a, a + b])
    tau = np.asarray(levels)
    assert float(expected_kwh(3.0 + 2.0 * tau, levels)) == pytest.approx(4.0)


def test_trapezoid_rule_for_the_swanson_levels_would_be_close_to_swanson() -> None:
    from streamer.groups.expected import _trapezoid_weights

    np.testing.assert_allclose(
        _trapezoid_weights(np.array([0.1, 0.5, 0.9])), [0.3125, 0.375, 0.3125]
    )
    np.testing.assert_allclose(expectation_weights((0.1, 0.5, 0.9)), [0.3, 0.4, 0.3])


def test_p50_alone_is_its_own_centre() -> None:
    np.testing.assert_array_equal(expected_kwh([[0.4], [1.5]], (0.5,)), [0.4, 1.5])


def test_nan_in_nan_out_row_by_row() -> None:
    got = expected_kwh([[0.1, np.nan, 0.3], [0.1, 0.2, 0.3]], (0.1, 0.5, 0.9))
    assert np.isnan(got[0]) and got[1] == pytest.approx(0.2)


def test_the_expected_value_is_linear_so_member_sums_add_up() -> None:
    rng = np.random.default_rng(3)
    members = np.sort(rng.gamma(2.0, 0.3, (50, 3)), axis=1)
    levels = (0.1, 0.5, 0.9)
    assert expected_kwh(members, levels).sum() == pytest.approx(
        float(expected_kwh(members.sum(axis=0), levels))
    )


@pytest.mark.parametrize("levels", [(), (0.5, 0.5), (0.0, 0.5), (0.9, 0.1), (0.5, 1.2)])
def test_bad_levels_are_refused(levels: tuple[float, ...]) -> None:
    with pytest.raises(GroupError, match="levels"):
        expected_kwh(np.zeros(len(levels) or 1), levels)


def test_a_shape_that_does_not_fit_the_levels_is_refused() -> None:
    with pytest.raises(GroupError, match="one value per level"):
        expected_kwh(np.zeros((4, 2)), (0.1, 0.5, 0.9))


def test_docstring_examples_run() -> None:
    result = doctest.testmod(expected_module)
    assert result.attempted >= 3 and result.failed == 0
