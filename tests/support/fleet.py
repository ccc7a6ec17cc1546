"""The one builder of a simulated fleet's readings for tests.

:func:`fleet_messages` turns a :class:`~streamer.simulate.fleet.FleetModel` into the clean
reading records a test produces to the readings topic; :class:`Fleet` holds a model and its
encoder at a worker's resolution, for tests that send slot after slot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streamer.settings import Settings
from streamer.simulate.encode import ReadingEncoder
from streamer.simulate.fleet import FleetModel
from streamer.timeutil import now_ms

#: A reading record: (key, value), the key the meter id.
Message = tuple[bytes, bytes]


def fleet_messages(
    settings: Settings, model: FleetModel, encoder: ReadingEncoder, start_ms: int, end_ms: int
) -> list[Message]:
    """Clean readings of every meter of ``model`` for every slot ending in ``(start_ms,
    end_ms]``, slot by slot, for a worker with ``settings`` (the model's resolution must be its
    own)."""
    if model.resolution_seconds != settings.resolution_seconds:
        raise ValueError(
            f"a fleet at {model.resolution_seconds} s for a worker at "
            f"{settings.resolution_seconds} s"
        )
    slot_ends = model.slot_ends(start_ms, end_ms)
    loads = model.load_kwh(slot_ends)
    messages: list[Message] = []
    for t, slot_end in enumerate(slot_ends.tolist()):
        values = encoder.encode_slot(slot_end, loads[:, t])
        messages.extend(zip(encoder.keys, values, strict=True))
    return messages


@dataclass
class Fleet:
    """A simulated fleet whose clean readings the tests send slot by slot."""

    settings: Settings
    meters: int
    seed: int
    model: FleetModel = field(init=False)
    encoder: ReadingEncoder = field(init=False)

    def __post_init__(self) -> None:
        self.model = FleetModel(
            self.meters, seed=self.seed, resolution_seconds=self.settings.resolution_seconds
        )
        self.encoder = ReadingEncoder(self.model)

    @property
    def res_ms(self) -> int:
        return self.settings.resolution_seconds * 1000

    @property
    def meter_ids(self) -> list[str]:
        return [key.decode() for key in self.encoder.keys]

    def last_closed_slot(self) -> int:
        """End of the newest slot that has ended (a live reading's slot end is never ahead)."""
        return now_ms() // self.res_ms * self.res_ms

    def messages(self, start_ms: int, end_ms: int) -> list[Message]:
        """Readings of every meter for each slot ending in ``(start_ms, end_ms]``, slot by slot."""
        return fleet_messages(self.settings, self.model, self.encoder, start_ms, end_ms)
