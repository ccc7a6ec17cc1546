"""One group's state in the stream: its members' newest forecasts and readings, the group
forecasts it issued, and the calibration of its band. Pure: no Kafka, tested without it.

Contributions arrive from the workers that own the members (re-keyed by group through Kafka):

- ``add_forecast(meter, origin_slot, expected_kwh)``: a member's forecast from ``origin_slot``
  (its expected values, one per horizon slot). It replaces the member's previous one, so a
  contribution delivered twice (a replay, a rebalance) changes nothing: members are never
  counted twice.
- ``add_actual(meter, slot, kwh)``: a member's reading of ``slot`` (a correction replaces it).

``issue(now_ms)`` issues the group forecast of each origin once every member has a forecast from
it (or later), or once it has waited ``lateness`` for the others (wall-clock time since it was
first found waiting, or the other members already ``lateness`` slots, at least 2, further on:
a backfill faster than real time is not held up by the clock): centred on the sum of the
members' expected values, a member without a forecast from that origin filled from its newest
earlier one (the same slot, or the same time of day a day earlier) and counted as ``filled``,
a member with none within ``max_fill_slots`` counted as ``missing``; then the band comes from
the group's calibrator (:mod:`streamer.groups.calibration`), learnt from realised totals.

``realise(now_ms)`` closes each slot once every member has read it or moved past it (or after
``lateness``): its realised total, and, when every member read it, the pairs (horizon step,
forecast total, realised total) of the forecasts issued for it at the tracked horizons, which the
calibrator learns from.

Slots are counted as slot indices (``slot_end_ms // resolution_ms``); an origin is the slot a
forecast was made after (its horizon starts at ``origin + 1``).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
import orjson

from streamer.drift.sealed import fingerprint, seal, unseal
from streamer.groups.calibration import GroupBand, GroupCalibrationConfig, GroupCalibrator
from streamer.groups.errors import GroupStateDecodeError

F64 = npt.NDArray[np.float64]
MAGIC: Final = b"GS"
VERSION: Final = 1
#: Sizes that open the body: header JSON, calibrator bytes, issued forecasts kept.
_SIZES: Final = struct.Struct("<III")
NONE: Final = -(2**31)
#: Slots kept open at most, waiting for members' readings (older ones are realised as they are).
MAX_OPEN_SLOTS: Final = 96


@dataclass(frozen=True, slots=True)
class GroupConfig:
    horizon_slots: int = 48
    resolution_seconds: int = 1800
    lateness_seconds: int = 600
    max_fill_slots: int = 336
    calibration: GroupCalibrationConfig = field(default_factory=GroupCalibrationConfig)

    @property
    def resolution_ms(self) -> int:
        return self.resolution_seconds * 1000

    @property
    def day_slots(self) -> int:
        return 86_400 // self.resolution_seconds

    @property
    def lateness_ms(self) -> int:
        return self.lateness_seconds * 1000

    @property
    def fingerprint(self) -> int:
        """Names the layout of a group's state bytes (the horizon sets its rows)."""
        return fingerprint(struct.pack("<I", self.horizon_slots))

    @property
    def lateness_slots(self) -> int:
        """Whole slots a late member is waited for (at least the slot itself)."""
        return max(1, math.ceil(self.lateness_seconds / self.resolution_seconds))


@dataclass(slots=True)
class LatenessWait:
    """A wait on late members: since when (wall-clock ms, :data:`NONE` while none), and the
    newest origin (or slot) pending when it began, which the wait covers."""

    since: int = NONE
    upto: int = NONE

    def released(self, now_ms: int, newest: int, lateness_ms: int) -> int | None:
        """None to keep waiting (starting the wait now, for what is pending up to ``newest``,
        when none runs); once ``lateness_ms`` has passed, the newest item the wait covered:
        those go now, and the wait ends."""
        if self.since == NONE:
            self.since, self.upto = now_ms, newest
            return None
        if now_ms - self.since < lateness_ms:
            return None
        self.since = NONE
        return self.upto

    def clear(self) -> None:
        self.since = NONE


@dataclass(frozen=True, slots=True)
class IssuedGroupForecast:
    """A group forecast as issued: the centre and band, and how its members were covered."""

    group_id: str
    kind: str
    origin_slot: int
    members: int
    reported: int
    filled: int
    missing: int
    members_sum_kwh: F64
    band: GroupBand


@dataclass(frozen=True, slots=True)
class RealisedTotal:
    """A slot's realised group total; ``complete`` when every member read it."""

    group_id: str
    kind: str
    slot: int
    total_kwh: float
    members: int
    read: int
    #: (step, forecast total, realised total) of the forecasts issued for this slot
    pairs: tuple[tuple[int, float, float], ...]

    @property
    def complete(self) -> bool:
        return self.read == self.members


class GroupState:
    """See the module docstring."""

    def __init__(self, group_id: str, kind: str, config: GroupConfig) -> None:
        self.group_id = group_id
        self.kind = kind
        self.config = config
        self.members: list[str] = []
        h = config.horizon_slots
        self._index: dict[str, int] = {}
        self.last_origin = np.empty(0, dtype=np.int64)
        self.expected = np.empty((0, h), dtype=np.float32)
        #: open slots (not realised yet): slot -> each member's reading (NaN: not read)
        self.open_slots: dict[int, npt.NDArray[np.float32]] = {}
        #: each member's newest slot read
        self.member_newest_slot = np.empty(0, dtype=np.int64)
        self.next_origin = NONE  # the first origin not issued yet
        self.next_slot = NONE  # the first slot not realised yet
        self.issued_origin = np.empty(0, dtype=np.int64)
        self.issued_total = np.empty((0, h), dtype=np.float64)
        self.calibrator = GroupCalibrator(config.calibration)
        #: the wait of the oldest pending origin (and slot) on late members
        self.origin_wait = LatenessWait()
        self.slot_wait = LatenessWait()

    # --- membership -------------------------------------------------------------------------
    def set_members(self, meter_ids: Iterable[str]) -> None:
        """The group's members from now on (kept members keep what they sent)."""
        wanted = sorted(set(meter_ids))
        if wanted == self.members:
            return
        h = self.config.horizon_slots
        last = np.full(len(wanted), NONE, dtype=np.int64)
        newest_read = np.full(len(wanted), NONE, dtype=np.int64)
        expected = np.zeros((len(wanted), h), dtype=np.float32)
        columns = np.array([self._index.get(m, -1) for m in wanted], dtype=np.int64)
        for slot, row in self.open_slots.items():
            moved = np.full(len(wanted), np.nan, dtype=np.float32)
            kept = columns >= 0
            moved[kept] = row[columns[kept]]
            self.open_slots[slot] = moved
        for i, meter in enumerate(wanted):
            j = self._index.get(meter)
            if j is not None:
                last[i], expected[i] = self.last_origin[j], self.expected[j]
                newest_read[i] = self.member_newest_slot[j]
        self.members = wanted
        self._index = {m: i for i, m in enumerate(wanted)}
        self.last_origin, self.expected = last, expected
        self.member_newest_slot = newest_read

    # --- contributions ----------------------------------------------------------------------
    def add_forecast(self, meter_id: str, origin_slot: int, expected_kwh: npt.ArrayLike) -> bool:
        """A member's forecast; False when the meter is not a member or the origin is older
        than one already issued for the group (too late to count)."""
        i = self._index.get(meter_id)
        if i is None or origin_slot < self.last_origin[i]:
            return False
        values = np.asarray(expected_kwh, dtype=np.float32)[: self.config.horizon_slots]
        if not np.isfinite(values).all():
            values = np.where(np.isfinite(values), values, np.float32(0.0))
        self.last_origin[i] = origin_slot
        row = self.expected[i]
        if values.shape[0] < row.shape[0]:
            row[:] = 0.0
        row[: values.shape[0]] = values
        if self.next_origin == NONE:
            self.next_origin = origin_slot
        return origin_slot >= self.next_origin

    def add_actual(self, meter_id: str, slot: int, kwh: float) -> bool:
        """A member's reading of ``slot``; False when not a member or the slot is closed."""
        i = self._index.get(meter_id)
        if i is None or not math.isfinite(kwh):
            return False
        if self.next_slot == NONE:
            self.next_slot = slot
        if slot < self.next_slot:
            return False
        row = self.open_slots.get(slot)
        if row is None:
            row = self.open_slots[slot] = np.full(len(self.members), np.nan, dtype=np.float32)
        row[i] = kwh  # a correction replaces the member's reading
        if slot > self.member_newest_slot[i]:
            self.member_newest_slot[i] = slot
        while len(self.open_slots) > MAX_OPEN_SLOTS:  # far behind: the oldest goes as it is
            self.next_slot = max(self.next_slot, min(self.open_slots) + 1)
            del self.open_slots[min(self.open_slots)]
        return True

    # --- issuing ------------------------------------------------------------------------------
    def issue(self, now_ms: int, prior: GroupCalibrator | None = None) -> list[IssuedGroupForecast]:
        """The group forecasts now due, oldest origin first (see the module docstring)."""
        out: list[IssuedGroupForecast] = []
        if self.next_origin == NONE or not self.members:
            return out
        newest = int(self.last_origin.max())
        flush_upto = NONE
        while self.next_origin <= newest:
            origin = self.next_origin
            if origin > flush_upto and not bool((self.last_origin >= origin).all()):
                released = self.origin_wait.released(now_ms, newest, self.config.lateness_ms)
                if released is None:
                    break
                flush_upto = released
            out.append(self._issue(origin, prior))
            self.next_origin = origin + 1
        if self.next_origin > newest:
            self.origin_wait.clear()
        return out

    def _issue(self, origin: int, prior: GroupCalibrator | None) -> IssuedGroupForecast:
        h, day = self.config.horizon_slots, self.config.day_slots
        steps = np.arange(1, h + 1, dtype=np.int64)
        last = self.last_origin
        known = (last != NONE) & (origin - last <= self.config.max_fill_slots)
        # each member's forecast from ``last``: the same slot where it covers it, else the
        # same time of day a day (or days) earlier or later
        index = steps[None, :] + (origin - last)[:, None] - 1
        index = np.where(index >= h, index - day * np.ceil((index - h + 1) / day), index)
        index = np.where(index < 0, index + day * np.ceil(-index / day), index).astype(np.int64)
        usable = known[:, None] & (index >= 0) & (index < h)
        values = np.take_along_axis(self.expected, np.clip(index, 0, h - 1), axis=1)
        total = np.where(usable, values.astype(np.float64), 0.0).sum(axis=0)
        reported = int((known & (last >= origin)).sum())
        filled = int((known & (last < origin)).sum())
        missing = len(self.members) - reported - filled
        band = self.calibrator.publish(steps, total, prior)
        self.issued_origin = np.append(self.issued_origin[-(h - 1) :], origin)
        self.issued_total = np.vstack([self.issued_total[-(h - 1) :], total[None, :]])
        issued = IssuedGroupForecast(
            self.group_id,
            self.kind,
            origin,
            len(self.members),
            reported,
            filled,
            missing,
            total,
            band,
        )
        return issued

    # --- realised totals ------------------------------------------------------------------------
    def realise(self, now_ms: int, prior: GroupCalibrator | None = None) -> list[RealisedTotal]:
        """The slots now closed, oldest first; the calibrator (and ``prior``) learn from the
        complete ones."""
        out: list[RealisedTotal] = []
        if self.next_slot == NONE or not self.members or not self.open_slots:
            return out
        newest = max(self.open_slots)
        flush_upto = NONE
        while self.next_slot <= newest:
            slot = self.next_slot
            row = self.open_slots.get(slot)
            has = np.zeros(len(self.members), dtype=bool) if row is None else np.isfinite(row)
            read = int(has.sum())
            # a member that read a later slot and not this one skipped it (readings of a
            # meter arrive in order): only members not yet that far are waited for
            waiting = ~has & (self.member_newest_slot <= slot)
            if slot > flush_upto and waiting.any():
                released = self.slot_wait.released(now_ms, newest, self.config.lateness_ms)
                if released is None:
                    break
                flush_upto = released
            total = 0.0 if row is None else float(np.nansum(row, dtype=np.float64))
            self.open_slots.pop(slot, None)
            pairs: tuple[tuple[int, float, float], ...] = ()
            if read == len(self.members):
                pairs = self._pairs(slot, total)
                if pairs:
                    steps = np.array([p[0] for p in pairs])
                    forecasts = np.array([p[1] for p in pairs])
                    actuals = np.full(len(pairs), total)
                    self.calibrator.update(steps, forecasts, actuals)
                    if prior is not None:
                        prior.update(steps, forecasts, actuals)
            out.append(
                RealisedTotal(self.group_id, self.kind, slot, total, len(self.members), read, pairs)
            )
            self.next_slot = slot + 1
        if self.next_slot > newest:
            self.slot_wait.clear()
        return out

    def _pairs(self, slot: int, total: float) -> tuple[tuple[int, float, float], ...]:
        """The forecasts issued for ``slot`` at the calibration's tracked horizons (1, 4, 12,
        24, 48 slots ahead), as the per-meter ledger tracks them: a bucket then holds
        ``window`` slots of its own horizon, not the last few hours of every step."""
        steps = slot - self.issued_origin
        h = self.config.horizon_slots
        tracked = np.isin(steps, np.asarray(self.config.calibration.horizons))
        rows = np.flatnonzero((steps >= 1) & (steps <= h) & tracked)
        return tuple(
            (int(steps[r]), float(self.issued_total[r, steps[r] - 1]), total) for r in rows
        )

    # --- bytes ---------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        header = orjson.dumps(
            {
                "g": self.group_id,
                "k": self.kind,
                "m": self.members,
                "o": self.next_origin,
                "s": self.next_slot,
                "n": len(self.open_slots),
                "wo": self.origin_wait.since,
                "ws": self.slot_wait.since,
                "uo": self.origin_wait.upto,
                "us": self.slot_wait.upto,
            }
        )
        calibrator = self.calibrator.to_bytes()
        parts = [
            self.last_origin.astype("<i8").tobytes(),
            self.member_newest_slot.astype("<i8").tobytes(),
            self.expected.astype("<f4").tobytes(),
            np.array(sorted(self.open_slots), dtype="<i8").tobytes(),
            *(self.open_slots[slot].astype("<f4").tobytes() for slot in sorted(self.open_slots)),
            self.issued_origin.astype("<i8").tobytes(),
            self.issued_total.astype("<f8").tobytes(),
        ]
        sizes = _SIZES.pack(len(header), len(calibrator), len(self.issued_origin))
        body = sizes + header + calibrator + b"".join(parts)
        return seal(MAGIC, VERSION, 0, self.config.fingerprint, body)

    @classmethod
    def from_bytes(cls, data: bytes, config: GroupConfig) -> GroupState:
        _, data = unseal(
            data,
            magic=MAGIC,
            version=VERSION,
            fingerprint_=config.fingerprint,
            what="group state",
            error=GroupStateDecodeError,
        )
        try:
            header_len, calibrator_len, issued = _SIZES.unpack_from(data)
            at = _SIZES.size
            header = orjson.loads(data[at : at + header_len])
            at += header_len
            state = cls(header["g"], header["k"], config)
            state.calibrator = GroupCalibrator.from_bytes(
                data[at : at + calibrator_len], config.calibration
            )
            at += calibrator_len
            members: list[str] = header["m"]
            m, h = len(members), config.horizon_slots

            def take(dtype: str, count: int) -> npt.NDArray[np.generic]:
                nonlocal at
                size = np.dtype(dtype).itemsize * count
                array = np.frombuffer(data[at : at + size], dtype=dtype).copy()
                if array.size != count:
                    raise ValueError("truncated")
                at += size
                return array

            state.members = members
            state._index = {meter: i for i, meter in enumerate(members)}
            state.last_origin = take("<i8", m).astype(np.int64)
            state.member_newest_slot = take("<i8", m).astype(np.int64)
            state.expected = take("<f4", m * h).reshape(m, h).astype(np.float32)
            open_slots = take("<i8", int(header["n"])).astype(np.int64).tolist()
            state.open_slots = {int(slot): take("<f4", m).astype(np.float32) for slot in open_slots}
            state.issued_origin = take("<i8", issued).astype(np.int64)
            state.issued_total = take("<f8", issued * h).reshape(issued, h).astype(np.float64)
            state.next_origin, state.next_slot = int(header["o"]), int(header["s"])
            state.origin_wait = LatenessWait(int(header["wo"]), int(header["uo"]))
            state.slot_wait = LatenessWait(int(header["ws"]), int(header["us"]))
            if at != len(data):
                raise ValueError("trailing bytes")
        except GroupStateDecodeError:
            raise
        except Exception as exc:
            raise GroupStateDecodeError(f"group state unreadable: {exc}") from None
        return state
