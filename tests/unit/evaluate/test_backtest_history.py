"""load_history: CSV, CSV.GZ and Parquet, parsed as UTC, with errors that name the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from streamer.evaluate import HistoryFileError, load_history

EXPECTED_TS = pd.to_datetime(
    ["2024-01-01T00:30:00Z", "2024-01-01T01:00:00Z", "2024-01-01T01:30:00Z"], utc=True
)


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "meter_id": ["007", "007", "8"],
            "ts": ["2024-01-01T00:30:00Z", "2024-01-01T02:00:00+01:00", "2024-01-01T01:30:00"],
            "kwh": [0.5, np.nan, 1.25],
            "extra": [1, 2, 3],
        }
    )


@pytest.mark.parametrize("name", ["h.csv", "h.csv.gz", "h.CSV"])
def test_csv_variants(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    _frame().to_csv(path, index=False)
    out = load_history(path)
    assert list(out.columns) == ["meter_id", "ts", "kwh"]
    assert out["meter_id"].tolist() == ["007", "007", "8"]  # ids stay strings
    assert str(out["ts"].dt.tz) == "UTC"
    assert (out["ts"] == EXPECTED_TS).all()  # offsets converted; no offset = UTC
    np.testing.assert_array_equal(out["kwh"].to_numpy(), [0.5, np.nan, 1.25])


def test_parquet_with_aware_timestamps(tmp_path: Path) -> None:
    frame = _frame().drop(columns="extra")
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601").dt.tz_convert(
        "Europe/Amsterdam"
    )
    path = tmp_path / "h.parquet"
    frame.to_parquet(path)
    out = load_history(path)
    assert (out["ts"] == EXPECTED_TS).all() and str(out["ts"].dt.tz) == "UTC"


def test_epoch_milliseconds(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    pd.DataFrame({"meter_id": ["m"], "ts": [1_704_069_000_000], "kwh": [1.0]}).to_csv(
        path, index=False
    )
    assert load_history(path)["ts"].iloc[0] == pd.Timestamp("2024-01-01T00:30:00Z")


def test_missing_columns_name_the_available_ones(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    _frame().rename(columns={"kwh": "energy"}).to_csv(path, index=False)
    with pytest.raises(HistoryFileError) as err:
        load_history(path)
    message = str(err.value)
    assert "['kwh']" in message
    assert "available columns are ['meter_id', 'ts', 'energy', 'extra']" in message


@pytest.mark.parametrize(
    ("column", "value", "match"),
    [("ts", "yesterday", "cannot be read as timestamps"), ("kwh", "lots", "non-numeric")],
)
def test_bad_values(tmp_path: Path, column: str, value: str, match: str) -> None:
    frame = _frame()
    frame[column] = frame[column].astype(object)
    frame.loc[1, column] = value
    path = tmp_path / "h.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(HistoryFileError, match=match):
        load_history(path)


def test_unsupported_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(HistoryFileError, match=r"\.csv, \.csv\.gz, \.parquet"):
        load_history(tmp_path / "h.xlsx")
    with pytest.raises(HistoryFileError, match="no such history file"):
        load_history(tmp_path / "absent.csv")
