"""``streamer``: faust's command line (``streamer worker``, ``streamer agents`` ...) plus ours.

Ours, one module each: ``streamer kafka start|stop|status`` and ``streamer topics``
(:mod:`.kafka`), ``streamer settings`` (:mod:`.show_settings`), ``streamer simulate``
(:mod:`.simulate`), ``streamer replay`` (:mod:`.replay`), ``streamer demo`` (:mod:`.demo`),
``streamer train`` and ``streamer backtest`` (:mod:`.model`), ``streamer rollout`` and
``streamer promote`` (:mod:`.rollout`); :mod:`.errors` is how each stops on a user error.
Settings come from ``STREAMER_*`` variables (``streamer settings`` lists them); simulator and
replay flags name their variable in ``--help``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from faust.cli import option

from streamer.cli.errors import fail
from streamer.errors import StreamerError
from streamer.settings import Settings, SettingsError, load_settings
from streamer.thread_dump import install_thread_dump


def register_commands(app: Any, settings: Settings) -> None:
    """Add streamer's own commands to the faust app's command line."""
    from streamer.cli.demo import register_demo_command
    from streamer.cli.groups import register_groups_command
    from streamer.cli.kafka import register_kafka_commands
    from streamer.cli.model import register_model_commands
    from streamer.cli.replay import register_replay_command
    from streamer.cli.rollout import register_rollout_commands
    from streamer.cli.show_settings import register_settings_command
    from streamer.cli.simulate import register_simulate_command

    register_kafka_commands(app, settings)
    register_settings_command(app, settings)
    register_simulate_command(app, settings)
    register_replay_command(app, settings)
    register_demo_command(app, settings)
    register_model_commands(app, settings)
    register_rollout_commands(app, settings)
    register_groups_command(app, settings)


def main() -> None:
    """Console entry point."""
    install_thread_dump()  # `kill -QUIT <pid>`: every thread's stack to stderr
    try:
        settings = load_settings()
    except SettingsError as exc:
        fail(str(exc))
    from streamer.app import create_app

    settings.worker_dir.mkdir(parents=True, exist_ok=True)
    try:
        # only a worker serves HTTP: other commands need no API keys whatever the web host
        serving = len(sys.argv) > 1 and sys.argv[1] == "worker"
        app, _runtime = create_app(settings, serving=serving)
    except StreamerError as exc:  # e.g. a TLS file that is not PEM, a model that does not load
        fail(str(exc))
    register_commands(app, settings)
    from streamer.kafka_log_noise import install

    # faust configures logging as the worker starts; filters on the loggers stay in place
    install(settings.kafka_bootstrap)
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        from streamer.kafka_admin import ensure_topics
        from streamer.localkafka.broker import port_open

        if settings.web_port and port_open(settings.web_host, settings.web_port):
            fail(
                f"port {settings.web_port} on {settings.web_host} is in use (another worker?); "
                "choose another with STREAMER_WEB_PORT"
            )

        try:
            asyncio.run(ensure_topics(settings))
        except StreamerError as exc:
            fail(str(exc))
    app.main()


__all__ = ["main", "option", "register_commands"]
