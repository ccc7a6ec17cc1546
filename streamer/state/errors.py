"""Errors raised by the per-meter state area."""

from __future__ import annotations

from streamer.errors import StreamerError


class StateError(StreamerError):
    """Base class of per-meter state errors."""


class StateConfigError(StateError):
    """A :class:`~streamer.state.config.WindowConfig` field has a value that cannot work."""


class StateDecodeError(StateError):
    """Stored state bytes cannot be read back (corrupt, truncated, other version or config)."""


class EmptyStateError(StateError):
    """The state has no slot yet, so there is no window to read."""


class InvalidReadingError(StateError, ValueError):
    """A value that validation should have rejected (NaN, infinite) reached the state."""
