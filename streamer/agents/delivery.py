"""How a batch's outputs reach Kafka before its input offsets may be committed.

**Delivery semantics: at-least-once, with duplicates that identify themselves.** A batch's
state writes (changelog records), forecasts, dead letters and status events are all
acknowledged by Kafka before the batch's readings are acknowledged to faust, and faust commits
only acknowledged offsets. So a committed offset never covers an output that is not in Kafka:
a crash (SIGKILL), a broker outage or a rebalance replays, never skips. A replayed reading is
recognised per slot against the restored state (outcome ``duplicate``: no state change, so no
forecast); a forecast is issued again only when the crash fell after the forecast reached
Kafka but before its state write did. A re-issued forecast carries the same ``forecast_id``
(meter, origin slot, model, version), so a consumer drops duplicates by that id (or by meter
and ``origin_ts``). ``tests/integration/test_fault_*.py`` measure this. The reverse order, a
state write in Kafka and its forecast not, would make the replay a duplicate that forecasts
nothing, so :func:`deliver` sends a batch's outputs first and its state writes only once the
outputs are acknowledged.

**exactly_once is refused** (``STREAMER_PROCESSING_GUARANTEE``, see
:data:`streamer.settings.EXACTLY_ONCE_REFUSED`). faust-streaming 0.15.3's transaction manager
names a record's transactional id from the *consumer's* metadata of the record's topic; the
worker does not consume its output topics, so forecasts, dead letters and status events go
through the plain producer, outside any transaction (measured: the forecasts topic of an
exactly_once run holds no transaction markers, its state changelog does). Under a SIGKILL it
also lost a reading in one run (its offset committed, its state write aborted) and stopped
committing in another (retained transactional producers fail ``begin_transaction`` after a
rebalance: "Invalid state transition IN_TRANSACTION -> IN_TRANSACTION").

:func:`deliver` sends through :class:`~streamer.agents.bulk_sender.BulkSender`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from streamer.agents.bulk_sender import BulkSender, OutRecord


async def deliver(
    sender: BulkSender,
    outputs: Sequence[OutRecord],
    state_writes: Sequence[OutRecord],
    *,
    published: Callable[[], None] | None = None,
) -> None:
    """Outputs first, then the state writes; returns once Kafka acknowledged all of them
    (waiting, and retrying, as long as it takes: a broker outage must not let the batch be
    acknowledged). ``published`` runs once the outputs are acknowledged (the batch's metrics:
    what a consumer of the outputs can see is counted by then)."""
    await sender.send(outputs)
    if published is not None:
        published()
    await sender.send(state_writes)
