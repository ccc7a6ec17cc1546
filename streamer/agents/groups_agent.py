"""Group forecasts in the stream: membership, the group agent and its lateness timer.

- Every worker reads the whole compacted ``meter-groups`` topic with its own consumer (no group),
  as it reads the control topic: the readings loop sends each batch's member forecasts and
  readings to their groups (:mod:`streamer.groups.contributions`), keyed and partitioned by
  group, so groups spread over workers as meters do.
- The group agent consumes ``group-contributions`` (its partitions assigned with the readings',
  so a group's state is recovered by its owner from its changelog) and keeps one
  :class:`~streamer.groups.group_state.GroupState` per group in the ``group-state`` table; it
  issues group forecasts (``group-forecasts``, and the newest in ``group-latest-forecast`` for
  ``GET /groups/{id}/forecast``) and realised totals (``forecast-drift``, scope ``group``).
- A timer issues what waits on late or silent members once ``STREAMER_GROUP_LATENESS_SECONDS``
  have passed, for the groups whose partitions this worker owns, and never while a rebalance
  runs (:mod:`streamer.faust_glue.ownership`).

Table values are written as the batch code writes the meter tables (the store's dict, and the
changelog record sent to the key's partition), so that the timer can write outside an event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from streamer.agents.runtime import WorkerRuntime
from streamer.faust_glue.ownership import settled_partitions
from streamer.faust_glue.table_access import table_sink
from streamer.groups.calibration import GroupCalibrator
from streamer.groups.contributions import Contribution, group_partition
from streamer.groups.errors import GroupError
from streamer.groups.group_state import GroupConfig, GroupState, RealisedTotal
from streamer.groups.records import group_forecast_json, realised_json
from streamer.timeutil import now_ms
from streamer.typed_decorators import typed
from streamer.whole_topic import following

log = logging.getLogger(__name__)
LATENESS_CHECK_SECONDS = 5.0


class GroupDesk:
    """The group side of one worker: decode, apply, issue, store, send."""

    def __init__(self, runtime: WorkerRuntime) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.config = GroupConfig(
            horizon_slots=settings.horizon_slots,
            resolution_seconds=settings.resolution_seconds,
            lateness_seconds=settings.group_lateness_seconds,
        )
        self.prior = GroupCalibrator(self.config.calibration.for_prior())
        self.state = table_sink(runtime.group_state_table)
        self.latest = table_sink(runtime.group_latest_table)
        self.view = runtime.core.membership
        self.partitions = settings.topic_partitions

    def load(self, group_id: str, kind: str) -> GroupState:
        raw = self.state.data.get(group_id.encode())
        if raw is not None:
            try:
                return GroupState.from_bytes(bytes(raw), self.config)
            except GroupError as exc:
                log.warning("state of group %r unreadable (%s); starting it afresh", group_id, exc)
        return GroupState(group_id, kind, self.config)

    async def apply(self, contribution: Contribution) -> None:
        state = self.load(contribution.group_id, contribution.kind)
        state.kind = contribution.kind
        state.set_members(self.view.members_of(contribution.group_id))
        metrics = self.runtime.metrics
        for meter_id, origin, values in contribution.forecasts:
            counted = state.add_forecast(meter_id, origin, values)
            metrics.group_contributions.labels(kind="forecast", counted=str(counted).lower()).inc()
        for meter_id, slot, kwh in contribution.actuals:
            counted = state.add_actual(meter_id, slot, kwh)
            metrics.group_contributions.labels(kind="actual", counted=str(counted).lower()).inc()
        await self.step(state, force_write=True)

    async def step(self, state: GroupState, *, force_write: bool = False) -> None:
        """Issue and realise what is due; store the state when anything changed."""
        at = now_ms()
        issued = state.issue(at, self.prior)
        realised = state.realise(at, self.prior)
        if not (issued or realised or force_write):
            return
        key = state.group_id.encode()
        partition = group_partition(state.group_id, self.partitions)
        value = state.to_bytes()
        self._write(self.state, self.runtime.group_state_table, key, value, partition)
        settings = self.runtime.settings
        metrics = self.runtime.metrics
        levels = self.config.calibration.levels
        for forecast in issued:
            body = group_forecast_json(
                forecast,
                resolution_seconds=settings.resolution_seconds,
                levels=levels,
                issued_ms=at,
            )
            await self.runtime.topics.group_forecasts.send(key=key, value=body, partition=partition)
            metrics.group_forecasts.labels(kind=forecast.kind).inc()
            for status, count in (
                ("reported", forecast.reported),
                ("filled", forecast.filled),
                ("missing", forecast.missing),
            ):
                metrics.group_members.labels(kind=forecast.kind, status=status).inc(count)
        if issued:
            self._write(self.latest, self.runtime.group_latest_table, key, body, partition)
        model = self.runtime.router.live
        if realised and state.group_id in settings.watched_group_ids:
            self._watch(state, realised[-1])
        for total in realised:
            record = realised_json(
                total,
                resolution_seconds=settings.resolution_seconds,
                at_ms=at,
                model=(model.name, model.version),
            )
            await self.runtime.topics.drift.send(key=key, value=record)
            complete = "true" if total.complete else "false"
            metrics.group_totals.labels(kind=total.kind, complete=complete).inc()
            for step_slots, forecast_kwh, actual_kwh in total.pairs:
                if step_slots in (1, self.config.horizon_slots):
                    horizon = f"h{step_slots}"
                    metrics.group_abs_error_kwh.labels(kind=total.kind, horizon=horizon).inc(
                        abs(forecast_kwh - actual_kwh)
                    )
                    metrics.group_pairs.labels(kind=total.kind, horizon=horizon).inc()

    def _watch(self, state: GroupState, total: RealisedTotal) -> None:
        """The watched group's newest realised total and its one-slot-ahead forecast."""
        gauge = self.runtime.metrics.watched_group_kwh
        gauge.labels(group_id=state.group_id, series="actual").set(total.total_kwh)
        ahead = [p for p in total.pairs if p[0] == 1]
        if not ahead:
            return
        band = state.calibrator.publish(np.array([1]), np.array([ahead[0][1]]), self.prior)
        levels = self.config.calibration.levels
        gauge.labels(group_id=state.group_id, series="mean_h1").set(float(band.mean_kwh[0]))
        for k, level in enumerate(levels):
            if round(level * 100) in (10, 90):
                series = f"p{round(level * 100)}_h1"
                gauge.labels(group_id=state.group_id, series=series).set(
                    float(band.quantiles_kwh[0, k])
                )

    @staticmethod
    def _write(sink: Any, table: Any, key: bytes, value: bytes, partition: int) -> None:
        sink.data[key] = value
        sink.key_partition[key] = partition
        table.send_changelog(partition, key, value, value_serializer="raw")

    async def check_lateness(self, owned: Callable[[], frozenset[int] | None]) -> None:
        """Issue and realise what waits on late members, for every group this worker owns.

        ``owned()`` (:func:`~streamer.faust_glue.ownership.settled_partitions`) is asked before
        each group, as its step awaits its sends: while a rebalance runs the store still holds
        groups given to another worker, or half-restored ones, and their steps would issue again
        what their owner issues, from an older state written over the owner's changelog.
        """
        for key in list(self.state.data):
            partitions = owned()
            if partitions is None:
                return
            group_id = bytes(key).decode(errors="replace")
            if group_partition(group_id, self.partitions) not in partitions:
                continue  # the partition step() writes it to, and contributions arrive on
            state = self.load(group_id, self.view.kind_of(group_id))
            members = self.view.members_of(group_id)
            if members:
                state.set_members(members)
            await self.step(state)


def register_group_agents(app: Any, runtime: WorkerRuntime) -> None:
    settings = runtime.settings
    desk = GroupDesk(runtime)

    async def follow_membership() -> None:
        async with following(settings, settings.groups_topic) as consumer:
            async for message in consumer:
                if message.key is None:
                    continue
                runtime.core.membership.apply(message.key.decode(errors="replace"), message.value)
                runtime.metrics.group_membership_meters.set(runtime.core.membership.meters)

    app.task(follow_membership)

    @typed(app.agent(runtime.topics.group_contributions, name="streamer.groups"))
    async def group_contributions(stream: Any) -> None:
        async for value in stream:
            try:
                contribution = Contribution.from_bytes(value)
            except GroupError as exc:
                log.error("group contribution ignored: %s", exc)
                continue
            await desk.apply(contribution)

    @typed(app.timer(LATENESS_CHECK_SECONDS, name="streamer.group_lateness"))
    async def group_lateness() -> None:
        topic = settings.group_contributions_topic
        await desk.check_lateness(lambda: settled_partitions(app, topic))
