"""``streamer groups``: publish and show group membership (the ``meter-groups`` topic)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from faust.cli import AppCommand, argument, option

from streamer.cli.errors import fail
from streamer.errors import StreamerError
from streamer.settings import Settings
from streamer.typed_decorators import typed


def register_groups_command(app: Any, settings: Settings) -> None:
    @typed(
        app.command(
            argument("action", type=click.Choice(["load", "show"])),
            argument(
                "file",
                required=False,
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
            ),
            option(
                "--replace/--merge",
                default=True,
                show_default=True,
                help="load: also take meters that the file does not list out of their groups "
                "(--merge leaves them).",
            ),
        )
    )
    async def groups(self: AppCommand, action: str, file: Path | None, replace: bool) -> None:
        """Group membership: `streamer groups load FILE.csv` publishes a meter_id,group_id,kind
        mapping to STREAMER_GROUPS_TOPIC (only the meters whose groups changed); `streamer
        groups show` prints how many meters and groups the topic holds, by kind.

        Workers apply a change from the next batch on; the topic is compacted, so membership
        is never lost on restart.
        """
        from streamer.groups.membership import members_of, read_membership_csv
        from streamer.groups.membership_topic import publish_membership, read_membership
        from streamer.kafka_admin import ensure_topics

        try:
            await ensure_topics(settings)
            current = await read_membership(settings)
            if action == "show":
                click.echo(
                    f"{settings.groups_topic}: {current.meters} meters in {current.groups} groups"
                )
                return
            if file is None:
                fail("groups load needs a FILE: a CSV with meter_id,group_id,kind")
            membership = read_membership_csv(file)
            written, removed = await publish_membership(
                settings, membership, current=current, replace=replace
            )
        except StreamerError as exc:
            fail(str(exc))
        kinds: dict[str, int] = {}
        for ref in members_of(membership):
            kinds[ref.kind] = kinds.get(ref.kind, 0) + 1
        by_kind = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
        click.echo(
            f"{len(membership)} meters in {sum(kinds.values())} groups ({by_kind}): "
            f"{written} records written to {settings.groups_topic}, {removed} meters removed."
        )
