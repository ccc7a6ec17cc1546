"""``streamer replay``: a history file sent to the readings topic, paced at a speedup.

``schedule`` (pure: the rows in time order and when each timestamp is due) and ``runner``
(sending them to Kafka on that schedule, with progress). The file is read by
:func:`streamer.evaluate.history.load_history`, the reader of ``streamer train`` and
``streamer backtest``.
"""

from __future__ import annotations

from streamer.replay.runner import ReplayProgress, ReplaySummary, run_replay
from streamer.replay.schedule import (
    ReplayRows,
    ReplayStep,
    encode_rows,
    parse_time,
    prepare_rows,
    send_schedule,
)

__all__ = [
    "ReplayProgress",
    "ReplayRows",
    "ReplayStep",
    "ReplaySummary",
    "encode_rows",
    "parse_time",
    "prepare_rows",
    "run_replay",
    "send_schedule",
]
