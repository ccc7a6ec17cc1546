"""settled_partitions: none while a rebalance or its recovery runs, else the topic's partitions."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, NamedTuple

from streamer.faust_glue.ownership import settled_partitions


class TP(NamedTuple):
    topic: str
    partition: int


def app(*, rebalancing: bool, recovered: bool) -> Any:
    completed = asyncio.Event()
    if recovered:
        completed.set()
    assigned = {TP("readings", 0), TP("readings", 3), TP("group-contributions", 1)}
    return SimpleNamespace(
        rebalancing=rebalancing,
        tables=SimpleNamespace(recovery=SimpleNamespace(completed=completed)),
        consumer=SimpleNamespace(assignment=lambda: assigned),
    )


def test_the_topics_assigned_partitions_once_settled() -> None:
    settled = app(rebalancing=False, recovered=True)
    assert settled_partitions(settled, "readings") == frozenset({0, 3})
    assert settled_partitions(settled, "group-contributions") == frozenset({1})
    assert settled_partitions(settled, "other") == frozenset()


def test_none_during_a_rebalance_or_its_recovery() -> None:
    assert settled_partitions(app(rebalancing=True, recovered=True), "readings") is None
    # faust ends the rebalance after recovery; a recovery not completed is still unsettled
    assert settled_partitions(app(rebalancing=False, recovered=False), "readings") is None
