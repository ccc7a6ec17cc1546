"""Offset commits in the background: one at a time, an ask made meanwhile makes one more (so the
newest acknowledgements are committed), failures are logged and do not stop later commits."""

from __future__ import annotations

import asyncio
import logging

import pytest

from streamer.delivery.offset_commits import CoalescedCommits


class Broker:
    """A commit that waits for its gate; records what was acknowledged when it started."""

    def __init__(self) -> None:
        self.acked = 0
        self.committed: list[int] = []
        self.gates: list[asyncio.Event] = []
        self.running = 0
        self.most_running = 0
        self.fail = False

    async def commit(self) -> bool:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        taken = self.acked
        gate = asyncio.Event()
        self.gates.append(gate)
        try:
            await gate.wait()
            if self.fail:
                raise ConnectionError("coordinator gone")
            self.committed.append(taken)
            return True
        finally:
            self.running -= 1


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_asks_while_a_commit_runs_make_one_more_commit_of_the_newest_offsets() -> None:
    async def scenario() -> None:
        broker = Broker()
        commits = CoalescedCommits(broker.commit)
        broker.acked = 1
        commits.request()
        await settle()
        for acked in (2, 3, 4):  # three asks while the first runs: one more commit, after it
            broker.acked = acked
            commits.request()
        await settle()
        assert commits.started == 1
        broker.gates[0].set()
        await settle()
        assert commits.started == 2
        broker.gates[1].set()
        await settle()
        assert broker.committed == [1, 4]
        assert broker.most_running == 1
        commits.request()  # idle: at once
        await settle()
        assert commits.started == 3
        await commits.close()
        assert broker.running == 0

    asyncio.run(scenario())


def test_a_failed_commit_is_logged_and_the_next_ask_commits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        broker = Broker()
        commits = CoalescedCommits(broker.commit)
        broker.fail = True
        commits.request()
        await settle()
        broker.gates[0].set()
        await settle()
        broker.fail = False
        broker.acked = 5
        commits.request()
        await settle()
        broker.gates[1].set()
        await settle()
        assert broker.committed == [5]

    with caplog.at_level(logging.ERROR):
        asyncio.run(scenario())
    assert "committing the readings offsets failed" in caplog.text
    assert "coordinator gone" in caplog.text


def test_close_cancels_the_commit_running_and_none_follows() -> None:
    async def scenario() -> None:
        broker = Broker()
        commits = CoalescedCommits(broker.commit)
        commits.request()
        await settle()
        commits.request()  # would follow the first
        await commits.close()
        await settle()
        assert broker.running == 0
        assert commits.started == 1
        assert broker.committed == []

    asyncio.run(scenario())


def test_settle_lets_the_commit_running_end_and_makes_none_after_it() -> None:
    async def scenario() -> None:
        broker = Broker()
        commits = CoalescedCommits(broker.commit)
        broker.acked = 1
        commits.request()
        await settle()
        broker.acked = 2
        commits.request()  # would follow the first
        settling = asyncio.ensure_future(commits.settle())
        await settle()
        assert not settling.done()  # waits for the commit running
        broker.gates[0].set()
        await settling
        await settle()
        assert broker.committed == [1]
        assert commits.started == 1  # a rebalance: faust commits what is acknowledged itself
        await commits.settle()  # nothing running: at once

    asyncio.run(scenario())
