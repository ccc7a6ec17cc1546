"""Reason codes of the dead-letter topic: one per way a reading can be refused."""

from __future__ import annotations

from enum import StrEnum


class DlqReason(StrEnum):
    """Why a message went to ``meter-readings-dlq``. The value is what the record carries."""

    OVERSIZED = "oversized"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    INVALID_METER_ID = "invalid_meter_id"
    MISSING_KEY = "missing_key"
    KEY_MISMATCH = "key_mismatch"
    INVALID_TIMESTAMP = "invalid_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    NON_FINITE = "non_finite"
    NEGATIVE_ENERGY = "negative_energy"
    ABOVE_PHYSICAL_BOUND = "above_physical_bound"
    TOO_LATE = "too_late"
    REGISTER_OUT_OF_ORDER = "register_out_of_order"
    UNKNOWN_TIME_ZONE = "unknown_time_zone"
    PROCESSING_ERROR = "processing_error"
