"""Reading a meter history (``meter_id, ts, kwh``) from CSV, CSV.GZ or Parquet."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from streamer.evaluate.errors import HistoryFileError
from streamer.forecast.local_time import is_known_zone

HISTORY_COLUMNS = ("meter_id", "ts", "kwh")
#: Optional: the meter's IANA time zone (its calendar); meters without one are in the fleet's.
ZONE_COLUMN = "time_zone"
_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")


def check_history_frame(history: pd.DataFrame, *, source: str = "history") -> pd.DataFrame:
    """The ``meter_id`` (str), ``ts`` (UTC), ``kwh`` (float64) columns of ``history``, and
    ``time_zone`` (str, IANA names) when it has one.

    ``ts`` must already be timezone-aware (any zone; converted to UTC). Raises
    :class:`HistoryFileError` naming missing columns and the available ones, or unknown zones.
    """
    missing = [c for c in HISTORY_COLUMNS if c not in history.columns]
    if missing:
        raise HistoryFileError(
            f"{source} lacks column(s) {missing}; available columns are "
            f"{[str(c) for c in history.columns]}. Rename them to meter_id, ts, kwh "
            "(ts = end of the interval, kwh = energy in it)."
        )
    ts = history["ts"]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        raise HistoryFileError(
            f"{source}: column ts has dtype {ts.dtype}, not timezone-aware datetimes; parse it "
            "with pd.to_datetime(df['ts'], utc=True) (or use load_history)"
        )
    kwh = pd.to_numeric(history["kwh"], errors="coerce").astype("float64")
    bad = kwh.isna() & history["kwh"].notna()
    if bad.any():
        example = history["kwh"][bad].iloc[0]
        raise HistoryFileError(
            f"{source}: column kwh holds {int(bad.sum())} non-numeric value(s), e.g. {example!r}; "
            "leave missing readings empty"
        )
    out = pd.DataFrame(
        {"meter_id": history["meter_id"].astype(str), "ts": ts.dt.tz_convert("UTC"), "kwh": kwh}
    )
    if ZONE_COLUMN in history.columns:
        zones = history[ZONE_COLUMN].where(history[ZONE_COLUMN].notna(), "").astype(str)
        unknown = [z for z in zones.unique().tolist() if z and not is_known_zone(z)]
        if unknown:
            raise HistoryFileError(
                f"{source}: column {ZONE_COLUMN} holds {unknown[:3]}, not IANA zone names; "
                "write names such as 'Europe/London' or leave it empty for the fleet's zone"
            )
        out[ZONE_COLUMN] = zones.to_numpy()
    return out.reset_index(drop=True)


def load_history(path: str | Path) -> pd.DataFrame:
    """Read ``meter_id, ts, kwh`` rows from ``.csv``, ``.csv.gz`` or ``.parquet``.

        ``ts`` is parsed as UTC: strings with an offset are converted, strings without one are
        taken as UTC, integers as epoch milliseconds. An optional ``time_zone`` column names each
    meter's zone. Other columns are dropped.
    """
    file = Path(path)
    name = file.name.lower()
    if not name.endswith(_SUFFIXES):
        raise HistoryFileError(
            f"{file}: unsupported history file type; use one of {', '.join(_SUFFIXES)}"
        )
    if not file.is_file():
        raise HistoryFileError(f"{file}: no such history file; check the path")
    try:
        if name.endswith((".parquet", ".pq")):
            raw = pd.read_parquet(file)
        else:
            raw = pd.read_csv(file, dtype={"meter_id": str})
    except (OSError, ValueError) as exc:
        raise HistoryFileError(f"{file}: cannot read it ({exc})") from None
    missing = [c for c in HISTORY_COLUMNS if c not in raw.columns]
    if missing:
        raise HistoryFileError(
            f"{file} lacks column(s) {missing}; available columns are "
            f"{[str(c) for c in raw.columns]}. Rename them to meter_id, ts, kwh."
        )
    kept = [*HISTORY_COLUMNS, *([ZONE_COLUMN] if ZONE_COLUMN in raw.columns else [])]
    raw = raw.loc[:, kept].copy()
    raw["ts"] = _parse_ts(raw["ts"], str(file))
    return check_history_frame(raw, source=str(file))


def _parse_ts(values: pd.Series, source: str) -> pd.Series:
    try:
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            return pd.to_datetime(values, utc=True)
        if pd.api.types.is_numeric_dtype(values.dtype):
            return pd.to_datetime(values, unit="ms", utc=True)
        return pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise HistoryFileError(
            f"{source}: column ts cannot be read as timestamps ({exc}); write RFC 3339 "
            "(2024-01-01T00:30:00Z) or epoch milliseconds"
        ) from None
