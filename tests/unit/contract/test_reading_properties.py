"""Properties of parsing hostile input: a reading or a classified refusal, never anything else.

Hypothesis runs derandomized (a fixed seed per test), so CI sees the same examples every run.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from streamer.contract.dead_letter import (
    MAX_DETAIL_CHARS,
    MAX_KEPT_KEY_BYTES,
    OVERSIZED_PREFIX_BYTES,
    DeadLetter,
    SourcePosition,
)
from streamer.contract.errors import InvalidReading
from streamer.contract.reading import (
    MAX_METER_ID_CHARS,
    MAX_TS_MS,
    MIN_TS_MS,
    Reading,
    ReadingLimits,
    encode_reading,
    parse_reading,
)
from streamer.contract.reasons import DlqReason
from tests.unit.contract.hostile import Message, dumps, json_values, reading_like

NOW_MS = 1_795_430_000_000
LIMITS = ReadingLimits(
    max_message_bytes=16_384, max_interval_kwh=500.0, future_tolerance_ms=300_000
)
PROPERTY = settings(max_examples=400, deadline=None, derandomize=True)


def outcome(raw: bytes | None, key: bytes | None) -> Reading | DlqReason:
    """The reading, or the reason it was refused. Anything else raised fails the test."""
    try:
        return parse_reading(raw, key, limits=LIMITS, now_ms=NOW_MS)
    except InvalidReading as exc:
        assert exc.detail, "every refusal says why"
        assert exc.reason is not DlqReason.PROCESSING_ERROR, f"unforeseen input: {exc.detail}"
        return exc.reason


def check_reading(reading: Reading, key: bytes | None) -> None:
    """What an accepted reading guarantees to the rest of the pipeline."""
    assert 1 <= len(reading.meter_id) <= MAX_METER_ID_CHARS and reading.meter_id.isprintable()
    assert key == reading.meter_id.encode()  # never null or empty: one meter, one partition
    assert MIN_TS_MS <= reading.ts_ms < MAX_TS_MS
    assert reading.ts_ms <= NOW_MS + LIMITS.future_tolerance_ms
    assert (reading.kwh is None) != (reading.register_kwh is None)
    energy = reading.kwh if reading.kwh is not None else reading.register_kwh
    assert energy is not None and math.isfinite(energy)
    if reading.kwh is not None:
        assert abs(reading.kwh) <= LIMITS.max_interval_kwh
    # the canonical encoding reads back as the same reading
    assert parse_reading(encode_reading(reading), key, limits=LIMITS, now_ms=NOW_MS) == reading


@PROPERTY
@given(st.binary(max_size=300), st.one_of(st.none(), st.binary(max_size=40)))
@example(b"[" * 20_000, b"m-1")
@example(b'{"a":' * 5_000, None)
@example(b"\xff\xfe\x00", b"")
@example(b"", None)
def test_any_bytes_are_a_reading_or_a_classified_refusal(raw: bytes, key: bytes | None) -> None:
    result = outcome(raw, key)
    if isinstance(result, Reading):
        check_reading(result, key)


@PROPERTY
@given(json_values(30), st.booleans())
def test_any_json_document_is_a_reading_or_a_classified_refusal(
    value: Any, ascii_only: bool
) -> None:
    raw = dumps(value, ascii_only)
    result = outcome(raw, b"m-1")
    if not isinstance(value, dict):
        assert result in (DlqReason.NOT_AN_OBJECT, DlqReason.INVALID_JSON, DlqReason.OVERSIZED)


@PROPERTY
@given(reading_like(NOW_MS, LIMITS.max_interval_kwh))
def test_reading_like_objects_are_readings_or_classified_refusals(message: Message) -> None:
    key, raw = message
    result = outcome(raw, key)
    if isinstance(result, Reading):
        check_reading(result, key)


# and integers beyond any float, the last beyond Python's 4,300-digit conversion limit
NON_FINITE_TOKENS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"]
NON_FINITE_TOKENS += ["9" * 400, "-" + "9" * 400, "9" * 5_000]


@PROPERTY
@given(
    st.sampled_from(["kwh", "register_kwh", "ts"]),
    st.sampled_from(NON_FINITE_TOKENS),
)
def test_non_finite_numbers_are_refused(field: str, token: str) -> None:
    fields = {"meter_id": '"m-1"', "ts": "1795428200000", "kwh": "0.5"}
    if field == "register_kwh":
        del fields["kwh"]
    fields[field] = token
    raw = ("{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}").encode()
    expected = DlqReason.INVALID_TIMESTAMP if field == "ts" else DlqReason.NON_FINITE
    assert outcome(raw, b"m-1") is expected


@pytest.mark.parametrize("depth", [500, 1_100, 5_000, 16_000])
def test_deep_nesting_is_refused_not_a_crash(depth: int) -> None:
    assert outcome(b"[" * depth + b"]" * depth, None) in (
        DlqReason.NOT_AN_OBJECT,
        DlqReason.INVALID_JSON,
        DlqReason.OVERSIZED,
    )
    nested = b'{"meter_id": "m-1", "x": ' + b"[" * depth + b"]" * depth + b"}"
    assert outcome(nested, b"m-1") in (
        DlqReason.INVALID_JSON,
        DlqReason.MISSING_FIELD,
        DlqReason.OVERSIZED,
    )


def test_huge_message_is_oversized_without_being_decoded() -> None:
    raw = b'{"meter_id": "m-1", "junk": "' + b"x" * 900_000 + b'"}'
    assert outcome(raw, b"m-1") is DlqReason.OVERSIZED


# --- dead letters are bounded whatever they carry ----------------------------------------------
SOURCE = SourcePosition("meter-readings", 0, 7, NOW_MS)
# base64 (4/3) of the kept key and value, the bounded detail, and the fixed fields
FIXED_FIELDS_BYTES = 512


def letter_bound(max_value_bytes: int) -> int:
    b64 = 4 * ((max_value_bytes + 2) // 3) + 4 * ((MAX_KEPT_KEY_BYTES + 2) // 3)
    return b64 + 6 * MAX_DETAIL_CHARS + FIXED_FIELDS_BYTES


@PROPERTY
@given(
    st.sampled_from(list(DlqReason)),
    st.one_of(st.none(), st.binary(max_size=3_000)),
    st.one_of(st.none(), st.binary(max_size=3_000)),
    st.text(max_size=3_000),
    st.integers(min_value=0, max_value=1_000_000),
)
def test_a_dead_letter_is_bounded_and_keeps_a_prefix(
    reason: DlqReason, key: bytes | None, value: bytes | None, detail: str, pad: int
) -> None:
    if reason is DlqReason.OVERSIZED and value is not None:
        value = value + b"\x00" * pad  # up to 1 MB, Kafka's default message limit
    letter = DeadLetter(reason, detail, SOURCE, key, value, NOW_MS)
    body = orjson.loads(letter.to_bytes())
    kept_key = None if body["key_b64"] is None else base64.b64decode(body["key_b64"])
    kept_value = None if body["value_b64"] is None else base64.b64decode(body["value_b64"])
    assert body["key_bytes"] == (None if key is None else len(key))
    assert body["value_bytes"] == (None if value is None else len(value))
    if key is not None:
        assert kept_key == key[:MAX_KEPT_KEY_BYTES]
    if value is not None:
        limit = OVERSIZED_PREFIX_BYTES if reason is DlqReason.OVERSIZED else len(value)
        assert kept_value == value[:limit]
    assert body["truncated"] == (kept_key != key or kept_value != value)
    assert len(body["detail"]) <= MAX_DETAIL_CHARS
    assert letter.key == kept_key  # the dead letter's Kafka key is bounded too
    # a refused value other than an oversized one is at most STREAMER_MAX_MESSAGE_BYTES
    assert len(letter.to_bytes()) <= letter_bound(max(3_000, OVERSIZED_PREFIX_BYTES))


def test_a_900_kb_message_makes_a_small_dead_letter() -> None:
    raw = b"\xff" * 900_000
    letter = DeadLetter(DlqReason.OVERSIZED, "too big", SOURCE, b"k" * 900_000, raw, NOW_MS)
    size = len(letter.to_bytes())
    assert size < 8_000, size
    assert letter.truncated and letter.value_bytes == 900_000 and letter.key_bytes == 900_000
