"""ForecastBatch, the horizon calendar, gap filling and BLAS thread limiting."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import streamer.forecast.calendar as calendar_module
from streamer.forecast import ForecastBatch, ForecastError, ForecastInputError, horizon_end_ms
from streamer.forecast.blas_threads import single_threaded_blas
from streamer.forecast.inputs import fill_gaps
from streamer.forecast.row_fitting import gaussian_quantiles

LEVELS = (0.1, 0.5, 0.9)


def test_horizon_end_ms() -> None:
    ends = np.array([0, 1_700_000_000_000], dtype=np.int64)
    out = horizon_end_ms(ends, 3, 900)
    assert out.dtype == np.int64 and out.shape == (2, 3)
    np.testing.assert_array_equal(out[0], [900_000, 1_800_000, 2_700_000])
    np.testing.assert_array_equal(out[1] - ends[1], [900_000, 1_800_000, 2_700_000])


def test_horizon_end_ms_refuses_bad_input() -> None:
    with pytest.raises(ForecastInputError, match="integer"):
        horizon_end_ms(np.array([1.5]), 3, 900)
    with pytest.raises(ForecastInputError, match="positive"):
        horizon_end_ms(np.array([1], dtype=np.int64), 0, 900)


def test_docstring_examples_run() -> None:
    assert doctest.testmod(calendar_module).failed == 0


def _batch(point: np.ndarray, quant: np.ndarray, valid: list[bool]) -> ForecastBatch:
    return ForecastBatch(point, quant, LEVELS, np.array(valid))


def test_batch_checks_its_invariants() -> None:
    point = np.ones((2, 4))
    quant = np.ones((2, 4, 3))
    batch = _batch(point, quant, [True, True])
    assert batch.rows == 2 and batch.horizon_slots == 4
    with pytest.raises(ForecastError, match=r"\(B, H, Q\)"):
        _batch(point, np.ones((2, 4, 2)), [True, True])
    with pytest.raises(ForecastError, match="valid must be"):
        _batch(point, quant, [True])
    partial = point.copy()
    partial[0, 1] = np.nan
    with pytest.raises(ForecastError, match="all finite when valid"):
        _batch(partial, quant, [True, True])
    with pytest.raises(ForecastError, match="all NaN when not"):
        _batch(point, quant, [True, False])
    decreasing = quant.copy()
    decreasing[1, 2, 0] = 5.0
    with pytest.raises(ForecastError, match="non-decreasing"):
        _batch(point, decreasing, [True, True])


def test_from_rows_enforces_the_conventions() -> None:
    point = np.array([[1.0, 2.0], [1.0, np.nan], [3.0, 3.0]])
    quant = np.array(
        [[[0.0, 1.0, 2.0], [3.0, 1.0, 2.0]], [[0.0, 1.0, 2.0]] * 2, [[0.0, 1.0, 2.0]] * 2]
    )
    batch = ForecastBatch.from_rows(point, quant, LEVELS, np.array([True, True, False]))
    np.testing.assert_array_equal(batch.valid, [True, False, False])
    np.testing.assert_array_equal(batch.quantiles_kwh[0, 1], [3.0, 3.0, 3.0])
    assert np.isnan(batch.point_kwh[1:]).all() and np.isnan(batch.quantiles_kwh[1:]).all()
    assert np.isnan(point[1, 1]) and point[2, 0] == 3.0  # inputs untouched


def test_all_invalid() -> None:
    batch = ForecastBatch.all_invalid(3, 5, LEVELS)
    assert batch.point_kwh.shape == (3, 5) and not batch.valid.any()


def test_fill_gaps_prefers_seasonal_neighbours() -> None:
    series = np.array([1.0, 2.0, 3.0, np.nan, np.nan, 6.0, np.nan, np.nan, np.nan])
    # season 3: slot 3 <- slot 0, slot 4 <- slot 1, 6 <- 3 (<- 0), 7 <- 4, 8 <- 5
    np.testing.assert_array_equal(fill_gaps(series, 3), [1, 2, 3, 1, 2, 6, 1, 2, 6])
    leading = np.array([np.nan, np.nan, np.nan, np.nan, 5.0, 6.0, 7.0])
    np.testing.assert_array_equal(fill_gaps(leading, 2), [5, 6, 5, 6, 5, 6, 7])
    no_season = np.array([np.nan, 1.0, np.nan, 3.0, np.nan])
    np.testing.assert_array_equal(fill_gaps(no_season, 10), [1, 1, 2, 3, 3])


def test_gaussian_quantiles() -> None:
    out = gaussian_quantiles(np.array([[1.0]]), np.array([[2.0]]), (0.1, 0.5, 0.975))
    np.testing.assert_allclose(out[0, 0], [1 - 2 * 1.2815516, 1.0, 1 + 2 * 1.959964], rtol=1e-6)


def test_single_threaded_blas_restores_the_pool() -> None:
    try:
        import threadpoolctl
    except ImportError:  # optional: then the context manager does nothing
        with single_threaded_blas():
            assert float(np.linalg.solve(np.eye(2), np.ones(2))[0]) == 1.0
        return

    import scipy.linalg  # noqa: F401  SciPy's own OpenBLAS must be limited too

    def blas_threads() -> list[int]:
        return [
            p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"
        ]

    before = blas_threads()
    with single_threaded_blas():
        inside = blas_threads()
    assert len(inside) >= 1 and set(inside) == {1}
    assert blas_threads() == before
