"""``python -m tests.support.dropping_worker worker ...``: the streamer worker, with the fetch
loop made to lose a range of readings once, the way faust 0.15.3 loses them around a rebalance
(read past, never handed to the batch processor, never acknowledged).

The range comes from ``DROP_MESSAGES_ENV``: ``<topic>:<partition>:<first offset>:<end offset>``.
Each message in it is dropped the first time it is fetched only, so reading it again works.
"""

from __future__ import annotations

import os
import sys

from streamer.faust_glue.bulk_readings import ReadingsFeed
from streamer.pipeline.messages import InMessage

DROP_MESSAGES_ENV = "TEST_DROP_MESSAGES"


def drop_once(spec: str) -> None:
    """Patch the bulk hand-over to drop the messages of ``spec`` the first time each comes."""
    topic, partition, first, end = spec.rsplit(":", 3)
    wanted = range(int(first), int(end))
    dropped: set[int] = set()
    put_nowait = ReadingsFeed.put_nowait

    def dropping(self: ReadingsFeed, part: int, messages: list[InMessage]) -> None:
        kept: list[InMessage] = []
        for message in messages:
            if (
                message.topic == topic
                and message.partition == int(partition)
                and message.offset in wanted
                and message.offset not in dropped
            ):
                dropped.add(message.offset)
                if len(dropped) == len(wanted):
                    print(f"dropping worker: dropped {spec}", file=sys.stderr, flush=True)
                continue
            kept.append(message)
        if kept:
            put_nowait(self, part, kept)

    ReadingsFeed.put_nowait = dropping  # type: ignore[method-assign]


if __name__ == "__main__":
    drop_once(os.environ.pop(DROP_MESSAGES_ENV))
    from streamer.cli import main

    main()
