"""The result of one forecast call for a batch of meters."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from streamer.forecast.errors import ForecastError

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class ForecastBatch:
    """Point and quantile forecasts for ``B`` meters over ``H`` horizon slots.

    - ``point_kwh``: ``(B, H)`` float64, energy of horizon slot ``h`` (``h = 1..H`` at column
      ``h - 1``), the slot that ends ``h`` slots after the newest history slot.
    - ``quantiles_kwh``: ``(B, H, Q)`` float64, non-decreasing along ``Q``.
    - ``quantile_levels``: the ``Q`` levels, strictly increasing in ``(0, 1)``.
    - ``valid``: ``(B,)`` bool. ``False`` where the row had too little usable history or its
      model failed; such rows are all NaN. Valid rows are all finite.

    The constructor checks shapes and the NaN/finite rule, so a forecaster cannot hand the
    worker a malformed batch.
    """

    point_kwh: FloatArray
    quantiles_kwh: FloatArray
    quantile_levels: tuple[float, ...]
    valid: BoolArray

    def __post_init__(self) -> None:
        point, quant, valid = self.point_kwh, self.quantiles_kwh, self.valid
        levels = len(self.quantile_levels)
        if point.ndim != 2 or point.dtype != np.float64:
            raise ForecastError(
                f"point_kwh must be (B, H) float64, got {point.shape} {point.dtype}"
            )
        rows, horizon = point.shape
        if quant.shape != (rows, horizon, levels) or quant.dtype != np.float64:
            raise ForecastError(
                f"quantiles_kwh must be (B, H, Q) = {(rows, horizon, levels)} float64, "
                f"got {quant.shape} {quant.dtype}"
            )
        if valid.shape != (rows,) or valid.dtype != np.bool_:
            raise ForecastError(f"valid must be ({rows},) bool, got {valid.shape} {valid.dtype}")
        if valid.all():  # the usual batch: no copies of the valid rows
            point_ok, quant_ok = point, quant
            finite_ok = bool(np.isfinite(point).all() and np.isfinite(quant).all())
            nan_ok = True
        else:
            point_ok, quant_ok = point[valid], quant[valid]
            finite_ok = bool(np.isfinite(point_ok).all() and np.isfinite(quant_ok).all())
            nan_ok = bool(np.isnan(point[~valid]).all() and np.isnan(quant[~valid]).all())
        if not (finite_ok and nan_ok):
            raise ForecastError(
                "a ForecastBatch row must be all finite when valid and all NaN when not; "
                "mark the row invalid instead of returning partial values"
            )
        # level by level: numpy is slow along a short last axis
        if any((quant_ok[..., j] < quant_ok[..., j - 1]).any() for j in range(1, levels)):
            raise ForecastError("quantiles_kwh must be non-decreasing along the quantile axis")

    @property
    def rows(self) -> int:
        """Number of meters ``B``."""
        return int(self.point_kwh.shape[0])

    @property
    def horizon_slots(self) -> int:
        """Number of horizon slots ``H``."""
        return int(self.point_kwh.shape[1])

    @classmethod
    def from_rows(
        cls,
        point_kwh: FloatArray,
        quantiles_kwh: FloatArray,
        quantile_levels: tuple[float, ...],
        valid: BoolArray,
    ) -> ForecastBatch:
        """Build a batch, enforcing the conventions instead of checking them.

        Rows that are not finite everywhere become invalid, invalid rows are set to NaN, and the
        quantiles are made non-decreasing (a running maximum along ``Q``).
        """
        point = np.array(point_kwh, dtype=np.float64, copy=True)
        quant = np.array(quantiles_kwh, dtype=np.float64, copy=True)
        ok = np.asarray(valid, dtype=np.bool_).copy()
        ok &= np.isfinite(point).all(axis=1) & np.isfinite(quant).all(axis=(1, 2))
        if ok.all():  # the usual batch: no copies of the rows
            # a running maximum along Q, level by level (the same values as
            # np.maximum.accumulate, which is slow along a short last axis)
            for j in range(1, quant.shape[-1]):
                np.maximum(quant[..., j - 1], quant[..., j], out=quant[..., j])
        else:
            point[~ok] = np.nan
            quant[~ok] = np.nan
            if quant.shape[-1] > 1:
                quant[ok] = np.maximum.accumulate(quant[ok], axis=-1)
        return cls(point, quant, tuple(float(q) for q in quantile_levels), ok)

    @classmethod
    def all_invalid(
        cls, rows: int, horizon_slots: int, quantile_levels: tuple[float, ...]
    ) -> ForecastBatch:
        """A batch in which no row could be forecast."""
        return cls(
            np.full((rows, horizon_slots), np.nan),
            np.full((rows, horizon_slots, len(quantile_levels)), np.nan),
            tuple(quantile_levels),
            np.zeros(rows, dtype=np.bool_),
        )
