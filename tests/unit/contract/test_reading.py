"""Parsing and validating readings: one case per dead-letter reason, and the happy paths."""

from __future__ import annotations

import codecs
import logging

import orjson
import pytest

from streamer.contract.errors import InvalidReading
from streamer.contract.reading import Reading, ReadingLimits, encode_reading, parse_reading
from streamer.contract.reasons import DlqReason

NOW_MS = 1_795_430_000_000  # 2026-11-23T10:33:20Z
LIMITS = ReadingLimits(max_message_bytes=2048, max_interval_kwh=500.0, future_tolerance_ms=300_000)


def parse(value: bytes | None, key: bytes | None = b"m-1") -> Reading:
    return parse_reading(value, key, limits=LIMITS, now_ms=NOW_MS)


def body(**fields: object) -> bytes:
    base: dict[str, object] = {"meter_id": "m-1", "ts": NOW_MS - 1_800_000, "kwh": 0.5}
    base.update(fields)
    return orjson.dumps({k: v for k, v in base.items() if v is not ...})


def test_rfc3339_and_epoch_ms_give_the_same_instant() -> None:
    a = parse(body(ts="2026-11-22T09:00:00+01:00"))
    b = parse(body(ts="2026-11-22T08:00:00Z"))
    assert a.ts_ms == b.ts_ms == 1_795_334_400_000
    assert parse(body(ts=1_795_334_400_000)).ts_ms == a.ts_ms


def test_defaults_and_optional_fields() -> None:
    reading = parse(body(quality="estimated", extra_field={"ignored": True}))
    assert reading == Reading("m-1", NOW_MS - 1_800_000, 0.5, None, "consumption", "estimated")


def test_net_meter_may_be_negative() -> None:
    assert parse(body(kwh=-0.7, meter_type="net")).kwh == -0.7


def test_register_reading() -> None:
    reading = parse(body(kwh=..., register_kwh=12345.5))
    assert reading.register_kwh == 12345.5 and reading.kwh is None


def test_encode_round_trips() -> None:
    reading = parse(body(quality="actual"))
    assert parse(encode_reading(reading)) == reading


def raw_body(kwh: str = "0.5", ts: str = str(NOW_MS - 1_800_000), energy: str = "kwh") -> bytes:
    """A reading with its numbers written as given (e.g. integers too large for a float)."""
    return f'{{"meter_id": "m-1", "ts": {ts}, "{energy}": {kwh}}}'.encode()


DIGITS_400 = "9" * 400  # an integer literal beyond the largest float (1.8e308)


BAD_CASES = [
    (b"x" * 4096, DlqReason.OVERSIZED),
    (None, DlqReason.INVALID_JSON),
    (b'{"meter_id": "m-1", "ts": 17', DlqReason.INVALID_JSON),
    (b"\xff\xfe\x00garbage", DlqReason.INVALID_JSON),
    (b"\xef\xbb\xbf" + body(), DlqReason.INVALID_JSON),  # UTF-8 byte order mark
    (body().decode().encode("utf-16"), DlqReason.INVALID_JSON),
    (body().decode().encode("utf-16-le"), DlqReason.INVALID_JSON),
    (body().decode().encode("utf-32"), DlqReason.INVALID_JSON),
    (body(quality="z\u00e4hler").decode().encode("latin-1"), DlqReason.INVALID_JSON),
    (
        b'{"meter_id": "m-1", "ts": 1795428200000, "kwh": 0.5, "quality": "\xed\xa0\x80"}',
        DlqReason.INVALID_JSON,
    ),  # a lone surrogate written raw is not UTF-8
    (b"[1, 2, 3]", DlqReason.NOT_AN_OBJECT),
    (body(meter_id=...), DlqReason.MISSING_FIELD),
    (body(ts=...), DlqReason.MISSING_FIELD),
    (body(kwh=...), DlqReason.MISSING_FIELD),
    (body(meter_id=42), DlqReason.WRONG_TYPE),
    (body(time_zone="Mars/Olympus_Mons"), DlqReason.UNKNOWN_TIME_ZONE),
    (body(time_zone="europe/london "), DlqReason.UNKNOWN_TIME_ZONE),
    (body(time_zone=3), DlqReason.WRONG_TYPE),
    (body(kwh="abc"), DlqReason.WRONG_TYPE),
    (body(kwh=True), DlqReason.WRONG_TYPE),
    (body(ts=[1]), DlqReason.WRONG_TYPE),
    (body(register_kwh=5.0), DlqReason.WRONG_TYPE),
    (body(meter_type="solar"), DlqReason.WRONG_TYPE),
    (body(quality=7), DlqReason.WRONG_TYPE),
    (body(meter_id=""), DlqReason.INVALID_METER_ID),
    (body(meter_id="m\n1"), DlqReason.INVALID_METER_ID),
    (body(meter_id="m-2"), DlqReason.KEY_MISMATCH),
    (body(ts="yesterday"), DlqReason.INVALID_TIMESTAMP),
    (body(ts="2026-11-22T08:00:00"), DlqReason.INVALID_TIMESTAMP),
    (body(ts=12), DlqReason.INVALID_TIMESTAMP),
    (body(ts=1.5e12 + 0.5), DlqReason.INVALID_TIMESTAMP),
    (raw_body(ts=DIGITS_400), DlqReason.INVALID_TIMESTAMP),
    (raw_body(ts="-" + DIGITS_400), DlqReason.INVALID_TIMESTAMP),
    (raw_body(ts=str(2**70)), DlqReason.INVALID_TIMESTAMP),
    (body(ts=NOW_MS + 3_600_000), DlqReason.FUTURE_TIMESTAMP),
    (b'{"meter_id": "m-1", "ts": 1795428200000, "kwh": NaN}', DlqReason.NON_FINITE),
    (b'{"meter_id": "m-1", "ts": 1795428200000, "kwh": Infinity}', DlqReason.NON_FINITE),
    (raw_body(kwh=DIGITS_400), DlqReason.NON_FINITE),
    (raw_body(kwh="-" + DIGITS_400), DlqReason.NON_FINITE),
    (raw_body(kwh=DIGITS_400, energy="register_kwh"), DlqReason.NON_FINITE),
    (body(kwh=-0.1), DlqReason.NEGATIVE_ENERGY),
    (body(kwh=..., register_kwh=-3.0), DlqReason.NEGATIVE_ENERGY),
    (body(kwh=1e6), DlqReason.ABOVE_PHYSICAL_BOUND),
    (body(kwh=-1e6, meter_type="net"), DlqReason.ABOVE_PHYSICAL_BOUND),
    (raw_body(kwh=str(2**70)), DlqReason.ABOVE_PHYSICAL_BOUND),
]
KEY_CASES = [
    (body(), None, DlqReason.MISSING_KEY),
    (body(), b"", DlqReason.MISSING_KEY),
    (body(meter_id="m-2"), b"m-1", DlqReason.KEY_MISMATCH),
]


@pytest.mark.parametrize(("raw", "reason"), BAD_CASES)
def test_each_bad_reading_has_its_reason(raw: bytes | None, reason: DlqReason) -> None:
    with pytest.raises(InvalidReading) as info:
        parse(raw)
    assert info.value.reason is reason
    assert info.value.detail  # every refusal says why


@pytest.mark.parametrize(("raw", "key", "reason"), KEY_CASES)
def test_a_reading_must_be_keyed_by_its_meter_id(
    raw: bytes, key: bytes | None, reason: DlqReason
) -> None:
    with pytest.raises(InvalidReading) as info:
        parse(raw, key=key)
    assert info.value.reason is reason
    assert "keyed by" in info.value.detail and "'m-" in info.value.detail


def test_a_null_or_empty_key_says_which() -> None:
    for key, word in ((None, "null"), (b"", "empty")):
        with pytest.raises(InvalidReading) as info:
            parse(body(), key=key)
        assert f"message key is {word}" in info.value.detail


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"\xef\xbb\xbf" + body(), "UTF-8 byte order mark"),
        (body().decode().encode("utf-16"), "UTF-16-LE byte order mark"),
        (codecs.BOM_UTF16_BE + body().decode().encode("utf-16-be"), "UTF-16-BE byte order mark"),
        (body().decode().encode("utf-32"), "UTF-32-LE byte order mark"),
        (body().decode().encode("utf-16-le"), "looks like UTF-16-LE"),
        (body().decode().encode("utf-16-be"), "looks like UTF-16-BE"),
        (body().decode().encode("utf-32-le"), "looks like UTF-32-LE"),
        (body().decode().encode("utf-32-be"), "looks like UTF-32-BE"),
        (b'{"meter_id": "m-\xff"}', "not valid UTF-8 (invalid start byte at byte offset 16)"),
    ],
)
def test_an_encoding_other_than_utf8_is_named(raw: bytes, problem: str) -> None:
    with pytest.raises(InvalidReading) as info:
        parse(raw)
    assert info.value.reason is DlqReason.INVALID_JSON
    assert problem in info.value.detail
    assert "readings must be UTF-8 JSON without a byte order mark" in info.value.detail


def test_broken_json_does_not_blame_the_encoding() -> None:
    with pytest.raises(InvalidReading) as info:
        parse(b'{"meter_id": "m-1", "ts": 17')
    assert info.value.detail.startswith("not valid JSON (")
    assert "UTF-8" not in info.value.detail


def test_integers_too_large_for_a_float_are_refused_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    cases = [
        (raw_body(kwh=DIGITS_400), DlqReason.NON_FINITE, "kwh is an integer of 1329 bits"),
        (
            raw_body(kwh=DIGITS_400, energy="register_kwh"),
            DlqReason.NON_FINITE,
            "register_kwh is an integer of 1329 bits",
        ),
        (raw_body(ts=DIGITS_400), DlqReason.INVALID_TIMESTAMP, "ts of 1329 bits is outside"),
    ]
    for raw, reason, detail in cases:
        with pytest.raises(InvalidReading) as info:
            parse(raw)
        assert info.value.reason is reason
        assert info.value.detail.startswith(detail), info.value.detail
        assert len(info.value.detail) < 200
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_every_input_reason_is_exercised() -> None:
    exercised = {reason for _, reason in BAD_CASES} | {reason for *_, reason in KEY_CASES}
    state_reasons = {
        DlqReason.TOO_LATE,
        DlqReason.REGISTER_OUT_OF_ORDER,
        DlqReason.PROCESSING_ERROR,
    }
    assert exercised | state_reasons == set(DlqReason)


def test_a_timestamp_string_parsed_again_gives_the_same_ms_and_a_bad_one_is_refused_each_time() -> (
    None
):
    from streamer.contract.reading import parse_ts_ms

    first = parse_ts_ms("2026-11-23T10:30:00+01:00")
    assert first == parse_ts_ms("2026-11-23T10:30:00+01:00") == 1_795_426_200_000
    assert parse_ts_ms("2026-11-23T09:30:00Z") == first  # another spelling, the same instant
    for _ in range(2):  # a refused string is not remembered as valid
        with pytest.raises(InvalidReading) as info:
            parse_ts_ms("2026-11-23T10:30:00")
        assert info.value.reason is DlqReason.INVALID_TIMESTAMP
        with pytest.raises(InvalidReading):
            parse_ts_ms("1999-12-31T23:59:59Z")
