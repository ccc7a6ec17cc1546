"""The fleet as a stream of per-slot message chunks (no Kafka): model -> encode -> faults.

:class:`SlotStream` walks the slot grid from a start time, one slot per
:meth:`~SlotStream.next_chunk`, keeping what must survive between slots (register values, late
messages). :func:`iter_slot_chunks` is the same as a generator over a time range; the runner
drives a :class:`SlotStream` directly so that it can release the late messages when stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from streamer.simulate.encode import ReadingEncoder
from streamer.simulate.faults import (
    DelayedMessage,
    FaultConfig,
    FaultTally,
    apply_faults,
    release_all,
)
from streamer.simulate.fleet import FleetModel
from streamer.simulate.wire import Message

#: Slots of load computed per model call: amortises numpy overhead, bounds memory.
_BLOCK_CELLS: Final = 1 << 18
_MAX_BLOCK_SLOTS: Final = 48


@dataclass(frozen=True, slots=True)
class SlotChunk:
    """The messages to send for one slot (or, with ``is_flush``, the late ones left at the end)."""

    slot_end_ms: int
    messages: list[Message]
    tally: FaultTally
    is_flush: bool = False


class SlotStream:
    """Messages of consecutive slots, starting with the first slot ending after ``start_ms``."""

    def __init__(self, model: FleetModel, faults: FaultConfig, start_ms: int) -> None:
        self.model = model
        self.faults = faults
        self.encoder = ReadingEncoder(model)
        self.next_slot_end_ms = model.first_slot_end_after(start_ms)
        self._delayed: tuple[DelayedMessage, ...] = ()
        self._block_slots = max(1, min(_MAX_BLOCK_SLOTS, _BLOCK_CELLS // model.n_meters))
        self._block_first_ms = 0
        self._block_kwh: npt.NDArray[np.float64] = np.zeros((model.n_meters, 0))
        self._block_estimated: npt.NDArray[np.bool_] = np.zeros((model.n_meters, 0), dtype=bool)
        self._last_slot_end_ms: int | None = None

    @property
    def pending_late(self) -> int:
        """Late messages held back, to be sent with a later slot (or by :meth:`flush`)."""
        return len(self._delayed)

    def _slot_columns(
        self, slot_end_ms: int
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
        res_ms = self.model.resolution_ms
        column = (slot_end_ms - self._block_first_ms) // res_ms
        if not 0 <= column < self._block_kwh.shape[1]:
            ends = slot_end_ms + res_ms * np.arange(self._block_slots, dtype=np.int64)
            self._block_first_ms = slot_end_ms
            self._block_kwh = self.model.load_kwh(ends)
            self._block_estimated = self.model.estimated_mask(ends)
            column = 0
        return self._block_kwh[:, column], self._block_estimated[:, column]

    def next_chunk(self, now_ms: int | None = None) -> SlotChunk:
        """The messages of the next slot; ``now_ms`` (wall clock) only anchors future-ts faults."""
        slot_end_ms = self.next_slot_end_ms
        kwh, estimated = self._slot_columns(slot_end_ms)
        faulted = apply_faults(
            self.encoder.encode_messages(slot_end_ms, kwh, estimated),
            slot_index=slot_end_ms // self.model.resolution_ms,
            config=self.faults,
            seed=self.model.seed,
            carried=self._delayed,
            now_ms=now_ms,
        )
        self._delayed = faulted.delayed
        self._last_slot_end_ms = slot_end_ms
        self.next_slot_end_ms = slot_end_ms + self.model.resolution_ms
        return SlotChunk(slot_end_ms, faulted.messages, faulted.tally)

    def flush(self) -> SlotChunk:
        """Release every late message now (end of a run). Empty when none are held."""
        released = release_all(self._delayed)
        self._delayed = ()
        last = self._last_slot_end_ms
        slot_end_ms = last if last is not None else self.next_slot_end_ms - self.model.resolution_ms
        return SlotChunk(slot_end_ms, released.messages, released.tally, is_flush=True)


def iter_slot_chunks(
    model: FleetModel,
    faults: FaultConfig,
    start_ms: int,
    end_ms: int | None,
    *,
    flush: bool = True,
) -> Iterator[SlotChunk]:
    """Chunks for the slots ending in ``(start_ms, end_ms]`` (``None``: without end).

    With ``flush`` a last chunk (``is_flush=True``) carries the late messages still held back,
    if any, so that every generated reading is accounted for in the tallies.
    """
    stream = SlotStream(model, faults, start_ms)
    while end_ms is None or stream.next_slot_end_ms <= end_ms:
        yield stream.next_chunk()
    if flush and stream.pending_late:
        yield stream.flush()
