"""What a client did wrong, as an HTTP status, a bounded reason code and a sentence."""

from __future__ import annotations

from typing import Final

from streamer.errors import StreamerError

#: Every ``reason`` a rejection may carry (the rejections counter's label values).
REJECTION_REASONS: Final = (
    "unauthorized",
    "body_too_large",
    "invalid_json",
    "invalid_request",
    "too_many_series",
    "too_short",
    "all_missing",
    "wrong_resolution",
    "unknown_model",
    "no_valid_forecast",
    "no_forecast",
    "forecast_expired",
    "overloaded",
    "kafka_unavailable",
)


class RequestRejected(StreamerError):
    """A request refused with ``status`` (4xx) and a ``reason`` from :data:`REJECTION_REASONS`.

    ``detail`` is shown to the client: it names the limit or the field, never a secret.
    """

    def __init__(self, status: int, reason: str, detail: str) -> None:
        if reason not in REJECTION_REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


def invalid(detail: str) -> RequestRejected:
    """422 ``invalid_request``: the body is JSON but not a forecast request."""
    return RequestRejected(422, "invalid_request", detail)
