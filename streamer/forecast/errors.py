"""Errors of the forecasting area."""

from __future__ import annotations

from streamer.errors import StreamerError


class ForecastError(StreamerError):
    """Base of the errors raised by :mod:`streamer.forecast`."""


class ForecasterSpecError(ForecastError):
    """A forecaster spec (``STREAMER_FORECASTER``, ``--forecaster``) names no known forecaster,
    or a forecaster was configured with impossible parameters."""


class ForecastInputError(ForecastError):
    """The arrays handed to ``Forecaster.forecast`` have the wrong shape, type or length.

    This is a wiring or configuration problem of the caller (the whole batch is unusable), not
    a property of one meter: rows with too little usable history are flagged ``valid=False``.
    """
