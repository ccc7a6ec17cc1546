"""One meter's sliding window of slot energies: ``update`` / ``get`` / ``to_bytes``."""

from __future__ import annotations

import math
import struct

import numpy as np
import numpy.typing as npt

from streamer.state.codec import (
    SettledSlots,
    StateFields,
    decode_state,
    encode_window,
    flag_words,
    missing_settled,
    settle,
    settle_slots,
)
from streamer.state.config import WindowConfig
from streamer.state.errors import EmptyStateError, InvalidReadingError, StateError
from streamer.state.flags import SlotFlag, real_mask
from streamer.state.imputation import impute
from streamer.state.outcome import APPLIED as _OUTCOME_APPLIED
from streamer.state.outcome import CORRECTED as _OUTCOME_CORRECTED
from streamer.state.outcome import DUPLICATE as _OUTCOME_DUPLICATE
from streamer.state.outcome import TOO_LATE as _OUTCOME_TOO_LATE
from streamer.state.outcome import Outcome
from streamer.state.register import RegisterEvent, register_step
from streamer.state.window_view import WindowView

__all__ = ["MeterState", "RegisterEvent", "WindowView"]

_MISSING = int(SlotFlag.MISSING)
_OBSERVED = int(SlotFlag.OBSERVED)
_CORRECTED = int(SlotFlag.CORRECTED)
_SPREAD = int(SlotFlag.REGISTER_SPREAD)
_NAN32 = np.float32(np.nan)
_FLOAT32_MAX = float(np.finfo(np.float32).max)
#: a float32, to round a Python float as numpy's float32 does (nearest, ties to even) in a
#: third of the time a numpy scalar takes
_F32 = struct.Struct("<f")
#: How close a register reading must be to the register's value at its slot (worked out from
#: the stored energies) to be that value: half a watt-hour, plus float32 rounding of the sum.
_REGISTER_MATCH_KWH = 0.0005


def _as_float32(kwh: float) -> float:
    """``kwh`` rounded to float32 as stored (``-0.0`` becomes ``0.0`` so bytes stay canonical)."""
    if not abs(kwh) <= _FLOAT32_MAX:  # also catches NaN
        raise InvalidReadingError(
            f"kwh={kwh!r} is not a finite float32; validate readings before they reach the state "
            "(the contract layer rejects NaN, infinite and out-of-range values)"
        )
    rounded: float = _F32.unpack(_F32.pack(kwh))[0]
    return rounded + 0.0


class MeterState:
    """The last ``lookback_slots`` slots of one meter, ending at the head slot.

    Stored per slot: a float32 energy (NaN when missing) and a :class:`SlotFlag` (MISSING,
    OBSERVED, CORRECTED or REGISTER_SPREAD). Plus the head slot, the newest arrival time of an
    accepted reading, and the baseline of a cumulative register. Settled slots (at least
    ``allowed_lateness_slots`` behind the head) are rounded to 2-byte decimal codes by
    :meth:`to_bytes` (see :mod:`streamer.state.codec` for the error bound).

    Readings may come late (up to ``allowed_lateness_slots`` back, counting the head as one),
    duplicated or out of order; the result does not depend on the order as long as every reading
    is within lateness when it comes (see the property tests). The later-arriving of two different
    values for one slot wins and the slot is flagged CORRECTED.

    Limitations: interval readings (``kwh``) are expected at the configured resolution (two readings
    in one slot are a duplicate or a correction, not summed); a register reading older than the
    newest is used only within ``allowed_lateness_slots`` (it splits the spread it falls in, or is
    recognised as a replay; otherwise ``REGISTER_OUT_OF_ORDER``); a meter should send one kind of
    reading (a register delta overwrites the slots it covers, and is not held to
    ``allowed_lateness_slots``). ``head_slot`` is the newest slot any accepted reading reached,
    including a register baseline that filled nothing, so the head slot can be MISSING for register
    meters.
    """

    __slots__ = (
        "_config",
        "_flag_words",
        "_flags",
        "_head",
        "_last_arrival_ms",
        "_register_kwh",
        "_register_slot",
        "_settled",
        "_values",
    )

    def __init__(self, config: WindowConfig, fields: StateFields) -> None:
        lookback = config.lookback_slots
        if fields.values_kwh.shape != (lookback,) or fields.flags.shape != (lookback,):
            raise StateError(
                f"state arrays have shapes {fields.values_kwh.shape} and {fields.flags.shape}, "
                f"config needs ({lookback},); build states with MeterState.new or from_bytes"
            )
        self._config = config
        self._values: np.ndarray = fields.values_kwh.astype(np.float32, copy=False)
        self._flags: np.ndarray = np.ascontiguousarray(fields.flags, dtype=np.uint8)
        # _flags as uint32 words for the encoder: a view that follows it, kept because making it
        # at each encoding is a measurable share of to_bytes; None when the lookback is not a
        # multiple of 4 (the encoder pads a copy then)
        self._flag_words: np.ndarray | None = None if lookback & 3 else self._flags.view(np.uint32)
        self._head: int | None = fields.head_slot
        self._last_arrival_ms: int = fields.last_arrival_ms
        self._register_kwh: float | None = fields.register_kwh
        self._register_slot: int | None = fields.register_slot
        # the settled slots as last encoded (or decoded), to encode only newly settled ones
        self._settled: SettledSlots | None = fields.settled

    # ------------------------------------------------------------------ construction / bytes

    @classmethod
    def new(cls, config: WindowConfig) -> MeterState:
        """An empty state: every slot MISSING, no head, no register baseline."""
        lookback = config.lookback_slots
        return cls(
            config,
            StateFields(
                head_slot=None,
                last_arrival_ms=0,
                register_kwh=None,
                register_slot=None,
                values_kwh=np.full(lookback, np.nan, dtype=np.float32),
                flags=np.zeros(lookback, dtype=np.uint8),
            ),
        )

    def to_bytes(self) -> bytes:
        """The state as bytes (layout in :mod:`streamer.state.codec`); equal states, equal bytes.

        The settled slots (``allowed_lateness_slots`` or more behind the head, which no reading
        can change any more) are stored rounded (:func:`~streamer.state.codec.settle`: by at most
        0.05 Wh or 0.061 %, whichever is larger; whole Wh up to 8.185 kWh exactly), and are
        rounded here in memory too, so that this state and one read back from the bytes are the
        same.
        """
        config = self._config
        recent = config.allowed_lateness_slots
        settled = self.settle()
        words = self._flag_words
        return encode_window(
            self._head,
            self._last_arrival_ms,
            self._register_kwh,
            self._register_slot,
            self._values,
            flag_words(self._flags) if words is None else words,
            config.fingerprint(),
            recent,
            settled,
        )

    def settle(self) -> SettledSlots:
        """Round the settled slots in memory as :meth:`to_bytes` stores them (what it does
        besides making the bytes), so that a state whose bytes are made later (coalesced state
        writes) reads the same values meanwhile; their codes, kept for the bytes."""
        settled = settle_slots(
            self._values, self._head, self._config.allowed_lateness_slots, self._settled
        )
        self._settled = settled
        return settled

    @classmethod
    def from_bytes(cls, data: bytes, config: WindowConfig) -> MeterState:
        """Read bytes from :meth:`to_bytes`; raises StateDecodeError when they do not fit."""
        fields = decode_state(data, config)
        # what __init__ checks and converts, decode_state guarantees: skip it (a hot path)
        state = cls.__new__(cls)
        state._config = config
        state._values = fields.values_kwh
        state._flags = flags = fields.flags
        state._flag_words = None if config.lookback_slots & 3 else flags.view(np.uint32)
        state._head = fields.head_slot
        state._last_arrival_ms = fields.last_arrival_ms
        state._register_kwh = fields.register_kwh
        state._register_slot = fields.register_slot
        state._settled = fields.settled
        return state

    # ------------------------------------------------------------------ read-only properties

    @property
    def config(self) -> WindowConfig:
        """The window configuration this state was built with."""
        return self._config

    @property
    def head_slot(self) -> int | None:
        """Index of the newest slot in the window (None when no reading was accepted yet)."""
        return self._head

    @property
    def head_end_ms(self) -> int | None:
        """End time (epoch ms) of the head slot."""
        return None if self._head is None else self._head * self._config.resolution_ms

    @property
    def last_arrival_ms(self) -> int:
        """Largest ``arrival_ms`` of an accepted (APPLIED/CORRECTED) reading; 0 when none."""
        return self._last_arrival_ms

    @property
    def register_baseline(self) -> tuple[float, int] | None:
        """``(register_kwh, slot)`` of the last accepted register reading, if any."""
        if self._register_kwh is None or self._register_slot is None:
            return None
        return self._register_kwh, self._register_slot

    @property
    def flatlined(self) -> bool:
        """Whether :meth:`flatline_run_slots` reached ``config.flatline_slots``."""
        return self.flatline_run_slots() >= self._config.flatline_slots

    # ------------------------------------------------------------------ updates

    def update(self, ts_ms: int, kwh: float, arrival_ms: int) -> Outcome:
        """Offer the energy ``kwh`` of the interval ending at event time ``ts_ms``.

        APPLIED: new head slot, or a MISSING slot within lateness filled. DUPLICATE: the slot
        holds the same float32 value already (state unchanged). CORRECTED: it held another value;
        this one replaces it. TOO_LATE: older than ``allowed_lateness_slots`` (state unchanged),
        unless the slot is still in the window and holds this very value (as settled slots are
        stored: :func:`~streamer.state.codec.settle` of both equal): then DUPLICATE (a replay).
        """
        value = _as_float32(kwh)
        slot = -(-int(ts_ms) // self._config.resolution_ms)
        head = self._head
        lookback = self._values.shape[0]
        if head is None or slot > head:
            if head is None:
                self._start_at(slot)
            else:
                self._advance_to(slot)
            self._values[lookback - 1] = value
            self._flags[lookback - 1] = _OBSERVED
            self._touch(arrival_ms)
            return _OUTCOME_APPLIED
        lag = head - slot
        index = lookback - 1 - lag
        if lag >= self._config.allowed_lateness_slots:
            # A redelivered reading (a replay after a crash) of a slot still in the window is a
            # duplicate, not a late one: it changes nothing and must not be dead-lettered twice.
            # The slot is settled: compare as stored (a value kept in memory and the same value
            # read back from bytes must give the same outcome).
            if lag < lookback and self._flags.item(index) != _MISSING:
                held = self._values.item(index)
                if held == value or settle(held) == settle(value):
                    return _OUTCOME_DUPLICATE
            return _OUTCOME_TOO_LATE
        if self._flags.item(index) == _MISSING:
            self._values[index] = value
            self._flags[index] = _OBSERVED
            self._touch(arrival_ms)
            return _OUTCOME_APPLIED
        if self._values.item(index) == value:
            return _OUTCOME_DUPLICATE
        self._values[index] = value
        self._flags[index] = _CORRECTED
        self._touch(arrival_ms)
        return _OUTCOME_CORRECTED

    def update_register(
        self, ts_ms: int, register_kwh: float, arrival_ms: int
    ) -> tuple[Outcome, RegisterEvent | None]:
        """Offer a cumulative register reading taken at event time ``ts_ms``.

        The first reading is a baseline (APPLIED, no slot filled, head moves to its slot). Later,
        the energy since the previous reading goes to the slots after the previous reading's slot
        up to this one: one slot -> OBSERVED; ``k`` slots -> spread evenly, REGISTER_SPREAD; the
        same slot -> added to that slot if it holds a value. A decrease is a rollover (wrapped
        delta applied, ``RegisterEvent("rollover")``) when plausible, otherwise a reset (new
        baseline, nothing filled, ``RegisterEvent("reset")``); so is an implausibly big jump.
        Same slot and same value: DUPLICATE. An older slot: see :meth:`_older_register` (a late
        reading splits the spread it falls in, CORRECTED; a replay is a DUPLICATE; otherwise
        REGISTER_OUT_OF_ORDER, state unchanged).
        """
        reading = float(register_kwh)
        if not math.isfinite(reading):
            raise InvalidReadingError(
                f"register_kwh={register_kwh!r} is not finite; validate readings before they "
                "reach the state"
            )
        slot = -(-int(ts_ms) // self._config.resolution_ms)
        previous = self._register_kwh
        previous_slot = self._register_slot
        if previous is None or previous_slot is None:
            self._set_baseline(reading, slot, arrival_ms)
            return Outcome.APPLIED, None
        if slot < previous_slot:
            return self._older_register(reading, slot, previous, previous_slot, arrival_ms), None
        if slot == previous_slot and reading == previous:
            return Outcome.DUPLICATE, None
        slots = slot - previous_slot
        step = register_step(previous, reading, slots, self._config.register_max_kwh_per_slot)
        if step.delta_kwh is None:
            self._set_baseline(reading, slot, arrival_ms)
            event = RegisterEvent("reset", int(ts_ms), previous, reading, step.detail)
            return Outcome.APPLIED, event
        self._spread(step.delta_kwh, previous_slot, slot)
        self._set_baseline(reading, slot, arrival_ms)
        if step.kind == "rollover":
            return Outcome.APPLIED, RegisterEvent(
                "rollover", int(ts_ms), previous, reading, step.detail
            )
        return Outcome.APPLIED, None

    def _older_register(
        self, reading: float, slot: int, newest: float, newest_slot: int, arrival_ms: int
    ) -> Outcome:
        """A register reading older than the newest one (late, or redelivered).

        Only the recent slots (within ``allowed_lateness_slots``: stored exactly) are used. The
        register's value at each slot up to the newest reading is the newest value less the
        energies after that slot. A reading inside a REGISTER_SPREAD run splits the run at its
        slot: the energy up to it and the energy after it are each spread over their own slots
        (one slot: OBSERVED), CORRECTED. A reading that matches the register's value at its
        slot is a DUPLICATE (a replay). Anything else (unknown energy in between, a reading
        that would make the register run backwards, a slot no longer recent) is
        REGISTER_OUT_OF_ORDER and leaves the state unchanged. Two spread runs next to each
        other are taken for one (where one ended is not stored).
        """
        head = self._head
        assert head is not None  # a register baseline exists, so a head does
        lookback = self._values.shape[0]
        recent_from = lookback - min(self._config.allowed_lateness_slots, lookback)
        at = lookback - 1 - (head - slot)
        newest_at = lookback - 1 - (head - newest_slot)
        if at < recent_from:
            return Outcome.REGISTER_OUT_OF_ORDER
        flags = self._flags
        values = self._values
        if bool(np.any(flags[at + 1 : newest_at + 1] == _MISSING)):
            return Outcome.REGISTER_OUT_OF_ORDER
        after = values[at + 1 : newest_at + 1].astype(np.float64)
        tolerance = _REGISTER_MATCH_KWH + 1e-6 * float(np.abs(after).sum())
        if flags.item(at) != _SPREAD:
            here = newest - float(after.sum())
            if abs(reading - here) <= tolerance:  # also a baseline's own slot
                return Outcome.DUPLICATE
            return Outcome.REGISTER_OUT_OF_ORDER
        start = at  # the run of spread slots around ``slot``: start..stop
        while start - 1 >= recent_from and flags.item(start - 1) == _SPREAD:
            start -= 1
        if start == 0 or flags.item(start - 1) == _SPREAD:
            return Outcome.REGISTER_OUT_OF_ORDER  # the run begins before the recent slots
        stop = at
        while stop + 1 <= newest_at and flags.item(stop + 1) == _SPREAD:
            stop += 1
        register_after_stop = newest - float(values[stop + 1 : newest_at + 1].sum(dtype=np.float64))
        register_before = register_after_stop - float(
            values[start : stop + 1].sum(dtype=np.float64)
        )
        first_kwh = reading - register_before
        second_kwh = register_after_stop - reading
        if first_kwh < -tolerance or second_kwh < -tolerance:
            return Outcome.REGISTER_OUT_OF_ORDER
        if at == stop:  # the reading closes the run: nothing to split
            if abs(second_kwh) <= tolerance:
                return Outcome.DUPLICATE
            return Outcome.REGISTER_OUT_OF_ORDER
        for first, last, kwh in ((start, at, first_kwh), (at + 1, stop, second_kwh)):
            slots = last - first + 1
            values[first : last + 1] = _as_float32(max(kwh, 0.0) / slots)
            flags[first : last + 1] = _OBSERVED if slots == 1 else _SPREAD
        self._settled = None  # slots were rewritten: encode afresh
        self._touch(arrival_ms)
        return Outcome.CORRECTED

    def _set_baseline(self, reading: float, slot: int, arrival_ms: int) -> None:
        self._register_kwh = reading
        self._register_slot = slot
        if self._head is None:
            self._start_at(slot)
        elif slot > self._head:
            self._advance_to(slot)
        self._touch(arrival_ms)

    def _spread(self, delta_kwh: float, previous_slot: int, slot: int) -> None:
        """Put ``delta_kwh`` on slots ``previous_slot + 1 .. slot`` (or add it to ``slot``)."""
        if self._head is None or slot > self._head:
            self._advance_to(slot)
        assert self._head is not None  # advanced above
        lookback = self._values.shape[0]
        last = lookback - 1 - (self._head - slot)
        if last < 0:
            return  # entirely before the window (a mixed meter whose head ran ahead)
        slots = slot - previous_slot
        settled = self._settled
        if settled is not None and (
            settled.head_slot is None
            or min(slot, previous_slot + 1)
            <= settled.head_slot - self._config.allowed_lateness_slots
        ):
            self._settled = None  # it writes a slot whose code is kept: encode afresh
        if slots == 0:
            if self._flags.item(last) != _MISSING:
                self._values[last] = _as_float32(self._values.item(last) + delta_kwh)
            return
        if slots == 1:  # the usual step: the slot after the previous reading's
            self._values[last] = _as_float32(delta_kwh)
            self._flags[last] = _OBSERVED
            return
        first = max(last - slots + 1, 0)
        self._values[first : last + 1] = _as_float32(delta_kwh / slots)
        self._flags[first : last + 1] = _SPREAD

    def _advance_to(self, slot: int) -> None:
        """Make ``slot`` the head; slots skipped over become MISSING. Requires slot > head."""
        head = self._head
        self._head = slot
        if head is None:
            return
        shift = slot - head
        lookback = self._values.shape[0]
        if shift >= lookback:
            self._values.fill(_NAN32)
            self._flags.fill(_MISSING)
            return
        keep = lookback - shift
        values, flags = self._values, self._flags
        values[:keep] = values[shift:]
        flags[:keep] = flags[shift:]
        if shift == 1:  # the usual step: one slot (an item is set in a sixth of a slice's time)
            values[keep] = _NAN32
            flags[keep] = _MISSING
        else:
            values[keep:] = _NAN32
            flags[keep:] = _MISSING

    def _start_at(self, slot: int) -> None:
        """Make ``slot`` the head of a state that has none (its first reading), before a
        reading writes that slot alone (or none). An empty state's settled slots are all
        MISSING: they encode as :func:`settle_slots` would find them, without its numpy calls."""
        self._head = slot
        values = self._values
        lookback = values.shape[0]
        recent = self._config.allowed_lateness_slots
        if self._settled is None and lookback > recent and np.isnan(values).all():
            self._settled = missing_settled(slot, lookback - recent)

    def _touch(self, arrival_ms: int) -> None:
        if arrival_ms > self._last_arrival_ms:
            self._last_arrival_ms = int(arrival_ms)

    def _extend_in_order(self, slots: np.ndarray, kwh: np.ndarray, arrival_ms: int) -> None:
        """Apply readings whose ``slots`` strictly increase and all lie after the head.

        Same result as calling :meth:`update` for each (all APPLIED). ``kwh`` must fit float32.
        Used by :func:`streamer.state.batch.apply_batch`.
        """
        newest = int(slots[-1])
        self._advance_to(newest)
        lookback = self._values.shape[0]
        index = (lookback - 1) - (newest - slots)
        keep = index >= 0
        self._values[index[keep]] = kwh[keep].astype(np.float32) + np.float32(0.0)
        self._flags[index[keep]] = _OBSERVED
        self._touch(arrival_ms)

    # ------------------------------------------------------------------ reads

    def stored_window(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]]:
        """The stored values (NaN where missing) and flags, oldest..newest, not imputed: the
        state's own arrays, read-only views (batched imputation stacks them for many meters)."""
        values = self._values.view()
        flags = self._flags.view()
        values.setflags(write=False)
        flags.setflags(write=False)
        return values, flags

    def get(self) -> WindowView:
        """The window, oldest..newest, with gaps imputed (see :func:`~.imputation.impute`)."""
        if self._head is None:
            raise EmptyStateError(
                "the meter has no readings yet, so there is no window; check head_slot is not "
                "None (or that update returned APPLIED) before calling get()"
            )
        values, flags = impute(
            self._values,
            self._flags,
            self._config.slots_per_day,
            self._config.interpolate_max_gap_slots,
        )
        values.setflags(write=False)
        flags.setflags(write=False)
        observed = int(np.count_nonzero(real_mask(self._flags)))
        return WindowView(
            values_kwh=values,
            flags=flags,
            end_ms=self._head * self._config.resolution_ms,
            observed_fraction=observed / self._values.shape[0],
        )

    def flatline_run_slots(self, cap: int | None = None) -> int:
        """Length of the run of identical observed values ending at the newest observed slot.

        Observed means OBSERVED or CORRECTED (register spreads are equal by construction and do
        not count). A MISSING or spread slot ends the run. 0 when nothing is observed.

        With ``cap``, the result is ``min(run, cap)``, found from the last ``cap`` slots only when
        the newest slot is observed (the common case: a few microseconds, not a window scan).
        """
        if self._head is None:  # no reading accepted yet: nothing observed
            return 0
        flags = self._flags
        if cap is not None and cap > 0 and flags.shape[0] >= cap:
            last = flags.item(-1)
            if last in (_OBSERVED, _CORRECTED):
                # the common case: the slot before differs or is not observed, a run of 1 (two
                # slots are always there: lookback_slots >= 2)
                values = self._values
                newest = values.item(-1)
                before = flags.item(-2)
                if newest == newest and (  # (newest not NaN, as the loop below needs)
                    values.item(-2) != newest or before not in (_OBSERVED, _CORRECTED)
                ):
                    return 1
                # a short tail: plain Python beats a handful of numpy calls here
                tail_flags = flags[-cap:].tolist()
                tail = self._values[-cap:].tolist()
                newest = tail[-1]
                run = 0
                for i in range(cap - 1, -1, -1):
                    if tail[i] != newest or tail_flags[i] not in (_OBSERVED, _CORRECTED):
                        break
                    run += 1
                return run
        run = self._full_flatline_run()
        return run if cap is None else min(run, cap)

    def _full_flatline_run(self) -> int:
        observed = (self._flags == _OBSERVED) | (self._flags == _CORRECTED)
        positions = np.flatnonzero(observed)
        if positions.size == 0:
            return 0
        newest = int(positions[-1])
        same = observed[: newest + 1] & (self._values[: newest + 1] == self._values[newest])
        breaks = np.flatnonzero(~same)
        return newest + 1 if breaks.size == 0 else newest - int(breaks[-1])

    def __repr__(self) -> str:
        observed = int(np.count_nonzero(real_mask(self._flags)))
        return (
            f"MeterState(head_slot={self._head}, observed={observed}/{self._values.shape[0]}, "
            f"last_arrival_ms={self._last_arrival_ms}, register={self.register_baseline})"
        )
