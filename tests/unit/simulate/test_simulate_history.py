from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from streamer.simulate.errors import HistoryFormatError
from streamer.simulate.fleet import FleetModel
from streamer.simulate.history import generate_history, read_history, write_history

START_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC


def test_generate_history_is_the_model_load_in_long_form() -> None:
    model = FleetModel(30, seed=41)
    frame = generate_history(model, START_MS, START_MS + 86_400_000)
    assert list(frame.columns) == ["meter_id", "ts", "kwh"]
    assert len(frame) == 30 * 48
    assert str(frame["ts"].dtype) == "datetime64[ms, UTC]"
    assert frame["ts"].iloc[0] == pd.Timestamp("2026-01-01T00:30:00Z")
    assert frame["ts"].iloc[47] == pd.Timestamp("2026-01-02T00:00:00Z")
    expected = model.load_kwh(model.slot_ends(START_MS, START_MS + 86_400_000))
    np.testing.assert_array_equal(frame["kwh"].to_numpy().reshape(30, 48), expected)
    assert frame["meter_id"].iloc[48] == "m-000001"


@pytest.mark.parametrize("name", ["h.csv", "h.csv.gz", "h.parquet", "deeper/H.PARQUET"])
def test_history_round_trip(tmp_path: Path, name: str) -> None:
    model = FleetModel(12, seed=42)
    frame = generate_history(model, START_MS, START_MS + 6 * 3_600_000)
    written = write_history(tmp_path / name, frame)
    assert written.exists()
    back = read_history(written)
    pd.testing.assert_frame_equal(back, frame)
    assert (back["kwh"] < 0).sum() == (frame["kwh"] < 0).sum()


def test_csv_timestamps_are_rfc3339_utc(tmp_path: Path) -> None:
    frame = generate_history(FleetModel(2, seed=43), START_MS, START_MS + 3_600_000)
    text = write_history(tmp_path / "h.csv", frame).read_text().splitlines()
    assert text[0] == "meter_id,ts,kwh"
    assert text[1].startswith("m-000000,2026-01-01T00:30:00+00:00,")


def test_other_time_zones_are_converted_to_utc(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "meter_id": ["m-1"],
            "ts": pd.to_datetime(["2026-01-01T01:30:00+01:00"]),
            "kwh": [0.5],
        }
    )
    back = read_history(write_history(tmp_path / "h.parquet", frame))
    assert back["ts"].iloc[0] == pd.Timestamp("2026-01-01T00:30:00Z")


def test_unknown_suffix_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    frame = generate_history(FleetModel(2, seed=44), START_MS, START_MS + 3_600_000)
    with pytest.raises(HistoryFormatError, match=r"\.csv, \.csv\.gz, \.parquet"):
        write_history(tmp_path / "h.xlsx", frame)
    with pytest.raises(HistoryFormatError, match="end it in one of"):
        read_history(tmp_path / "h.json")


def test_bad_frames_and_missing_files_are_refused(tmp_path: Path) -> None:
    naive = pd.DataFrame({"meter_id": ["m"], "ts": pd.to_datetime(["2026-01-01"]), "kwh": [1.0]})
    with pytest.raises(HistoryFormatError, match="tz_localize"):
        write_history(tmp_path / "h.csv", naive)
    with pytest.raises(HistoryFormatError, match="lacks column"):
        write_history(tmp_path / "h.csv", naive.drop(columns="kwh"))
    with pytest.raises(HistoryFormatError, match="does not exist"):
        read_history(tmp_path / "nothing.parquet")
