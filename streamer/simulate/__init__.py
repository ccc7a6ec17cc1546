"""The fleet simulator: synthetic smart-meter readings, with faults, produced to Kafka.

Stages, in file order: ``profiles``/``weather``/``fleet`` (what each meter uses),
``encode`` (readings to JSON bytes), ``malformed``/``faults`` (what goes wrong on the way),
``slots`` (per-slot message chunks, no Kafka), ``history`` (training files), and
``clock``/``ratelimit``/``producer``/``runner`` (producing to Kafka).
"""

from __future__ import annotations

from streamer.simulate.faults import FaultConfig, FaultTally, apply_faults
from streamer.simulate.fleet import FleetModel
from streamer.simulate.history import generate_history, read_history, write_history
from streamer.simulate.malformed import MalformedKind
from streamer.simulate.progress import SimulationProgress, SimulationSummary
from streamer.simulate.runner import (
    SimulationConfig,
    produce_messages,
    run_simulation,
)
from streamer.simulate.slots import SlotChunk, SlotStream, iter_slot_chunks

__all__ = [
    "FaultConfig",
    "FaultTally",
    "FleetModel",
    "MalformedKind",
    "SimulationConfig",
    "SimulationProgress",
    "SimulationSummary",
    "SlotChunk",
    "SlotStream",
    "apply_faults",
    "generate_history",
    "iter_slot_chunks",
    "produce_messages",
    "read_history",
    "run_simulation",
    "write_history",
]
