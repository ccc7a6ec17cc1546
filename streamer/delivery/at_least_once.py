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

**exactly_once** (``STREAMER_PROCESSING_GUARANTEE=exactly_once``) does not come through here: a
batch is committed as one transaction per readings partition, offsets included
(:mod:`streamer.delivery.exactly_once`, :mod:`streamer.delivery.transactional_sender`).

:func:`deliver` sends through :class:`~streamer.delivery.bulk_sender.BulkSender`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from streamer.delivery.bulk_sender import BulkSender, OutRecord


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
