"""``streamer rollout`` and ``streamer promote``: which model version the workers serve."""

from __future__ import annotations

from typing import Any

import click
from faust.cli import AppCommand, argument, option

from streamer.cli.errors import fail
from streamer.errors import StreamerError
from streamer.settings import Settings
from streamer.typed_decorators import typed


def register_rollout_commands(app: Any, settings: Settings) -> None:
    @typed(
        app.command(
            argument("spec", required=False),
            option(
                "--shadow",
                is_flag=True,
                default=False,
                help="Run SPEC beside the live model (forecasts compared, not published).",
            ),
            option("--clear-shadow", is_flag=True, default=False, help="Stop the shadow model."),
        )
    )
    async def rollout(self: AppCommand, spec: str | None, shadow: bool, clear_shadow: bool) -> None:
        """Roll a model version out to every worker without stopping the stream.

        `streamer rollout lstm:2` makes lstm:2 live; `--shadow` runs it beside the live model;
        without SPEC it prints the current assignment. The change goes to the control topic
        (STREAMER_CONTROL_TOPIC); workers swap between two micro-batches.
        """
        from streamer.forecast.registry import builtin_factories, make_forecaster
        from streamer.inference.providers import parse_providers
        from streamer.inference.registration import register_lstm
        from streamer.kafka_admin import ensure_topics
        from streamer.rollout.assignment import ModelAssignment
        from streamer.rollout.control_topic import publish, read_current
        from streamer.timeutil import now_ms

        try:
            await ensure_topics(settings)
            current = await read_current(settings)
            if spec is None and not clear_shadow:
                if current is None:
                    click.echo(
                        "No rollout yet: workers serve STREAMER_FORECASTER "
                        f"({settings.forecaster})."
                    )
                else:
                    click.echo(
                        f"live: {current.live}  shadow: {current.shadow or '-'}  ({current.note})"
                    )
                return
            if spec is not None:
                # refuse a spec that does not load here, before any worker sees it
                factories = builtin_factories()
                register_lstm(
                    settings.models_dir,
                    parse_providers(settings.onnx_providers),
                    factories=factories,
                )
                make_forecaster(
                    spec,
                    horizon_slots=settings.horizon_slots,
                    resolution_seconds=settings.resolution_seconds,
                    factories=factories,
                )
            live = current.live if current is not None else settings.forecaster
            current_shadow = current.shadow if current is not None else None
            if clear_shadow:
                assignment = ModelAssignment(live, None, now_ms(), "shadow cleared")
            elif shadow:
                assert spec is not None
                assignment = ModelAssignment(live, spec, now_ms(), f"shadow {spec}")
            else:
                assert spec is not None
                kept = None if current_shadow == spec else current_shadow
                assignment = ModelAssignment(spec, kept, now_ms(), f"live {spec}")
            await publish(settings, assignment)
        except StreamerError as exc:
            fail(str(exc))
        click.echo(f"Published: live {assignment.live}, shadow {assignment.shadow or '-'}")

    @typed(app.command())
    async def promote(self: AppCommand) -> None:
        """Make the shadow model live on every worker (and stop shadowing)."""
        from streamer.rollout.control_topic import publish, read_current
        from streamer.timeutil import now_ms

        try:
            current = await read_current(settings)
            if current is None:
                fail("nothing to promote: no rollout on the control topic yet")
            assignment = current.promoted(now_ms())
            await publish(settings, assignment)
        except StreamerError as exc:
            fail(str(exc))
        click.echo(f"Promoted: live {assignment.live} (was {current.live})")
