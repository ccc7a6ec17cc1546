"""STREAMER_TABLE_STANDBY_REPLICAS reaches faust: standby copies on by default, 0 turns them off."""

from __future__ import annotations

from pathlib import Path

from streamer.settings import load_settings


def test_the_app_keeps_the_standby_copies_the_settings_ask_for(tmp_path: Path) -> None:
    from streamer.app import create_app

    default, _ = create_app(load_settings(state_dir=tmp_path, forecaster="seasonal_naive_week"))
    assert default.conf.table_standby_replicas == 1
    none, _ = create_app(
        load_settings(
            state_dir=tmp_path, forecaster="seasonal_naive_week", table_standby_replicas=0
        )
    )
    assert none.conf.table_standby_replicas == 0
