"""Hypothesis strategies of hostile readings-topic messages, shared by the parse property tests
and the hostile-input test on the real broker (tests/integration/test_hostile_input.py).

Each strategy takes ``now_ms`` so that the "valid" parts are valid at the time of the run.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from streamer.contract.reading import MAX_METER_ID_CHARS

Message = tuple[bytes | None, bytes | None]  # (key, value) as produced


def dumps(value: Any, ascii_only: bool = True) -> bytes:
    """JSON as a producer might write it: big integers kept; lone surrogates escaped (ASCII) or
    written raw, which is not valid UTF-8."""
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON document: nulls, booleans, integers beyond 64 bits, floats, text, nesting."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=40),
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children)
        ),
        max_leaves=max_leaves,
    )


def hostile_timestamps(now_ms: int) -> st.SearchStrategy[Any]:
    """Epoch ms of any size (far past and future, beyond a float), floats, dates with and without
    offsets, junk."""
    return st.one_of(
        st.integers(min_value=-(2**63), max_value=2**63),
        st.integers(min_value=-(2**1100), max_value=2**1100),
        st.integers(min_value=now_ms - 10 * 86_400_000, max_value=now_ms + 86_400_000),
        st.floats(allow_nan=False, allow_infinity=False),
        st.datetimes(timezones=st.timezones() | st.none()).map(lambda d: d.isoformat()),
        st.text(max_size=40),
        json_values(4),
    )


HOSTILE_ENERGIES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-600, max_value=600),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.integers(min_value=-(2**1100), max_value=2**1100),  # beyond a float (2**1024)
    json_values(3),
)
HOSTILE_METER_IDS = st.one_of(
    st.text(min_size=1, max_size=20),
    st.text(min_size=120, max_size=140),
    st.just("m-1"),
    json_values(3),
)
VALID_METER_IDS = st.one_of(
    st.just("m-1"),
    st.text(
        st.characters(categories=["L", "N", "Pd", "So"]), min_size=1, max_size=MAX_METER_ID_CHARS
    ),
)


def valid_timestamps(now_ms: int) -> st.SearchStrategy[Any]:
    """Within the ten days before ``now_ms``: epoch ms, or RFC 3339 with an offset."""
    now_s = now_ms // 1000
    return st.one_of(
        st.integers(min_value=now_ms - 10 * 86_400_000, max_value=now_ms),
        st.integers(min_value=now_s - 10 * 86_400, max_value=now_s).map(
            lambda s: datetime.fromtimestamp(
                s, tz=timezone(timedelta(hours=s % 15 - 7))
            ).isoformat()
        ),
    )


def reading_like(now_ms: int, max_kwh: float = 500.0) -> st.SearchStrategy[Message]:
    """A valid reading with each field, now and then, replaced by a hostile value or dropped,
    keyed by its meter id, by nothing, by an empty key, by another text or by binary."""
    # strategies are built once here, not at every draw (building recursive ones is slow)
    valid_ts = valid_timestamps(now_ms)
    kwh = st.floats(min_value=0, max_value=max_kwh)
    hostile = {
        "meter_id": HOSTILE_METER_IDS,
        "ts": hostile_timestamps(now_ms),
        "kwh": HOSTILE_ENERGIES,
        "register_kwh": HOSTILE_ENERGIES,
        "meter_type": st.sampled_from(["consumption", "net", "solar", ""]) | json_values(2),
        "quality": st.text(max_size=40) | json_values(2),
    }
    extra = st.dictionaries(st.text(max_size=6), json_values(3), max_size=2)
    key_choices = st.sampled_from(["meter_id", "meter_id", "none", "empty", "other", "binary"])

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        fields: dict[str, Any] = {
            "meter_id": draw(VALID_METER_IDS),
            "ts": draw(valid_ts),
            "kwh": draw(kwh),
        }
        if draw(st.booleans()):
            fields["meter_type"] = draw(st.sampled_from(["consumption", "net"]))
        if draw(st.booleans()):
            fields["quality"] = draw(st.text(max_size=32))
        for name, values in hostile.items():
            change = draw(st.integers(0, 7))  # 0: drop, 1: hostile value, else keep
            if change == 0:
                fields.pop(name, None)
            elif change == 1:
                fields[name] = draw(values)
        fields.update(draw(extra))
        meter_id = fields.get("meter_id")
        key_choice = draw(key_choices)
        key: bytes | None
        if key_choice == "meter_id" and isinstance(meter_id, str):
            key = meter_id.encode("utf-8", "surrogatepass")
        elif key_choice == "empty":
            key = b""
        elif key_choice == "other":
            key = draw(st.text(max_size=20)).encode("utf-8", "surrogatepass")
        elif key_choice == "binary":
            key = draw(st.binary(max_size=40))
        else:
            key = None
        return key, dumps(fields, draw(st.booleans()))

    return build()


def hostile_messages(now_ms: int) -> st.SearchStrategy[Message]:
    """Any of: a reading-like object, any JSON document, any bytes (with any key)."""
    keys = st.one_of(st.none(), st.just(b""), st.binary(max_size=40))
    readings = reading_like(now_ms)
    return st.one_of(
        readings,
        readings,
        st.tuples(keys, st.tuples(json_values(30), st.booleans()).map(lambda v: dumps(*v))),
        st.tuples(keys, st.binary(max_size=300)),
    )
