"""One meter's forecasts for future slots, kept until the actuals arrive."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from math import isfinite

import numpy as np
import numpy.typing as npt

from streamer.accuracy.errors import AccuracyInputError, AccuracyStateDecodeError
from streamer.accuracy.ledger_config import VALUES_PER_ENTRY, LedgerConfig
from streamer.accuracy.match import Match
from streamer.drift.sealed import seal, unseal

MAGIC = b"FL"
VERSION = 1
_HAS_HEAD = 1
_HEAD = struct.Struct("<q")
_VALUE_DTYPE = np.dtype("<f2")
_FLOAT16_MAX = float(np.finfo(np.float16).max)
#: One entry: point, p10, p50, p90 as little-endian float16 (struct rounds like numpy).
_ENTRY = struct.Struct("<4e")
_ENTRY_SIZE = _ENTRY.size
#: An empty entry: four float16 NaN (the canonical quiet NaN, 0x7E00).
_EMPTY = np.full(VALUES_PER_ENTRY, np.nan, dtype=_VALUE_DTYPE).tobytes()
_EMPTY_WORD = int.from_bytes(_EMPTY, "little")
#: High bytes of the float16 with an all-ones exponent (NaN, infinity): ``byte & 0x7C == 0x7C``.
_SPECIAL_HIGH_BYTES = bytes(b for b in range(256) if b & 0x7C == 0x7C)
#: The quantile levels a ledger stores, in the column order of ``record``'s ``quantiles``.
LEDGER_LEVELS = (0.1, 0.5, 0.9)


def quantile_columns(levels: Sequence[float], wanted: Sequence[float] = LEDGER_LEVELS) -> list[int]:
    """Column of each ``wanted`` level in a forecast's ``levels`` (to pick p10, p50, p90 out of
    ``ForecastBatch.quantiles_kwh``); raises AccuracyInputError when one is missing."""
    out = []
    for level in wanted:
        found = [i for i, lv in enumerate(levels) if math.isclose(lv, level, abs_tol=1e-9)]
        if not found:
            raise AccuracyInputError(
                f"the forecast has quantile levels {list(levels)}, the ledger needs {level}; "
                "serve a model whose card lists 0.1, 0.5 and 0.9 in quantile_levels"
            )
        out.append(found[0])
    return out


class ForecastLedger:
    """Per meter: for each tracked horizon ``h``, the forecast of each of the next ``h``
    target slots issued ``h`` slots before it; :meth:`match` pairs them with the actual.

    Layout: horizon ``h`` has a ring of ``h`` entries, the forecast for target slot ``t`` at
    position ``t mod h``; an entry is (point, p10, p50, p90) as float16, NaN when empty. With
    forecasts every slot, the ring of ``h`` holds exactly the targets ``head + 1 .. head + h``
    (``head``: the newest origin recorded). Bytes: :attr:`LedgerConfig.encoded_size`, 732 with
    the default horizons (1, 4, 12, 24, 48). ``point`` is kept beside p50: the fallback
    seasonal-naive model's median is the point plus its median error, not the point.

    Order of calls: the actual of a slot must be matched before a forecast from that slot (or
    a later one) is recorded, since recording origin ``o`` drops every entry whose target is
    ``<= o`` (it could no longer be told apart from a later target). That is the worker's
    order: a reading closes its slot (match), then the meter is forecast from it (record). So a
    reading that comes after a later slot already produced a forecast is not matched, and
    neither is a correction (an entry is matched once). With a forecast cadence of ``k``
    slots, a horizon ``h`` entry exists for the targets whose origin was a forecast slot.

    Values are stored as float16 (3 significant digits, clamped to +-65504 kWh). The entries
    live in a ``bytearray`` in their stored layout, read and written a few at a time with
    :mod:`struct` (a handful per call: cheaper than numpy's per-call overhead).

    >>> ledger = ForecastLedger()
    >>> ledger.record(100, np.arange(1.0, 49.0), np.repeat(np.arange(1.0, 49.0)[:, None], 3, 1))
    5
    >>> [(m.horizon_slots, m.point) for m in ledger.match(101, 1.5)]
    [(1, 1.0)]
    >>> [(m.horizon_slots, m.point) for m in ledger.match(104, 4.0)]
    [(4, 4.0)]
    """

    # ``_encoded``: the ledger's bytes as it is (None once a record or a match changed it), so
    # that a record rewritten with its ledger untouched does not encode it again
    __slots__ = ("_config", "_encoded", "_entries", "_head")

    def __init__(self, config: LedgerConfig | None = None) -> None:
        self._config = config if config is not None else LedgerConfig()
        self._head: int | None = None
        self._entries = bytearray(_EMPTY * self._config.entries)
        self._encoded: bytes | None = None

    # ------------------------------------------------------------------ bytes

    def to_bytes(self) -> bytes:
        """``config.encoded_size`` bytes; equal ledgers give equal bytes."""
        if self._encoded is not None:
            return self._encoded
        head = self._head
        body = _HEAD.pack(0 if head is None else head) + self._entries
        encoded = self._encoded = seal(
            MAGIC, VERSION, 0 if head is None else _HAS_HEAD, self._config.fingerprint(), body
        )
        return encoded

    @classmethod
    def from_bytes(cls, data: bytes, config: LedgerConfig | None = None) -> ForecastLedger:
        """Read :meth:`to_bytes` output; raises AccuracyStateDecodeError when it does not fit."""
        cfg = config if config is not None else LedgerConfig()
        flags, body = unseal(
            data,
            magic=MAGIC,
            version=VERSION,
            fingerprint_=cfg.fingerprint(),
            what="forecast ledger state",
            error=AccuracyStateDecodeError,
        )
        entries = cfg.entries
        if flags not in (0, _HAS_HEAD) or len(body) != _HEAD.size + entries * _ENTRY_SIZE:
            raise AccuracyStateDecodeError(
                f"forecast ledger state has flags {flags:#x} and {len(body)} body bytes, "
                f"expected {_HEAD.size + entries * _ENTRY_SIZE}; start this meter's ledger afresh"
            )
        # Every entry is empty (four canonical NaN) or holds four finite values: the float16
        # with an all-ones exponent (NaN, infinity) are exactly those of the empty entries.
        # Those halves are counted by their high bytes (odd offsets: little-endian) with one
        # bytes.translate; none of them means no empty entry either (a full ledger, common).
        high_bytes = body[_HEAD.size + 1 :: 2]
        special = len(high_bytes) - len(high_bytes.translate(None, _SPECIAL_HIGH_BYTES))
        empty = (
            int(np.count_nonzero(np.frombuffer(body, "<u8", offset=_HEAD.size) == _EMPTY_WORD))
            if special
            else 0
        )
        if special != VALUES_PER_ENTRY * empty:
            raise AccuracyStateDecodeError(
                "forecast ledger state holds partial or infinite entries; start this meter's "
                "ledger afresh"
            )
        if flags == 0 and empty != entries:
            raise AccuracyStateDecodeError(
                "forecast ledger state has entries but no head slot; start this meter's ledger "
                "afresh"
            )
        ledger = cls.__new__(cls)
        ledger._config = cfg
        ledger._entries = bytearray(memoryview(body)[_HEAD.size :])
        ledger._head = _HEAD.unpack_from(body)[0] if flags else None
        # what to_bytes writes for it (a head is stored only with its flag, checked above)
        ledger._encoded = data if type(data) is bytes and (flags or not any(body[:8])) else None
        return ledger

    # ------------------------------------------------------------------ reads

    @property
    def config(self) -> LedgerConfig:
        """The horizons kept."""
        return self._config

    @property
    def head_origin_slot(self) -> int | None:
        """The newest origin slot recorded (None before the first forecast)."""
        return self._head

    @property
    def pending(self) -> int:
        """Forecast entries waiting for their actual."""
        words = np.frombuffer(self._entries, "<u8")
        return int(np.count_nonzero(words != _EMPTY_WORD))

    # ------------------------------------------------------------------ updates

    def record(self, origin_slot: int, point: npt.ArrayLike, quantiles: npt.ArrayLike) -> int:
        """Keep the forecast issued at ``origin_slot`` (the newest history slot).

        ``point``: ``(H,)`` kWh for slots ``origin + 1 .. origin + H``; ``quantiles``:
        ``(H, 3)`` p10, p50, p90 (pick them with :func:`quantile_columns`). Horizons beyond
        ``H`` are not kept; neither is an entry with a non-finite value. An origin older than
        the newest recorded is ignored (a stale or replayed forecast); the same origin again
        replaces its entries. Returns the number of entries kept.
        """
        origin = int(origin_slot)
        pt = np.asarray(point, dtype=np.float64)
        qs = np.asarray(quantiles, dtype=np.float64)
        if pt.ndim != 1 or qs.shape != (pt.size, 3):
            raise AccuracyInputError(
                f"point must be (H,) and quantiles (H, 3) (p10, p50, p90), got {pt.shape} and "
                f"{qs.shape}"
            )
        head = self._head
        if head is not None and origin < head:
            return 0
        self._encoded = None
        config = self._config
        rings = config.rings
        every_ring = rings[-1][0] <= pt.size
        if not (every_ring and head is not None and origin - head == 1):
            # (origin = head + 1 with every ring kept: the loop below rewrites each ring's one
            # expired position, at origin mod h, so there is nothing to drop first)
            self._expire(origin)
        self._head = origin
        if not every_ring:
            rings = tuple(ring for ring in rings if ring[0] <= pt.size)
            if not rings:
                return 0
        lead = config.lead_index if every_ring else [h - 1 for h, _ in rings]
        points = pt[lead].tolist()
        rows = qs.take(lead, 0).tolist()
        entries = self._entries
        kept = 0
        for (h, offset), p, (p10, p50, p90) in zip(rings, points, rows, strict=True):
            at = (offset + origin % h) * _ENTRY_SIZE
            if isfinite(p) and isfinite(p10) and isfinite(p50) and isfinite(p90):
                # + 0.0 turns -0.0 into 0.0 so that equal forecasts give equal bytes
                try:
                    _ENTRY.pack_into(entries, at, p + 0.0, p10 + 0.0, p50 + 0.0, p90 + 0.0)
                except OverflowError:  # beyond float16: clamp
                    _ENTRY.pack_into(entries, at, *(_clamp(v) for v in (p, p10, p50, p90)))
                kept += 1
            else:
                entries[at : at + _ENTRY_SIZE] = _EMPTY
        return kept

    @staticmethod
    def record_rows(
        ledgers: Sequence[ForecastLedger],
        origin_slots: Sequence[int],
        point: npt.ArrayLike,
        quantiles: npt.ArrayLike,
    ) -> None:
        """:meth:`record` of row ``i`` of ``point`` ``(N, H)`` and ``quantiles`` ``(N, H, 3)``
        in ``ledgers[i]`` at ``origin_slots[i]``, for a batch's forecasts: the float16 entries
        of every row are made in one numpy pass (the same bytes as ``record`` packs one at a
        time: numpy rounds to float16 as ``struct`` does, and values are clamped to +-65504
        first, as ``record`` clamps an entry that overflows)."""
        pt = np.asarray(point, dtype=np.float64)
        qs = np.asarray(quantiles, dtype=np.float64)
        count = len(ledgers)
        if pt.ndim != 2 or pt.shape[0] != count or qs.shape != (*pt.shape, 3):
            raise AccuracyInputError(
                f"point must be (N, H) and quantiles (N, H, 3) for {count} ledgers, got "
                f"{pt.shape} and {qs.shape}"
            )
        if not count:
            return
        config = ledgers[0]._config
        rings = config.rings
        if rings[-1][0] > pt.shape[1] or any(
            ledger._config is not config and ledger._config != config for ledger in ledgers
        ):
            # a model shorter than the longest ring, or ledgers of several shapes: one by one
            for ledger, origin, row_point, row_quantiles in zip(
                ledgers, origin_slots, pt, qs, strict=True
            ):
                ledger.record(origin, row_point, row_quantiles)
            return
        lead = config.lead_index
        values = np.empty((count, len(rings), VALUES_PER_ENTRY), dtype=np.float64)
        values[:, :, 0] = pt[:, lead]
        values[:, :, 1:] = qs[:, lead, :]
        finite = np.isfinite(values).all(axis=2)
        values += 0.0  # -0.0 -> 0.0, so that equal forecasts give equal bytes
        np.clip(values, -_FLOAT16_MAX, _FLOAT16_MAX, out=values)
        words = values.astype(_VALUE_DTYPE).view("<u8").reshape(count, len(rings))
        if not finite.all():
            words[~finite] = _EMPTY_WORD
        data = words.tobytes()
        size = _ENTRY_SIZE
        at = 0
        for ledger, origin_slot in zip(ledgers, origin_slots, strict=True):
            origin = int(origin_slot)
            head = ledger._head
            if head is not None and origin < head:  # stale: ignored, as record ignores it
                at += len(rings) * size
                continue
            if head is None or origin - head != 1:
                ledger._expire(origin)
            ledger._head = origin
            ledger._encoded = None
            entries = ledger._entries
            for h, offset in rings:
                to = (offset + origin % h) * size
                entries[to : to + size] = data[at : at + size]
                at += size

    def _expire(self, origin: int) -> None:
        """Drop the entries for targets ``head + 1 .. origin`` (see the class docstring)."""
        head = self._head
        if head is None or origin <= head:
            return
        gap = origin - head
        entries = self._entries
        for h, offset in self._config.rings:
            if gap >= h:
                entries[offset * _ENTRY_SIZE : (offset + h) * _ENTRY_SIZE] = _EMPTY * h
                continue
            # ring positions (head + 1) % h onwards, gap of them, wrapping at h
            start = (head + 1) % h
            first = min(gap, h - start)
            at = (offset + start) * _ENTRY_SIZE
            entries[at : at + first * _ENTRY_SIZE] = _EMPTY * first
            if first < gap:
                at = offset * _ENTRY_SIZE
                entries[at : at + (gap - first) * _ENTRY_SIZE] = _EMPTY * (gap - first)

    def match(self, slot: int, actual_kwh: float) -> list[Match]:
        """The kept forecasts for target ``slot`` paired with ``actual_kwh``, by increasing
        horizon; each entry is returned once and then dropped. Empty when the actual is not
        finite (nothing is dropped then)."""
        actual = float(actual_kwh)
        return [Match(*entry, actual) for entry in self.take(slot, actual)]

    def take(self, slot: int, actual_kwh: float) -> list[tuple[int, float, float, float, float]]:
        """:meth:`match` as ``(horizon_slots, point, p10, p50, p90)`` tuples (the entries it
        drops), for a caller that makes its own :class:`Match` once it knows more of it."""
        head = self._head
        actual = float(actual_kwh)
        if head is None or not isfinite(actual):
            return []
        target = int(slot)
        lead = target - head
        if lead <= 0:
            return []
        entries = self._entries
        out = []
        for h, offset in self._config.rings:
            if h < lead:
                continue
            at = (offset + target % h) * _ENTRY_SIZE
            point, p10, p50, p90 = _ENTRY.unpack_from(entries, at)
            if point != point:  # NaN: empty
                continue
            entries[at : at + _ENTRY_SIZE] = _EMPTY
            self._encoded = None
            out.append((h, point, p10, p50, p90))
        return out

    def __repr__(self) -> str:
        return (
            f"ForecastLedger(head_origin_slot={self._head}, pending={self.pending}, "
            f"horizons={self._config.horizons})"
        )


def _clamp(value: float) -> float:
    return min(max(value, -_FLOAT16_MAX), _FLOAT16_MAX) + 0.0
