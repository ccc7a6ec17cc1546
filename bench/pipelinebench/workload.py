"""The readings the benchmark sends: simulator fleets without faults, encoded once up front."""

from __future__ import annotations

from dataclasses import dataclass

from streamer.simulate import FaultConfig, FleetModel, iter_slot_chunks
from streamer.simulate.wire import Message


def slot_end_before(now_ms: int, resolution_seconds: int, slots_back: int) -> int:
    """The end of the slot ``slots_back`` slots before the newest slot that ended by ``now_ms``."""
    res_ms = resolution_seconds * 1000
    return (now_ms // res_ms - slots_back) * res_ms


def slot_major(
    meters: int, slots: int, end_ms: int, seed: int, resolution_seconds: int
) -> list[Message]:
    """Every meter's reading of each slot, slot after slot (how a live fleet reports)."""
    model = FleetModel(meters, seed=seed, resolution_seconds=resolution_seconds)
    start_ms = end_ms - slots * resolution_seconds * 1000
    out: list[Message] = []
    for chunk in iter_slot_chunks(model, FaultConfig.none(), start_ms, end_ms, flush=False):
        out.extend(chunk.messages)
    return out


@dataclass(frozen=True, slots=True)
class ForecastWorkload:
    """History to preload (meter after meter) and the rounds (one new slot for all meters)."""

    history: list[Message]
    rounds: list[list[Message]]
    meters: int
    history_slots: int


def forecast_workload(
    meters: int,
    history_slots: int,
    rounds: int,
    end_ms: int,
    seed: int,
    resolution_seconds: int,
) -> ForecastWorkload:
    """``history_slots`` slots ending at ``end_ms``, then ``rounds`` slots after it.

    The history is ordered meter by meter (each meter's slots in time order) so that a worker
    takes in many slots of few meters per batch: the preload then costs a few forecasts per
    meter instead of one per reading. Each round is one slot of every meter.
    """
    model = FleetModel(meters, seed=seed, resolution_seconds=resolution_seconds)
    res_ms = resolution_seconds * 1000
    start_ms = end_ms - history_slots * res_ms
    per_meter: dict[bytes, list[Message]] = {}
    round_messages: list[list[Message]] = []
    chunks = iter_slot_chunks(
        model, FaultConfig.none(), start_ms, end_ms + rounds * res_ms, flush=False
    )
    for chunk in chunks:
        if chunk.slot_end_ms <= end_ms:
            for message in chunk.messages:
                per_meter.setdefault(message[0], []).append(message)
        else:
            round_messages.append(list(chunk.messages))
    history = [message for messages in per_meter.values() for message in messages]
    return ForecastWorkload(history, round_messages, meters, history_slots)
