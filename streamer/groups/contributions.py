"""The records that carry a batch's member forecasts and readings to their groups' owners.

After each batch, a worker sends one record per group touched (key: the group id, partition: the
group's home partition, as a meter's), holding its members' forecasts (their expected values,
:func:`streamer.groups.expected.expected_kwh` of the published quantiles) and readings::

    {"g": "feeder-07", "k": "feeder",
     "f": [["m-000042", 997256, [0.41, 0.40, ...]]],   # meter, origin slot, expected kWh
     "a": [["m-000042", 997256, 0.412]]}                # meter, slot, kWh

Slots are slot indices (``slot_end_ms // resolution_ms``). A record delivered twice changes
nothing on the group side (a member's newest forecast and reading replace the older ones).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import orjson

from streamer.contract.forecast_record import ForecastRecord
from streamer.contract.placement import home_partition
from streamer.groups.errors import MembershipError
from streamer.groups.expected import expected_kwh
from streamer.groups.membership_view import MembershipView

#: Expected values are sent to 0.1 Wh.
DECIMALS = 4


@dataclass(slots=True)
class Contribution:
    group_id: str
    kind: str
    forecasts: list[tuple[str, int, list[float]]] = field(default_factory=list)
    actuals: list[tuple[str, int, float]] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {"g": self.group_id, "k": self.kind, "f": self.forecasts, "a": self.actuals}
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> Contribution:
        try:
            body = orjson.loads(raw)
            return cls(
                str(body["g"]),
                str(body["k"]),
                [(str(m), int(o), [float(v) for v in values]) for m, o, values in body["f"]],
                [(str(m), int(s), float(k)) for m, s, k in body["a"]],
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise MembershipError(f"unreadable group contribution: {exc}") from None


def contributions_of(
    forecasts: Iterable[ForecastRecord],
    actuals: Iterable[tuple[str, int, float]],
    view: MembershipView,
    resolution_ms: int,
) -> dict[str, Contribution]:
    """group id -> what this batch contributes to it (groups of no member left out)."""
    out: dict[str, Contribution] = {}

    def contribution(group_id: str, kind: str) -> Contribution:
        found = out.get(group_id)
        if found is None:
            found = out[group_id] = Contribution(group_id, kind)
        return found

    grouped = [(f, g) for f in forecasts if (g := view.groups_of(f.meter_id))]
    # expected values of the batch's forecasts in one pass per set of quantile levels
    by_levels: dict[tuple[float, ...], list[int]] = {}
    for k, (forecast, _) in enumerate(grouped):
        by_levels.setdefault(tuple(forecast.quantile_levels), []).append(k)
    rows: list[list[float]] = [[] for _ in grouped]
    for levels, members in by_levels.items():
        stacked = np.stack([grouped[k][0].quantiles_kwh for k in members])
        expected = expected_kwh(stacked, levels)
        rounded = np.round(np.where(np.isfinite(expected), expected, 0.0), DECIMALS)
        for k, values in zip(members, rounded.tolist(), strict=True):
            rows[k] = values
    for (forecast, groups), values in zip(grouped, rows, strict=True):
        origin = forecast.origin_ms // resolution_ms
        for ref in groups:
            contribution(ref.group_id, ref.kind).forecasts.append(
                (forecast.meter_id, origin, values)
            )
    for meter_id, slot, kwh in actuals:
        for ref in view.groups_of(meter_id):
            contribution(ref.group_id, ref.kind).actuals.append((meter_id, slot, kwh))
    return out


def group_partition(group_id: str, partitions: int) -> int:
    """The partition a group's contributions, state and forecasts live on."""
    return home_partition(group_id.encode(), partitions)
