"""Forecaster specs (``STREAMER_FORECASTER``) to forecaster instances.

A spec is ``name`` or ``name:argument`` (``seasonal_naive_week``, later ``lstm:3``). Each name
maps to a factory ``(argument, horizon_slots, resolution_seconds) -> Forecaster``; the
argument is ``None`` when the spec has no ``:``. There is no process-wide registry: whoever
builds forecasters (a worker's core, a command) makes one with :func:`builtin_factories`, adds
names with :func:`register_forecaster` (the LSTM/ONNX backend adds ``lstm`` with
:func:`~streamer.inference.registration.register_lstm`) and passes it to
:func:`make_forecaster`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from streamer.forecast.errors import ForecasterSpecError
from streamer.forecast.ets import EtsForecaster
from streamer.forecast.inputs import check_positive, slots_per_day
from streamer.forecast.protocol import Forecaster
from streamer.forecast.sarima import SarimaForecaster
from streamer.forecast.seasonal_naive import seasonal_naive_day, seasonal_naive_week

ForecasterFactory = Callable[[str | None, int, int], Forecaster]


def _no_argument(name: str, argument: str | None) -> None:
    if argument is not None:
        raise ForecasterSpecError(
            f"forecaster {name!r} takes no ':argument', got {name}:{argument}; use {name!r}"
        )


def _seasonal_naive_week(argument: str | None, horizon: int, resolution: int) -> Forecaster:
    _no_argument("seasonal_naive_week", argument)
    return seasonal_naive_week(horizon, resolution)


def _seasonal_naive_day(argument: str | None, horizon: int, resolution: int) -> Forecaster:
    _no_argument("seasonal_naive_day", argument)
    return seasonal_naive_day(horizon, resolution)


def _ets(argument: str | None, horizon: int, resolution: int) -> Forecaster:
    _no_argument("ets", argument)
    return EtsForecaster(slots_per_day(resolution), horizon)


def _sarima(argument: str | None, horizon: int, resolution: int) -> Forecaster:
    _no_argument("sarima", argument)
    return SarimaForecaster(slots_per_day(resolution), horizon)


def builtin_factories() -> dict[str, ForecasterFactory]:
    """The statistical baselines: a fresh dict each call."""
    return {
        "seasonal_naive": _seasonal_naive_week,
        "seasonal_naive_day": _seasonal_naive_day,
        "seasonal_naive_week": _seasonal_naive_week,
        "ets": _ets,
        "sarima": _sarima,
    }


def register_forecaster(
    name: str,
    factory: ForecasterFactory,
    *,
    factories: dict[str, ForecasterFactory],
    replace: bool = False,
) -> None:
    """Add ``name`` (and ``name:argument``) to ``factories``, the registry a worker or a
    command built (from :func:`builtin_factories`) and passes to :func:`make_forecaster`."""
    target = factories
    if not name or ":" in name:
        raise ForecasterSpecError(f"forecaster name {name!r} must be non-empty without ':'")
    if name in target and not replace:
        raise ForecasterSpecError(
            f"forecaster {name!r} is already registered; pass replace=True to override it"
        )
    target[name] = factory


def available_specs(factories: Mapping[str, ForecasterFactory] | None = None) -> list[str]:
    """Registered names, sorted (``None``: the statistical baselines)."""
    return sorted(builtin_factories() if factories is None else factories)


def make_forecaster(
    spec: str,
    *,
    horizon_slots: int,
    resolution_seconds: int,
    factories: Mapping[str, ForecasterFactory] | None = None,
) -> Forecaster:
    """Build the forecaster a spec names, e.g. ``make_forecaster("ets", horizon_slots=48,
    resolution_seconds=1800)``, from ``factories`` (``None``: the statistical baselines only;
    a worker passes the registry it built, with ``lstm`` registered).

    Raises :class:`ForecasterSpecError` listing the available names when ``spec`` is unknown.
    """
    registry = builtin_factories() if factories is None else factories
    name, sep, argument = spec.strip().partition(":")
    factory = registry.get(name)
    if factory is None:
        raise ForecasterSpecError(
            f"unknown forecaster {spec!r}; available: {', '.join(available_specs(registry))} "
            "(set STREAMER_FORECASTER to one of them)"
        )
    check_positive("horizon_slots", horizon_slots)
    slots_per_day(resolution_seconds)
    return factory(argument if sep else None, horizon_slots, resolution_seconds)
