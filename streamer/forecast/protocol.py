"""The one interface every forecaster implements (seasonal naive, ETS, SARIMA, LSTM/ONNX)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from streamer.forecast.batch import ForecastBatch
from streamer.forecast.local_time import UTC_ZONE, TimeZones


@runtime_checkable
class Forecaster(Protocol):
    """Forecasts a batch of meters from their recent history in one call.

    Attributes:
        name: stable identifier written into forecast records (``"seasonal_naive_week"``,
            ``"ets"``, ``"sarima"``, ``"lstm"``).
        version: model version; ``"1"`` for the statistical baselines.
        horizon_slots: ``H``, the number of slots forecast ahead.
        quantile_levels: the levels of ``ForecastBatch.quantiles_kwh``.
        min_history_slots: a row needs at least this many finite values in the part of the
            history the model reads, otherwise it comes back ``valid=False``. A history
            array too short for the model (fewer columns than ``min_history_slots``, or than
            one season for seasonal naive) is a configuration error for the whole batch
            (:class:`~streamer.forecast.errors.ForecastInputError`).

    ``forecast(history_kwh, end_ms, resolution_seconds)``:
        ``history_kwh`` is ``(B, L)`` float64, oldest to newest, gaps already imputed where the
        caller could but NaN may remain. ``end_ms`` is ``(B,)`` int64, the end of each row's
        newest slot (UTC epoch ms). A row's result never depends on the other rows of the batch
        (one documented exception: :class:`~streamer.forecast.seasonal_naive.SeasonalNaive`'s
        fleet-wide spread fallback), and the same input always gives the same output.
        One meter's failure is ``valid=False`` for that row, never an exception.
        ``time_zone`` is the IANA zone of the meters' calendar: one name for the batch or one
        per row. Models that read the calendar (local calendar features, seasonal-naive lags
        of a day or a week of wall-clock time) use it; the others ignore it. An unknown name
        raises :class:`~streamer.forecast.local_time.UnknownTimeZoneError`.
    """

    name: str
    version: str
    horizon_slots: int
    quantile_levels: tuple[float, ...]
    min_history_slots: int

    def forecast(
        self,
        history_kwh: npt.NDArray[np.float64],
        end_ms: npt.NDArray[np.int64],
        resolution_seconds: int,
        time_zone: TimeZones = UTC_ZONE,
    ) -> ForecastBatch: ...


class ForecastSteps(Protocol):
    """One ``forecast()`` call in steps, for a caller that runs the heavy step on another
    thread: the object is made on the caller's thread (inputs checked and prepared), then
    :meth:`compute` (the model's arithmetic, which releases the GIL: nothing else in it needs
    the interpreter) may run on any thread, then :meth:`result` on the caller's. The batch is
    the one ``forecast()`` returns for the same arguments."""

    def compute(self) -> None: ...

    def result(self) -> ForecastBatch: ...


class ForecastDone:
    """Steps with nothing to compute: the batch is known already (no row to forecast)."""

    __slots__ = ("_batch",)

    def __init__(self, batch: ForecastBatch) -> None:
        self._batch = batch

    def compute(self) -> None:
        pass

    def result(self) -> ForecastBatch:
        return self._batch


class _WholeCall:
    """A forecaster without steps of its own: :meth:`compute` is the whole ``forecast()``."""

    __slots__ = ("_args", "_batch", "_forecaster")

    def __init__(
        self,
        forecaster: Forecaster,
        args: tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], int, TimeZones],
    ) -> None:
        self._forecaster = forecaster
        self._args = args
        self._batch: ForecastBatch | None = None

    def compute(self) -> None:
        self._batch = self._forecaster.forecast(*self._args)

    def result(self) -> ForecastBatch:
        if self._batch is None:
            raise RuntimeError("result() before compute()")
        return self._batch


def forecast_steps(
    forecaster: Forecaster,
    history_kwh: npt.NDArray[np.float64],
    end_ms: npt.NDArray[np.int64],
    resolution_seconds: int,
    time_zone: TimeZones = UTC_ZONE,
) -> ForecastSteps:
    """``forecaster.forecast(...)`` as :class:`ForecastSteps`: the forecaster's own, where its
    class defines ``steps`` with ``forecast``'s arguments (looked up on the class, so that a
    wrapper that forwards attributes, such as a throttled or timed forecaster, is called
    whole), else one step that is the whole call."""
    own = getattr(type(forecaster), "steps", None)
    if own is not None:
        steps: ForecastSteps = own(forecaster, history_kwh, end_ms, resolution_seconds, time_zone)
        return steps
    return _WholeCall(forecaster, (history_kwh, end_ms, resolution_seconds, time_zone))
