"""A fix for faust-streaming 0.15.3's offset bookkeeping, applied when a worker's app is built.

**The bug.** faust keeps, per partition, the offsets its streams acknowledged (``_acked``). To
commit, ``Consumer._new_offset`` takes the first run of consecutive acknowledged offsets *out of
that list* and returns the offset after it; the commit is then attempted. When the attempt does
not happen (the partition is momentarily outside the assignment during a rebalance: "Discarded
commit for revoked partitions"), or fails (``CommitFailedError``: "already rebalanced"), the
offsets taken out are gone: the next commit finds a hole between the committed offset and the
first offset still listed and never commits that partition again. Seen in the worker-crash
test: the survivor had processed every reading of a moved partition, its group lag stayed at
243 for minutes (faust's state read from the live process: committed 717, acknowledged 927 to
959, nothing in between).

**The fixes.**

0. ``Consumer._new_offset`` is replaced by :func:`new_offset`, faust's own with the duplicates
   its gap merging leaves in the list removed (they made commits crawl an offset at a time).

1. Around ``Consumer._commit_tps``: the acknowledged offsets of each partition are noted before,
   and those taken out are put back for every partition still assigned whose committed offset
   did not move. Offsets below the committed one are never put back.
2. A hole can also come from messages faust never delivered after a rebalance (its fetch loop
   drops messages below a read offset that a stale fetch may have moved past the committed
   one; a partition never committed before may not be read at all). :func:`commit_holes` finds
   such partitions; :mod:`streamer.agents.commit_watchdog` logs and counts them (a seek to
   repair them lost readings in a test, so none is made).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from faust.transport.consumer import Consumer
from faust.utils.functional import consecutive_numbers

_MARK = "_streamer_restores_acks"


def new_offset(self: Any, tp: Any) -> int | None:
    """faust's ``Consumer._new_offset`` with its duplicates removed.

    faust merges the offsets of known gaps into the acknowledged list without noting them as
    acknowledged, so a message of such a range acknowledged later is listed twice; a list with
    duplicates splits into runs of one or two, and the partition's commits then crawl forward
    by an offset or two a commit (seen after a takeover: 434 behind, falling 1 a second). Here
    the merged offsets are noted and the list is kept free of duplicates; the rest is faust's.
    """
    acked = self._acked[tp]
    if not acked:
        return None
    index = self._acked_index[tp]
    max_offset = max(acked)
    gap_for_tp = self._gap[tp]
    if gap_for_tp:
        candidates = sorted(gap_for_tp.overlap(0, max_offset), key=lambda x: x.begin)
        if candidates:
            stuff_to_add: list[int] = []
            for entry in candidates:
                stuff_to_add.extend(range(entry.begin, entry.end))
            new_max_offset = max(stuff_to_add[-1], max_offset + 1)
            acked.extend(o for o in stuff_to_add if o not in index)
            index.update(stuff_to_add)
            gap_for_tp.chop(0, new_max_offset)
    if len(index) != len(acked):
        acked[:] = set(acked)
    acked.sort()
    committed_offset = self._committed_offset[tp]
    if committed_offset and acked[0] - committed_offset > 1:
        return None
    batch = next(consecutive_numbers(acked))
    acked[: len(batch)] = []
    index.difference_update(batch)
    return int(batch[-1]) + 1


def restore_acks_of_failed_commits() -> None:
    """Patch faust's Consumer (once per process)."""
    if getattr(Consumer, _MARK, False):
        return
    setattr(Consumer, "_new_offset", new_offset)  # noqa: B010 (a method of a library class)
    original = Consumer._commit_tps

    async def _commit_tps(self: Any, tps: Iterable[Any], start_new_transaction: bool) -> bool:
        tps = list(tps)
        before = {tp: (list(self._acked[tp]), self._committed_offset.get(tp)) for tp in tps}
        try:
            return bool(await original(self, tps, start_new_transaction))
        finally:
            put_back(self, before)

    setattr(Consumer, "_commit_tps", _commit_tps)  # noqa: B010 (a method of a library class)
    setattr(Consumer, _MARK, True)


def commit_holes(consumer: Any, topic: str) -> dict[Any, tuple[int, int]]:
    """Assigned partitions of ``topic`` that faust cannot commit: ``{tp: (offset to read again
    from, first offset past the hole)}``.

    Either the acknowledged offsets start past the committed one, or the partition was never
    committed, nothing of it is acknowledged, and it holds records (faust may have dropped what
    it fetched around a rebalance and read nothing since).
    """
    holes: dict[Any, tuple[int, int]] = {}
    for tp in consumer.assignment():
        if tp.topic != topic:
            continue
        committed = consumer._committed_offset.get(tp)
        acked = consumer._acked.get(tp)
        if committed is None:
            highwater = consumer.highwater(tp)
            if not acked and highwater:
                holes[tp] = (0, int(highwater))
            continue
        if acked:
            first = min(acked)
            if first - committed > 1:
                holes[tp] = (committed, first)
    return holes


def put_back(consumer: Any, before: dict[Any, tuple[list[int], int | None]]) -> int:
    """Return to ``consumer._acked`` the offsets of ``before`` that a commit which did not
    happen took out; how many were put back."""
    assignment = consumer.assignment()
    restored = 0
    for tp, (acked, committed_before) in before.items():
        committed = consumer._committed_offset.get(tp)
        if tp not in assignment or committed != committed_before:
            continue
        index = consumer._acked_index[tp]
        missing = [
            offset
            for offset in dict.fromkeys(acked)  # once each, in order
            if offset not in index and (committed is None or offset >= committed)
        ]
        if missing:
            index.update(missing)
            listed = consumer._acked[tp]
            listed.extend(missing)
            listed.sort()
            restored += len(missing)
    return restored
