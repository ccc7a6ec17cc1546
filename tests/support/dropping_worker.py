"""``python -m tests.support.dropping_worker worker ...``: the streamer worker, with faust's
fetch loop made to lose a range of messages once, the way faust 0.15.3 loses them around a
rebalance (read past, never handed to a stream, never acknowledged).

The range comes from ``DROP_MESSAGES_ENV``: ``<topic>:<partition>:<first offset>:<end offset>``.
Each message in it is dropped the first time it is fetched only, so reading it again works.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from faust.transport.consumer import Consumer

DROP_MESSAGES_ENV = "TEST_DROP_MESSAGES"


def drop_once(spec: str) -> None:
    """Patch faust's fetch loop to drop the messages of ``spec`` the first time each comes."""
    topic, partition, first, end = spec.rsplit(":", 3)
    wanted = range(int(first), int(end))
    dropped: set[int] = set()
    drain = Consumer._drain_messages

    async def _drain_messages(self: Any, fetcher: Any) -> None:
        callback = self.callback

        async def dropping(message: Any) -> Any:
            if (
                message.topic == topic
                and message.partition == int(partition)
                and message.offset in wanted
                and message.offset not in dropped
            ):
                dropped.add(message.offset)
                if len(dropped) == len(wanted):
                    print(f"dropping worker: dropped {spec}", file=sys.stderr, flush=True)
                return None
            return await callback(message)

        self.callback = dropping
        try:
            await drain(self, fetcher)
        finally:
            self.callback = callback

    Consumer._drain_messages = _drain_messages  # type: ignore[method-assign]


if __name__ == "__main__":
    drop_once(os.environ.pop(DROP_MESSAGES_ENV))
    from streamer.cli import main

    main()
