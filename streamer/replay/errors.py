"""Errors of ``streamer replay``. Each message says how to fix the problem."""

from __future__ import annotations

from streamer.errors import StreamerError


class ReplayConfigError(StreamerError):
    """A replay option has a value the replay cannot use."""
