"""Integers of any size in ``kwh``, ``register_kwh`` and ``ts``: a reading, or a refusal with the
reason the field deserves; never an exception, never ``processing_error``, nothing logged.

orjson reads integers up to 64 bits exactly, larger ones as floats, and refuses those beyond a
double; the standard-library fallback then reads them, including past Python's 4,300-digit
conversion limit. Every path is drawn here: small integers, integers around the largest float
(2**1024) and literals of up to 12,000 digits.

Hypothesis runs derandomized (a fixed seed per test), so CI sees the same examples every run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import example, given, settings
from hypothesis import strategies as st

from streamer.contract.errors import InvalidReading
from streamer.contract.reading import MAX_TS_MS, MIN_TS_MS, Reading, ReadingLimits, parse_reading
from streamer.contract.reasons import DlqReason

NOW_MS = 1_795_430_000_000
LIMITS = ReadingLimits(
    max_message_bytes=65_536, max_interval_kwh=500.0, future_tolerance_ms=300_000
)
PROPERTY = settings(max_examples=400, deadline=None, derandomize=True)
MAX_DIGITS = 12_000
VALID_TS = NOW_MS - 1_800_000
LARGEST_FLOAT_INT = (2**53 - 1) * 2**971  # int(sys.float_info.max)
# What a number in each field may be refused for (the documented reasons for numbers).
NUMBER_REASONS = {
    "kwh": {DlqReason.NON_FINITE, DlqReason.NEGATIVE_ENERGY, DlqReason.ABOVE_PHYSICAL_BOUND},
    "register_kwh": {DlqReason.NON_FINITE, DlqReason.NEGATIVE_ENERGY},
    "ts": {DlqReason.INVALID_TIMESTAMP, DlqReason.FUTURE_TIMESTAMP},
}


def long_literal(negative: bool, first: str, length: int, seed: int) -> str:
    """A JSON integer literal of ``length`` digits (no leading zero), without building the int."""
    rest = (str(seed) * (length // max(len(str(seed)), 1) + 1))[: length - 1]
    return ("-" if negative else "") + first + rest


INTEGER_LITERALS = st.one_of(
    st.integers().map(str),
    st.integers(min_value=-(2**1100), max_value=2**1100).map(str),  # around the largest float
    st.integers(min_value=MIN_TS_MS - 10, max_value=MAX_TS_MS + 10).map(str),
    st.builds(
        long_literal,
        st.booleans(),
        st.sampled_from("123456789"),
        st.integers(min_value=1, max_value=MAX_DIGITS),
        st.integers(min_value=0, max_value=2**64),
    ),
)


def as_float(literal: str) -> float | None:
    """The float value of an integer literal, or None where it has none (beyond the largest)."""
    if len(literal.lstrip("-")) > 309:
        return None  # at least 1e309: beyond 1.8e308 (and maybe beyond what int() converts)
    try:
        return float(int(literal))
    except OverflowError:
        return None


def expected(field: str, literal: str, meter_type: str) -> DlqReason | None:
    """The reason a reading with this integer literal in ``field`` gets; None: it is a reading."""
    number = as_float(literal)
    if field == "ts":
        # an int ts compared exactly; orjson's float for one beyond 64 bits is out of range too
        in_range = number is not None and MIN_TS_MS <= int(literal) < MAX_TS_MS
        if not in_range:
            return DlqReason.INVALID_TIMESTAMP
        if int(literal) > NOW_MS + LIMITS.future_tolerance_ms:
            return DlqReason.FUTURE_TIMESTAMP
        return None
    if number is None:
        return DlqReason.NON_FINITE
    if number < 0 and (field == "register_kwh" or meter_type != "net"):
        return DlqReason.NEGATIVE_ENERGY
    if field == "kwh" and abs(number) > LIMITS.max_interval_kwh:
        return DlqReason.ABOVE_PHYSICAL_BOUND
    return None


def raw_reading(fields: dict[str, str]) -> bytes:
    """A reading written with its numbers as given, as a producer would send it."""
    return ("{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}").encode()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def nothing_logged() -> Iterator[None]:
    """Fails if the parser logs a warning or an error (it does for a ``processing_error``)."""
    handler = _Records()
    logger = logging.getLogger("streamer.contract.reading")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    assert not handler.records, [r.getMessage() for r in handler.records]


def outcome(raw: bytes) -> Reading | DlqReason:
    """The reading, or the reason it was refused. Anything else raised fails the test."""
    with nothing_logged():
        try:
            return parse_reading(raw, b"m-1", limits=LIMITS, now_ms=NOW_MS)
        except InvalidReading as exc:
            assert exc.detail, "every refusal says why"
            assert len(exc.detail) <= 300, "a refusal names a long number by its size"
            return exc.reason


@PROPERTY
@given(
    st.sampled_from(["kwh", "register_kwh", "ts"]),
    INTEGER_LITERALS,
    st.sampled_from(["consumption", "net"]),
)
@example("kwh", "9" * 400, "consumption")
@example("kwh", "-" + "9" * 400, "net")
@example("register_kwh", "9" * 5_000, "consumption")
@example("ts", "9" * 400, "consumption")
@example("ts", "-" + "9" * 5_000, "consumption")
@example("ts", "9" * MAX_DIGITS, "consumption")
@example("kwh", str(LARGEST_FLOAT_INT), "net")  # the largest float: a number, above the bound
@example("register_kwh", str(LARGEST_FLOAT_INT), "consumption")
@example("register_kwh", str(LARGEST_FLOAT_INT + 2**969), "consumption")  # rounds down to it
@example("register_kwh", str(LARGEST_FLOAT_INT + 2**970), "consumption")  # rounds up: beyond
@example("register_kwh", str(2**1024), "consumption")
@example("register_kwh", str(2**64), "consumption")  # orjson's first integer read as a float
@example("ts", str(2**64), "consumption")
@example("ts", str(-(2**63) - 1), "consumption")
@example("ts", str(MIN_TS_MS), "consumption")
@example("ts", str(MAX_TS_MS), "consumption")
def test_an_integer_of_any_size_gets_the_reason_its_field_deserves(
    field: str, literal: str, meter_type: str
) -> None:
    fields = {"meter_id": '"m-1"', "ts": str(VALID_TS), "kwh": "0.5"}
    if field == "register_kwh":
        del fields["kwh"]
    fields[field] = literal
    fields["meter_type"] = f'"{meter_type}"'
    result = outcome(raw_reading(fields))
    reason = expected(field, literal, meter_type)
    if reason is None:
        assert isinstance(result, Reading), result
        number = as_float(literal)
        if field == "ts":
            assert result.ts_ms == int(literal)
        else:
            assert getattr(result, field) == number
    else:
        assert result is reason
        assert reason in NUMBER_REASONS[field]


@PROPERTY
@given(INTEGER_LITERALS, INTEGER_LITERALS, INTEGER_LITERALS, st.booleans())
def test_integers_of_any_size_everywhere_are_a_reading_or_a_documented_refusal(
    kwh: str, register_kwh: str, ts: str, both: bool
) -> None:
    fields = {"meter_id": '"m-1"', "ts": ts, "kwh": kwh}
    if both:
        fields["register_kwh"] = register_kwh
    result = outcome(raw_reading(fields))
    documented = {DlqReason.WRONG_TYPE}  # kwh and register_kwh both given
    documented |= {reason for reasons in NUMBER_REASONS.values() for reason in reasons}
    assert isinstance(result, Reading) or result in documented, result
