"""Names of the worker's faust tables and of their changelog topics."""

from __future__ import annotations

from streamer.settings import Settings

STATE_TABLE = "meter-state"
LATEST_FORECAST_TABLE = "meter-latest-forecast"
GROUP_STATE_TABLE = "group-state"
GROUP_LATEST_TABLE = "group-latest-forecast"


def changelog_topics(settings: Settings) -> list[str]:
    """faust's names for the tables' changelog topics (``<app_id>-<table>-changelog``)."""
    tables = (STATE_TABLE, LATEST_FORECAST_TABLE, GROUP_STATE_TABLE, GROUP_LATEST_TABLE)
    return [f"{settings.app_id}-{table}-changelog" for table in tables]
