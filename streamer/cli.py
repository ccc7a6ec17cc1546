"""``streamer``: faust's command line (``streamer worker``, ``streamer agents`` ...) plus ours.

Ours: ``streamer kafka start|stop|status``, ``streamer topics``, ``streamer simulate``,
``streamer settings`` and ``streamer demo``. Settings come from ``STREAMER_*`` variables
(``streamer settings`` lists them); simulator flags name their variable in ``--help``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click
from faust.cli import AppCommand, argument, option

from streamer.cli_errors import fail
from streamer.errors import StreamerError
from streamer.settings import Settings, SettingsError, env_name, load_settings
from streamer.typed_decorators import typed


def register_commands(app: Any, settings: Settings) -> None:
    """Add streamer's own commands to the faust app's command line."""

    @typed(
        app.command(
            argument("action", type=click.Choice(["start", "stop", "status", "install"])),
        )
    )
    async def kafka(self: AppCommand, action: str) -> None:
        """Run the local single-node Kafka (KRaft): install, start, stop or status."""
        from streamer.localkafka.broker import LocalKafka

        broker = LocalKafka(settings, say=click.echo)
        try:
            if action == "install":
                broker.install()
            elif action == "start":
                broker.start()
                from streamer.kafka_admin import ensure_topics

                await ensure_topics(settings)
                click.echo("Topics ready: " + ", ".join(_topics(settings)))
            elif action == "stop":
                broker.stop()
            else:
                status = broker.status()
                click.echo(status.describe())
                if not status.running:
                    raise SystemExit(1)
        except StreamerError as exc:
            fail(str(exc))

    @typed(app.command())
    async def topics(self: AppCommand) -> None:
        """Create streamer's topics on STREAMER_KAFKA_BOOTSTRAP if they are missing."""
        from streamer.kafka_admin import ensure_topics

        try:
            await ensure_topics(settings)
        except StreamerError as exc:
            fail(str(exc))
        click.echo("Topics ready: " + ", ".join(_topics(settings)))

    _register_settings_command(app, settings)
    from streamer.cli_simulate import register_simulate_command

    register_simulate_command(app, settings)
    from streamer.cli_demo import register_demo_command

    register_demo_command(app, settings)
    from streamer.cli_model import register_model_commands, register_rollout_commands

    register_model_commands(app, settings)
    register_rollout_commands(app, settings)


def _register_settings_command(app: Any, current: Settings) -> None:
    @typed(app.command())
    async def settings(self: AppCommand) -> None:
        """List every setting with its environment variable and current value."""
        for name, field in Settings.model_fields.items():
            value = getattr(current, name)
            click.echo(f"{env_name(name):40} = {value!s:28} {field.description or ''}")


def _topics(settings: Settings) -> list[str]:
    from streamer.kafka_admin import topic_names

    return topic_names(settings)


def main() -> None:
    """Console entry point."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        fail(str(exc))
    from streamer.app import create_app

    settings.worker_dir.mkdir(parents=True, exist_ok=True)
    try:
        app, _runtime = create_app(settings)
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
