"""How every ``streamer`` command stops on a user-facing error: one line, exit status 2."""

from __future__ import annotations

from typing import NoReturn

import click


def fail(message: str) -> NoReturn:
    """Print ``streamer: <message>`` on stderr and exit 2, without a traceback."""
    click.echo(f"streamer: {message}", err=True)
    raise SystemExit(2)
