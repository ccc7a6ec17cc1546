"""``meter-readings``: the JSON a meter (or its head-end system) produces, and its validation.

A reading is a JSON object, keyed by meter id::

    {"meter_id": "m-000042", "ts": "2026-11-23T10:30:00+00:00", "kwh": 0.412,
     "meter_type": "net", "quality": "actual"}

- Encoding: UTF-8 without a byte order mark (RFC 8259, section 8.1). A BOM, UTF-16, UTF-32 or
  bytes that are not UTF-8 are refused as ``invalid_json``, with a detail naming the problem.
- Key: the meter id as UTF-8, always. A null or empty key is refused (``missing_key``): Kafka would
  spread such a meter's readings over partitions and split its state. A key other than
  ``meter_id`` is refused (``key_mismatch``).
- ``ts``: RFC 3339 with an offset, or epoch milliseconds (integer). Converted to UTC.
- ``kwh``: energy in the interval that ends at ``ts``; or instead ``register_kwh``, the
  cumulative register, which streamer turns into interval energy per slot.
- Numbers may be written with any number of digits. An energy that is no finite float (NaN,
  Infinity, ``1e400``, an integer of 400 digits) is refused as ``non_finite``; a ``ts`` out of
  range, however large, as ``invalid_timestamp``.
- ``meter_type``: ``consumption`` (default; negative energy refused) or ``net`` (bidirectional,
  e.g. rooftop PV, negative allowed).
- ``quality``: optional free flag (``actual``, ``estimated``...), at most 32 characters.
- ``time_zone``: optional IANA zone of the meter's calendar (``Australia/Sydney``), at most 64
  characters; without it the meter is in the fleet's zone (``STREAMER_TIME_ZONE``). Send it on
  every reading of a meter that is not in the fleet's zone: it is not remembered. A name that is
  no IANA zone is refused as ``unknown_time_zone``.

Unknown extra fields are ignored. Known fields of the wrong type are refused.
:func:`parse_reading` returns a :class:`Reading` or raises :class:`InvalidReading` whose reason is
the dead-letter reason code.
"""

from __future__ import annotations

import codecs
import json
import logging
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import orjson

from streamer.contract.errors import InvalidReading
from streamer.contract.reasons import DlqReason
from streamer.forecast.local_time import is_known_zone
from streamer.timeutil import format_ts

log = logging.getLogger(__name__)
MeterType = Literal["consumption", "net"]
METER_TYPES: Final = ("consumption", "net")
MAX_METER_ID_CHARS: Final = 128
MAX_QUALITY_CHARS: Final = 32
MAX_TIME_ZONE_CHARS: Final = 64
# Readings before 2000 or after 2100 are not meter data; they are broken clocks.
MIN_TS_MS: Final = 946_684_800_000
MAX_TS_MS: Final = 4_102_444_800_000


# not frozen: built on the hot path (per reading), where a frozen dataclass
# costs 3-4x as much to build; treat it as read-only
@dataclass(slots=True)
class Reading:
    """A validated reading. ``kwh`` xor ``register_kwh`` is set."""

    meter_id: str
    ts_ms: int
    kwh: float | None
    register_kwh: float | None
    meter_type: MeterType = "consumption"
    quality: str | None = None
    time_zone: str | None = None


@dataclass(frozen=True, slots=True)
class ReadingLimits:
    """What :func:`parse_reading` enforces beyond types (from :class:`Settings`)."""

    max_message_bytes: int
    max_interval_kwh: float
    future_tolerance_ms: int


ENCODING_RULE: Final = "readings must be UTF-8 JSON without a byte order mark"
# Longest first: the UTF-32-LE mark begins with the UTF-16-LE one.
_BYTE_ORDER_MARKS: Final = (
    (codecs.BOM_UTF32_LE, "UTF-32-LE"),
    (codecs.BOM_UTF32_BE, "UTF-32-BE"),
    (codecs.BOM_UTF8, "UTF-8"),
    (codecs.BOM_UTF16_LE, "UTF-16-LE"),
    (codecs.BOM_UTF16_BE, "UTF-16-BE"),
)


def _decode_utf8(raw: bytes) -> str:
    """``raw`` as text if it is UTF-8 without a byte order mark; else a refusal naming the problem.

    ``json.loads`` of bytes would guess UTF-16/32 and skip a BOM; the contract does not.
    """
    for mark, encoding in _BYTE_ORDER_MARKS:
        if raw.startswith(mark):
            raise InvalidReading(
                DlqReason.INVALID_JSON, f"starts with a {encoding} byte order mark; {ENCODING_RULE}"
            )
    # A JSON text starts with ASCII, so NUL among its first bytes is UTF-16/32 (RFC 4627, 3).
    if len(raw) >= 2 and 0 in raw[:2]:
        if raw[0] == 0:
            encoding = "UTF-16-BE" if raw[1] else "UTF-32-BE"
        else:
            encoding = "UTF-32-LE" if raw[2:4] == b"\0\0" else "UTF-16-LE"
        raise InvalidReading(
            DlqReason.INVALID_JSON,
            f"NUL bytes at the start: looks like {encoding}, not UTF-8; {ENCODING_RULE}",
        )
    try:
        return raw.decode("utf-8")  # strict: lone surrogates and overlong forms are refused too
    except UnicodeDecodeError as exc:
        raise InvalidReading(
            DlqReason.INVALID_JSON,
            f"not valid UTF-8 ({exc.reason} at byte offset {exc.start}); {ENCODING_RULE}",
        ) from None


def _int_of_any_size(digits: str) -> int | float:
    """``parse_int`` of the fallback parser: an integer literal of any length.

    Python refuses to convert more than 4,300 digits (``sys.get_int_max_str_digits``). Such an
    integer is far beyond any float, so it is read as an infinity of its sign: the field it is in
    then gets its own reason (``non_finite``, ``invalid_timestamp``), not ``invalid_json``.
    """
    try:
        return int(digits)
    except ValueError:
        return -math.inf if digits.startswith("-") else math.inf


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    # orjson refuses what the contract refuses (a byte order mark, bytes that are not UTF-8), but
    # also the NaN/Infinity tokens some producers emit and numbers beyond a double (a 400-digit
    # integer). The standard library reads those, so that such a reading is refused for the
    # field's reason (non-finite energy, timestamp out of range) rather than as broken JSON.
    text = _decode_utf8(raw)
    try:
        return json.loads(text, parse_int=_int_of_any_size)
    except ValueError as exc:
        raise InvalidReading(DlqReason.INVALID_JSON, f"not valid JSON ({exc})") from None
    except RecursionError:  # e.g. 10,000 nested '[': refused, not a crash
        raise InvalidReading(DlqReason.INVALID_JSON, "JSON nested too deeply") from None


#: Valid timestamp strings already parsed, and their epoch ms: a fleet's readings of one slot
#: carry the same ``ts``, so most readings skip ``fromisoformat`` (cleared when it fills).
_PARSED_TS: dict[str, int] = {}
_PARSED_TS_KEPT: Final = 4096


def parse_ts_ms(value: object) -> int:
    """An RFC 3339 string with an offset, or whole epoch ms, in the years 2000-2100
    (:class:`InvalidReading` with the reason and a sentence otherwise)."""
    if type(value) is str:
        known = _PARSED_TS.get(value)
        if known is not None:
            return known
        ts_ms = _parse_ts_ms(value)
        if len(_PARSED_TS) >= _PARSED_TS_KEPT:
            _PARSED_TS.clear()
        _PARSED_TS[value] = ts_ms  # (only a string that passed every check)
        return ts_ms
    return _parse_ts_ms(value)


def _parse_ts_ms(value: object) -> int:
    if isinstance(value, bool):
        raise InvalidReading(DlqReason.WRONG_TYPE, "ts must be an RFC 3339 string or epoch ms")
    if isinstance(value, int):
        ts_ms = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            # NaN/Infinity, or an integer literal too long to read (see _int_of_any_size)
            raise InvalidReading(
                DlqReason.INVALID_TIMESTAMP,
                f"ts {value!r} is not a finite number of epoch ms (NaN, Infinity, beyond a float)",
            )
        if value != int(value):
            raise InvalidReading(
                DlqReason.INVALID_TIMESTAMP, f"ts {value!r} is not a whole number of epoch ms"
            )
        ts_ms = int(value)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidReading(
                DlqReason.INVALID_TIMESTAMP, f"ts {value[:64]!r} is not RFC 3339"
            ) from None
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise InvalidReading(
                DlqReason.INVALID_TIMESTAMP,
                f"ts {value[:64]!r} has no UTC offset; add 'Z' or '+00:00'",
            )
        ts_ms = int(parsed.timestamp() * 1000)
    else:
        raise InvalidReading(DlqReason.WRONG_TYPE, "ts must be an RFC 3339 string or epoch ms")
    if not MIN_TS_MS <= ts_ms < MAX_TS_MS:
        # an integer of any size lands here; a long one is named by its size, not its digits
        shown = f"{ts_ms} ms" if ts_ms.bit_length() <= 64 else f"of {ts_ms.bit_length()} bits"
        raise InvalidReading(
            DlqReason.INVALID_TIMESTAMP, f"ts {shown} is outside the years 2000-2100"
        )
    return ts_ms


#: (a tuple: ``int | float`` would build a union object at every call)
_NUMBER: Final = (int, float)


def _energy(obj: dict[str, Any], field: str) -> float | None:
    if field not in obj or obj[field] is None:
        return None
    value = obj[field]
    if isinstance(value, bool) or not isinstance(value, _NUMBER):
        raise InvalidReading(DlqReason.WRONG_TYPE, f"{field} must be a number")
    number = value
    if isinstance(value, int):
        try:
            number = float(value)
        except OverflowError:
            # An integer beyond the largest float (1.8e308) is refused like its float spelling
            # 1e400 (or Infinity): ``non_finite``, not ``above_physical_bound``. It has no float
            # value to compare with a bound, and register_kwh has no upper bound at all.
            raise InvalidReading(
                DlqReason.NON_FINITE,
                f"{field} is an integer of {value.bit_length()} bits, beyond any finite float",
            ) from None
    if not math.isfinite(number):
        raise InvalidReading(DlqReason.NON_FINITE, f"{field} is {value!r}")
    return number


def _optional_str(obj: dict[str, Any], field: str, max_chars: int) -> str | None:
    value = obj.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_chars:
        raise InvalidReading(
            DlqReason.WRONG_TYPE, f"{field} must be a string of at most {max_chars} characters"
        )
    return value


def parse_reading(
    raw: bytes | None, key: bytes | None, *, limits: ReadingLimits, now_ms: int
) -> Reading:
    """Validate one message of the readings topic. Raises :class:`InvalidReading` only.

    Whatever the bytes, the result is a reading or a classified refusal: an exception this
    module did not foresee becomes ``processing_error`` (and is logged) rather than stopping the
    stream. The property tests in ``tests/unit/contract`` check that it never happens.
    """
    try:
        return _parse_reading(raw, key, limits, now_ms)
    except InvalidReading:
        raise
    except Exception as exc:
        log.error("unexpected %s while validating a reading: %.200s", type(exc).__name__, exc)
        raise InvalidReading(
            DlqReason.PROCESSING_ERROR,
            f"unexpected {type(exc).__name__} while validating: {str(exc)[:200]}",
        ) from None


def _parse_reading(
    raw: bytes | None, key: bytes | None, limits: ReadingLimits, now_ms: int
) -> Reading:
    if raw is None:
        raise InvalidReading(DlqReason.INVALID_JSON, "empty message (tombstone)")
    if len(raw) > limits.max_message_bytes:
        raise InvalidReading(
            DlqReason.OVERSIZED,
            f"{len(raw)} bytes is over the {limits.max_message_bytes}-byte limit "
            "(STREAMER_MAX_MESSAGE_BYTES)",
        )
    obj = _loads(raw)
    if not isinstance(obj, dict):
        raise InvalidReading(
            DlqReason.NOT_AN_OBJECT, f"expected a JSON object, got {type(obj).__name__}"
        )

    meter_id = obj.get("meter_id")
    if meter_id is None:
        raise InvalidReading(DlqReason.MISSING_FIELD, "meter_id is missing")
    if not isinstance(meter_id, str):
        raise InvalidReading(DlqReason.WRONG_TYPE, "meter_id must be a string")
    if not meter_id or len(meter_id) > MAX_METER_ID_CHARS or not meter_id.isprintable():
        raise InvalidReading(
            DlqReason.INVALID_METER_ID,
            f"meter_id must be 1-{MAX_METER_ID_CHARS} printable characters",
        )
    if not key:
        raise InvalidReading(
            DlqReason.MISSING_KEY,
            f"message key is {'null' if key is None else 'empty'}; produce readings keyed by "
            f"their meter_id ({meter_id[:64]!r}) so that a meter stays on one partition",
        )
    if key != meter_id.encode():
        raise InvalidReading(
            DlqReason.KEY_MISMATCH,
            f"message key {key[:64]!r} differs from meter_id {meter_id[:64]!r}; "
            "produce readings keyed by meter_id",
        )
    if "ts" not in obj or obj["ts"] is None:
        raise InvalidReading(DlqReason.MISSING_FIELD, "ts is missing")

    kwh = _energy(obj, "kwh")
    register_kwh = _energy(obj, "register_kwh")
    if kwh is None and register_kwh is None:
        raise InvalidReading(DlqReason.MISSING_FIELD, "one of kwh or register_kwh is required")
    if kwh is not None and register_kwh is not None:
        raise InvalidReading(DlqReason.WRONG_TYPE, "send kwh or register_kwh, not both")

    meter_type = obj.get("meter_type", "consumption")
    if meter_type not in METER_TYPES:
        raise InvalidReading(
            DlqReason.WRONG_TYPE, f"meter_type must be one of {', '.join(METER_TYPES)}"
        )
    quality = _optional_str(obj, "quality", MAX_QUALITY_CHARS)
    time_zone = _optional_str(obj, "time_zone", MAX_TIME_ZONE_CHARS)
    if time_zone is not None and not is_known_zone(time_zone):
        raise InvalidReading(
            DlqReason.UNKNOWN_TIME_ZONE,
            f"time_zone {time_zone!r} is not an IANA zone name (e.g. 'Europe/London'); "
            "leave it out for the fleet's zone",
        )
    ts_ms = parse_ts_ms(obj["ts"])

    if ts_ms > now_ms + limits.future_tolerance_ms:
        raise InvalidReading(
            DlqReason.FUTURE_TIMESTAMP,
            f"ts is {(ts_ms - now_ms) / 1000:.0f} s ahead of the worker clock "
            f"(tolerance {limits.future_tolerance_ms / 1000:.0f} s)",
        )
    if kwh is not None:
        if kwh < 0 and meter_type != "net":
            raise InvalidReading(
                DlqReason.NEGATIVE_ENERGY,
                f"kwh {kwh} is negative on a consumption meter (send meter_type 'net' for PV)",
            )
        if abs(kwh) > limits.max_interval_kwh:
            raise InvalidReading(
                DlqReason.ABOVE_PHYSICAL_BOUND,
                f"|kwh| {kwh} exceeds {limits.max_interval_kwh} kWh per interval "
                "(STREAMER_MAX_POWER_KW)",
            )
    elif register_kwh is not None and register_kwh < 0:
        raise InvalidReading(DlqReason.NEGATIVE_ENERGY, f"register_kwh {register_kwh} is negative")

    return Reading(
        meter_id=meter_id,
        ts_ms=ts_ms,
        kwh=kwh,
        register_kwh=register_kwh,
        meter_type=meter_type,
        quality=quality,
        time_zone=time_zone,
    )


def encode_reading(reading: Reading) -> bytes:
    """The canonical JSON of a reading (ts as RFC 3339 UTC)."""
    body: dict[str, Any] = {"meter_id": reading.meter_id, "ts": format_ts(reading.ts_ms)}
    if reading.kwh is not None:
        body["kwh"] = reading.kwh
    if reading.register_kwh is not None:
        body["register_kwh"] = reading.register_kwh
    body["meter_type"] = reading.meter_type
    if reading.quality is not None:
        body["quality"] = reading.quality
    if reading.time_zone is not None:
        body["time_zone"] = reading.time_zone
    return orjson.dumps(body)
