"""Errors of the accuracy area (forecast ledger, rolling and fleet accuracy)."""

from __future__ import annotations

from streamer.errors import StreamerError


class AccuracyError(StreamerError):
    """Base class of the errors raised by :mod:`streamer.accuracy`."""


class AccuracyConfigError(AccuracyError, ValueError):
    """A ledger or accuracy parameter has a value that cannot work."""


class AccuracyInputError(AccuracyError, ValueError):
    """Arrays handed to the ledger or an accumulator do not fit (shapes, levels)."""


class AccuracyStateDecodeError(AccuracyError):
    """Stored accuracy bytes cannot be read back (corrupt, truncated, other version or config).

    The worker should start that meter's accuracy state afresh: it only loses the forecasts
    not yet matched and the history of a rolling average.
    """
