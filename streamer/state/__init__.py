"""Per-meter state: a sliding window of slot energies, updated reading by reading.

River-shaped: ``MeterState.update`` / ``update_register`` take one reading and return an
:class:`Outcome`; ``get`` returns a :class:`WindowView` with gaps imputed; ``to_bytes`` /
``from_bytes`` are the changelog value; :func:`is_expired` is the rule for dropping it.

Where things are:

* ``slots``: the grid; a reading at ``ts_ms`` belongs to slot ``ceil(ts_ms / resolution_ms)``.
* ``config``: :class:`WindowConfig` (resolution, lookback, lateness, imputation and register
  bounds); only resolution and lookback shape the bytes (``fingerprint``).
* ``meter_state``: :class:`MeterState`, the window itself; ``codec``: its byte layout (900 bytes
  at 336 slots and lateness 48: 44-byte header, settled slots as 2-byte decimal codes, recent
  ones as float32, 2-bit flags, CRC-32).
* ``imputation``: :func:`impute`, pure gap filling used by ``get``.
* ``register``: cumulative-register steps (advance, reset, rollover) and :class:`RegisterEvent`.
* ``batch``: :func:`apply_batch`; ``expiry``: :func:`is_expired`, :func:`silent_meters`.

The caller dead-letters readings whose outcome is ``TOO_LATE`` or ``REGISTER_OUT_OF_ORDER``
(the enum value is the reason code) and may log or count ``RegisterEvent``s.
"""

from __future__ import annotations

from streamer.state.batch import apply_batch
from streamer.state.config import WindowConfig
from streamer.state.errors import (
    EmptyStateError,
    InvalidReadingError,
    StateConfigError,
    StateDecodeError,
    StateError,
)
from streamer.state.expiry import is_expired, silent_meters
from streamer.state.flags import SlotFlag
from streamer.state.imputation import impute
from streamer.state.meter_state import MeterState
from streamer.state.outcome import Outcome
from streamer.state.register import RegisterEvent
from streamer.state.slots import slot_end_ms, slot_of
from streamer.state.window_view import WindowView

__all__ = [
    "EmptyStateError",
    "InvalidReadingError",
    "MeterState",
    "Outcome",
    "RegisterEvent",
    "SlotFlag",
    "StateConfigError",
    "StateDecodeError",
    "StateError",
    "WindowConfig",
    "WindowView",
    "apply_batch",
    "impute",
    "is_expired",
    "silent_meters",
    "slot_end_ms",
    "slot_of",
]
