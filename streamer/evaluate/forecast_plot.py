"""PNGs of backtest forecasts against actuals, for chosen meters (``backtest --plot DIR``).

People look at forecasts before they trust numbers. :class:`ForecastPlots` keeps, for a few
meters, what :func:`~streamer.evaluate.backtest.run_backtest` reports after each forecast (its
``on_forecast`` callback); :meth:`ForecastPlots.write` draws one PNG per meter: the actual load,
each model's p50 and the first model's p10..p90 band (calibrated when the backtest calibrates),
over the held-out period, one forecast per origin. Origins whose forecasts would overlap the
previous one's are left out of the picture (not of the scores), so that each slot shows one
forecast.

Drawing needs matplotlib, an optional extra (``pip install -e '.[plot]'``); nothing else in
streamer imports it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from streamer.evaluate.errors import BacktestConfigError
from streamer.evaluate.grid import HistoryGrid

FloatArray = npt.NDArray[np.float64]
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(slots=True)
class _Series:
    """One model's shown forecasts of one meter: slot ends (ms), p50 and band per origin."""

    end_ms: list[npt.NDArray[np.int64]] = field(default_factory=list)
    p50: list[FloatArray] = field(default_factory=list)
    band: list[FloatArray | None] = field(default_factory=list)
    next_free_slot: int = -1


class ForecastPlots:
    """Collects the forecasts of ``meters``: ids, or a count for the history's first meters
    (ids the history lacks are named in :attr:`missing`); pass it as ``on_forecast``."""

    def __init__(self, meters: Sequence[str] | int) -> None:
        self._count = meters if isinstance(meters, int) else None
        self.wanted: tuple[str, ...] = () if isinstance(meters, int) else tuple(meters)
        self.missing: tuple[str, ...] = ()
        self._rows: dict[str, int] | None = None
        self._models: list[str] = []
        self._series: dict[tuple[str, str], _Series] = {}
        self._actual: dict[str, dict[int, float]] = {}
        self._resolution_ms = 0

    def __call__(
        self,
        grid: HistoryGrid,
        model: str,
        origin: int,
        actual: FloatArray,
        p50: FloatArray,
        band: FloatArray | None,
    ) -> None:
        if self._rows is None:
            if self._count is not None:
                self.wanted = grid.meter_ids[: self._count]
            index = {meter: i for i, meter in enumerate(grid.meter_ids)}
            self._rows = {m: index[m] for m in self.wanted if m in index}
            self.missing = tuple(m for m in self.wanted if m not in index)
            self._resolution_ms = grid.resolution_seconds * 1000
        if model not in self._models:
            self._models.append(model)
        slots = actual.shape[1]
        ends = grid.end_ms(origin - 1) + (np.arange(1, slots + 1) * self._resolution_ms)
        for meter, row in self._rows.items():
            scored = np.flatnonzero(np.isfinite(actual[row]))
            if scored.size == 0:
                continue  # this meter is not scored at this origin
            shown = int(scored[-1]) + 1  # a 46-slot local day scores 46 of 48
            series = self._series.setdefault((meter, model), _Series())
            if origin < series.next_free_slot:
                continue  # would overlap the previous forecast shown
            series.next_free_slot = origin + shown
            series.end_ms.append(ends[:shown].astype(np.int64))
            series.p50.append(p50[row, :shown].copy())
            series.band.append(None if band is None else band[row, :shown].copy())
            seen = self._actual.setdefault(meter, {})
            for t, value in zip(ends[:shown].tolist(), actual[row, :shown].tolist(), strict=True):
                seen[t] = value

    @property
    def meters(self) -> tuple[str, ...]:
        """The meters with something to draw."""
        return tuple(m for m in self.wanted if m in self._actual)

    def write(self, out_dir: Path, *, time_zone: str = "UTC") -> list[Path]:
        """One PNG per meter in ``out_dir`` (created); the paths written. Times are shown in
        ``time_zone``."""
        pyplot = _pyplot()
        import pandas as pd

        out_dir.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        for meter in self.meters:
            figure, axes = pyplot.subplots(figsize=(12, 4), dpi=100)
            actual = self._actual[meter]
            times = sorted(actual)
            axes.plot(
                _local(pd, times, time_zone),
                [actual[t] for t in times],
                color="black",
                linewidth=1.0,
                label="actual",
            )
            for k, model in enumerate(self._models):
                series = self._series.get((meter, model))
                if series is None:
                    continue
                colour = f"C{k}"
                for j, (ends, p50, band) in enumerate(
                    zip(series.end_ms, series.p50, series.band, strict=True)
                ):
                    x = _local(pd, ends.tolist(), time_zone)
                    axes.plot(
                        x,
                        p50,
                        color=colour,
                        linewidth=1.0,
                        label=f"{model} p50" if j == 0 else None,
                    )
                    if k == 0 and band is not None:
                        axes.fill_between(
                            x,
                            band[:, 0],
                            band[:, 1],
                            color=colour,
                            alpha=0.25,
                            linewidth=0,
                            label=f"{model} p10-p90" if j == 0 else None,
                        )
            axes.set_title(f"{meter}: forecasts against actuals")
            axes.set_ylabel("kWh per slot")
            axes.set_xlabel(f"slot end ({time_zone})")
            axes.legend(loc="upper right", fontsize="small")
            axes.grid(alpha=0.3)
            figure.autofmt_xdate()
            figure.tight_layout()
            path = out_dir / f"{_SAFE.sub('_', meter)}.png"
            figure.savefig(path)
            pyplot.close(figure)
            written.append(path)
        return written


def _local(pd: Any, times_ms: list[int], zone: str) -> Any:
    return pd.to_datetime(times_ms, unit="ms", utc=True).tz_convert(zone).tz_localize(None)


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        raise BacktestConfigError(
            "--plot draws with matplotlib, an optional extra: pip install -e '.[plot]'"
        ) from None
    return pyplot
