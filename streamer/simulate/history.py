"""Clean history for training: a long frame ``meter_id, ts, kwh`` and its files.

``ts`` is the end of the interval (timezone-aware UTC, millisecond resolution); ``kwh`` the
energy in that interval (negative allowed for net meters). Files are chosen by suffix:
``.csv``, ``.csv.gz`` or ``.parquet``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from streamer.simulate.errors import HistoryFormatError
from streamer.simulate.fleet import FleetModel

COLUMNS: Final = ("meter_id", "ts", "kwh")
ZONE_COLUMN: Final = "time_zone"
SUFFIXES: Final = (".csv", ".csv.gz", ".parquet")
TS_DTYPE: Final = "datetime64[ms, UTC]"
#: Meter-slot cells computed per model call (bounds the model's temporary arrays).
_CELLS_PER_CALL: Final = 1 << 21


def generate_history(model: FleetModel, start_ms: int, end_ms: int) -> pd.DataFrame:
    """Interval energy of every meter for the slots ending in ``(start_ms, end_ms]``.

    Sorted by meter, then time. Needs about 30 bytes per row
    (``n_meters * (end_ms - start_ms) / resolution``). The load follows the model's time zone
    (``FleetModel(time_zone=...)``); ``ts`` stays UTC. A fleet outside UTC gets a ``time_zone``
    column naming it, which ``streamer train`` and ``streamer backtest`` read as each meter's
    calendar.
    """
    ends = model.slot_ends(start_ms, end_ms)
    n, slots = model.n_meters, ends.size
    kwh = np.empty((n, slots), dtype=np.float64)
    step = max(1, _CELLS_PER_CALL // n)
    for begin in range(0, slots, step):
        kwh[:, begin : begin + step] = model.load_kwh(ends[begin : begin + step])
    ts = pd.DatetimeIndex(np.tile(ends, n).astype("datetime64[ms]")).tz_localize("UTC")
    frame = pd.DataFrame(
        {
            "meter_id": pd.Series(np.repeat(model.meter_ids, slots), dtype="str"),
            "ts": ts,
            "kwh": kwh.ravel(),
        }
    )
    if model.time_zone != "UTC":
        frame[ZONE_COLUMN] = model.time_zone
    return frame


def _format_of(path: Path) -> str:
    name = path.name.lower()
    for suffix in (".csv.gz", ".csv", ".parquet"):
        if name.endswith(suffix):
            return suffix
    raise HistoryFormatError(
        f"cannot tell the format of {str(path)!r} from its name; end it in one of "
        f"{', '.join(SUFFIXES)}"
    )


def _checked(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise HistoryFormatError(
            f"{where} lacks column(s) {', '.join(missing)}; available columns are "
            f"{', '.join(map(str, frame.columns))} (need {', '.join(COLUMNS)})"
        )
    ts = frame["ts"]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        raise HistoryFormatError(
            f"{where}: ts must be timezone-aware datetimes (dtype is {ts.dtype}); "
            "use pd.to_datetime(..., utc=True) or .dt.tz_localize('UTC')"
        )
    clean = pd.DataFrame(
        {
            "meter_id": frame["meter_id"].astype("str"),
            "ts": ts.dt.tz_convert("UTC").astype(TS_DTYPE),
            "kwh": frame["kwh"].astype(np.float64),
        }
    )
    if ZONE_COLUMN in frame.columns:  # optional: each meter's IANA zone
        clean[ZONE_COLUMN] = frame[ZONE_COLUMN].astype("str")
    return clean


def write_history(path: str | Path, frame: pd.DataFrame) -> Path:
    """Write ``meter_id, ts, kwh`` as CSV (``ts`` RFC 3339) or Parquet, chosen by suffix."""
    target = Path(path)
    fmt = _format_of(target)
    clean = _checked(frame, "the history frame")
    target.parent.mkdir(parents=True, exist_ok=True)
    if fmt == ".parquet":
        clean.to_parquet(target, index=False)
        return target
    whole_seconds = bool((clean["ts"].dt.microsecond == 0).all())
    text = clean.assign(
        ts=clean["ts"].dt.strftime(
            "%Y-%m-%dT%H:%M:%S+00:00" if whole_seconds else "%Y-%m-%dT%H:%M:%S.%f+00:00"
        )
    )
    text.to_csv(target, index=False, compression="gzip" if fmt == ".csv.gz" else None)
    return target


def read_history(path: str | Path) -> pd.DataFrame:
    """Read a file written by :func:`write_history` (or any with the same columns)."""
    source = Path(path)
    fmt = _format_of(source)
    if not source.exists():
        raise HistoryFormatError(
            f"history file {str(source)!r} does not exist; write one with "
            "generate_history + write_history"
        )
    if fmt == ".parquet":
        frame = pd.read_parquet(source)
    else:
        frame = pd.read_csv(source, dtype={"meter_id": "str", "kwh": "float64"})
        if "ts" in frame.columns:
            frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
    return _checked(frame, repr(str(source)))
