"""The one builder of test settings.

:func:`make_settings` is streamer's settings as a worker loads them, with a test's overrides;
:func:`worker_settings` is a worker's settings on a test broker, its app id, state dir and every
topic it reads or writes (the control topic included) unique to the caller, so that no test
sees another's records, and a model rollout a test publishes on its control topic reaches no
other test's workers. A second worker of the same application is ``first.model_copy(...)``.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from streamer.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
KAFKA_LIBS_DIR = REPO / ".streamer" / "kafka-libs"


def make_settings(**overrides: object) -> Settings:
    """The settings a worker would load (``STREAMER_*`` variables apply; an invalid value is a
    :class:`~streamer.settings.SettingsError`), with ``overrides``."""
    return load_settings(**overrides)


def unique_names(app_prefix: str = "test") -> dict[str, object]:
    """An app id and the names of every topic streamer reads or writes, unique to the caller."""
    suffix = uuid.uuid4().hex[:8]
    return {
        "app_id": f"{app_prefix}-{suffix}",
        "readings_topic": f"readings-{suffix}",
        "forecasts_topic": f"forecasts-{suffix}",
        "dlq_topic": f"dlq-{suffix}",
        "status_topic": f"status-{suffix}",
        "drift_topic": f"drift-{suffix}",
        "control_topic": f"streamer-control-{suffix}",
        "groups_topic": f"groups-{suffix}",
        "group_contributions_topic": f"group-contributions-{suffix}",
        "group_forecasts_topic": f"group-forecasts-{suffix}",
    }


def worker_settings(
    bootstrap: str,
    controller_port: int,
    state_dir: Path,
    *,
    app_prefix: str = "test",
    **overrides: object,
) -> Settings:
    """Settings for a worker on the test broker at ``bootstrap``: app id, topics
    (:func:`unique_names`) and state dir (under ``state_dir``) unique to the caller."""
    names = unique_names(app_prefix)
    base: dict[str, object] = {
        "kafka_bootstrap": bootstrap,
        "kafka_controller_port": controller_port,
        "kafka_libs_dir": KAFKA_LIBS_DIR,
        "state_dir": state_dir / f"app-{names['app_id']}",
        **names,
    }
    base.update(overrides)
    return make_settings(**base)
