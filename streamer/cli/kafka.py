"""``streamer kafka start|stop|status|install`` and ``streamer topics``: the broker and topics."""

from __future__ import annotations

from typing import Any

import click
from faust.cli import AppCommand, argument

from streamer.cli.errors import fail
from streamer.errors import StreamerError
from streamer.settings import Settings
from streamer.typed_decorators import typed


def register_kafka_commands(app: Any, settings: Settings) -> None:
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


def _topics(settings: Settings) -> list[str]:
    from streamer.kafka_admin import topic_names

    return topic_names(settings)
