"""Errors of the fleet simulator. Each message says how to fix the problem."""

from __future__ import annotations

from streamer.errors import StreamerError


class SimulationError(StreamerError):
    """Base class of the simulator's errors."""


class SimulationConfigError(SimulationError):
    """A simulator, fleet or fault setting has a value the simulator cannot use."""


class HistoryFormatError(SimulationError):
    """A history file has a suffix or layout the simulator cannot read or write."""


class ProducerError(SimulationError):
    """Kafka refused or failed to take the simulator's messages."""
