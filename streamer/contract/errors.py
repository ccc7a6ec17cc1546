"""Errors of the event contract."""

from __future__ import annotations

from streamer.contract.reasons import DlqReason
from streamer.errors import StreamerError


class InvalidReading(StreamerError):
    """A message on the readings topic that cannot become a reading.

    ``reason`` is the dead-letter reason code; the message says what is wrong with it.
    """

    def __init__(self, reason: DlqReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
