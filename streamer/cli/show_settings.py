"""``streamer settings``: every setting, its environment variable and current value."""

from __future__ import annotations

from typing import Any

import click
from faust.cli import AppCommand

from streamer.settings import Settings, env_name
from streamer.typed_decorators import typed


def register_settings_command(app: Any, current: Settings) -> None:
    @typed(app.command())
    async def settings(self: AppCommand) -> None:
        """List every setting with its environment variable and current value."""
        for name, field in Settings.model_fields.items():
            value = getattr(current, name)
            click.echo(f"{env_name(name):40} = {value!s:28} {field.description or ''}")
