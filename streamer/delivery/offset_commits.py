"""Offset commits in the background, coalesced: the delivery of the next batch never waits for
a commit of the previous one.

faust's ``Consumer.commit`` lets one commit run at a time: a second caller waits for the first
and returns without committing what was acknowledged since. :class:`CoalescedCommits` runs a
commit as a task of its own and, when asked again while one runs, runs one more after it, so
the offsets acknowledged last are always committed soon after (and never left to faust's next
interval).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

#: Through a backlog, faust commits the readings offsets after this many batches acknowledged
#: (besides its interval): a commit every batch costs the worker about 5% of its ingest. With
#: coalesced state writes (STREAMER_COALESCE_STATE_WRITES) the state is written as often.
COMMIT_EVERY_BATCHES = 4


class CoalescedCommits:
    """Runs ``commit`` when asked, one at a time; asks made while one runs make one more."""

    def __init__(self, commit: Callable[[], Awaitable[object]]) -> None:
        self._commit = commit
        self._task: asyncio.Future[object] | None = None
        self._again = False
        self.started = 0

    def request(self) -> None:
        """Commit what is acknowledged now: at once, or right after the commit running."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._start()

    def _start(self) -> None:
        self._again = False
        self.started += 1
        task = self._task = asyncio.ensure_future(self._commit())
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[object]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:  # faust logs its own commit errors; the next ask tries again
            log.error("committing the readings offsets failed: %r", error)
        if self._again:
            self._start()

    async def settle(self) -> None:
        """A rebalance starts: let the commit running end, and make none after it (faust
        commits what is acknowledged itself at the revoke; a commit made while the group
        rebalances held up the new assignment's seek for good, in a crash test)."""
        self._again = False
        task = self._task
        if task is not None and not task.done():
            await asyncio.wait([task])

    async def close(self) -> None:
        """Stop: a commit running is cancelled and none follows."""
        self._again = False
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
