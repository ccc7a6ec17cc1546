"""Base exception for everything streamer raises on purpose.

Each area (contract, state, forecast, localkafka, ...) defines its own small subclasses.
Messages say what to do, not only what went wrong.
"""

from __future__ import annotations


class StreamerError(Exception):
    """Base class of streamer's own errors."""
