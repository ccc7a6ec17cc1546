from __future__ import annotations

import numpy as np
import orjson
import pytest

from streamer.simulate.encode import ReadingEncoder, rfc3339
from streamer.simulate.errors import SimulationError
from streamer.simulate.fleet import FleetModel

SLOT_END_MS = 1_795_003_200_000


def test_rfc3339_has_an_offset_and_milliseconds_only_when_needed() -> None:
    assert rfc3339(SLOT_END_MS) == "2026-11-18T12:00:00+00:00"
    assert rfc3339(SLOT_END_MS + 5) == "2026-11-18T12:00:00.005+00:00"


def test_bytes_equal_orjson_of_the_reading_dict() -> None:
    model = FleetModel(400, seed=31)
    encoder = ReadingEncoder(model)
    kwh = model.load_kwh([SLOT_END_MS])[:, 0]
    estimated = np.zeros(400, dtype=bool)
    estimated[::3] = True
    values = encoder.encode_slot(SLOT_END_MS, kwh, estimated)
    registers = encoder.register_kwh
    qualities = set()
    assert encoder.keys == [m.encode() for m in model.meter_ids.tolist()]
    for i, value in enumerate(values):
        body: dict[str, object] = {
            "meter_id": model.meter_ids[i],
            "ts": SLOT_END_MS if model.uses_epoch_ms[i] else rfc3339(SLOT_END_MS),
        }
        if model.is_register[i]:
            body["register_kwh"] = float(registers[i])
        else:
            body["kwh"] = float(kwh[i])
        body["meter_type"] = str(model.meter_types[i])
        if model.profiles.sends_quality[i]:
            body["quality"] = "estimated" if estimated[i] else "actual"
            qualities.add(body["quality"])
        assert value == orjson.dumps(body)
    assert qualities == {"actual", "estimated"}


def test_slots_must_be_encoded_in_time_order() -> None:
    model = FleetModel(5, seed=32)
    encoder = ReadingEncoder(model)
    kwh = model.load_kwh([SLOT_END_MS])[:, 0]
    encoder.encode_slot(SLOT_END_MS, kwh)
    with pytest.raises(SimulationError, match="time order"):
        encoder.encode_slot(SLOT_END_MS, kwh)
    with pytest.raises(SimulationError, match="one value per meter"):
        encoder.encode_slot(SLOT_END_MS + 1_800_000, kwh[:3])
    following = SLOT_END_MS + 1_800_000
    pairs = encoder.encode_messages(following, model.load_kwh([following])[:, 0])
    assert [key for key, _ in pairs] == encoder.keys
    assert all(b'"ts":' in value and key in value for key, value in pairs)
