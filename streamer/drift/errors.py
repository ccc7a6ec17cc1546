"""Errors of the drift area (concept-drift detectors and data-drift statistics)."""

from __future__ import annotations

from streamer.errors import StreamerError


class DriftError(StreamerError):
    """Base class of the errors raised by :mod:`streamer.drift`."""


class DriftConfigError(DriftError, ValueError):
    """A detector or monitor parameter has a value that cannot work."""


class DriftInputError(DriftError, ValueError):
    """Arrays handed to a drift statistic or monitor do not fit (shape, bins, features)."""


class DriftStateDecodeError(DriftError):
    """Stored detector bytes cannot be read back (corrupt, truncated, other version or config).

    The worker should start that meter's detector afresh (``detector.clone()``): drift state is
    a summary of recent residuals and rebuilds itself within ``min_instances`` updates.
    """
