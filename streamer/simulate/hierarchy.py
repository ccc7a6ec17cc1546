"""A simulated network: each meter on one feeder, feeders grouped into substations.

The meters are ordered by a hash of ``(seed, meter index)`` and dealt to the feeders in turn,
so the assignment is a pure function of the seed and the fleet (the same file every time),
looks random along the meter ids, and feeder sizes differ by at most one meter. Feeders go to
substations in order (the first ``F / M`` feeders to the first substation, ...), so substation
sizes differ by at most a feeder's worth.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np

from streamer.groups.membership import GroupRef
from streamer.simulate.errors import SimulationConfigError
from streamer.simulate.hashrng import hash_u64

FEEDER_KIND: Final = "feeder"
SUBSTATION_KIND: Final = "substation"
_STREAM_FEEDER: Final = 8_001


def feeder_hierarchy(
    meter_ids: Sequence[str], seed: int, feeders: int, substations: int
) -> dict[str, tuple[GroupRef, ...]]:
    """``meter id -> (its feeder, its substation)`` for a fleet of ``meter_ids`` (in index
    order, as :class:`~streamer.simulate.fleet.FleetModel` numbers them).

    >>> tree = feeder_hierarchy([f"m-{i}" for i in range(6)], seed=7, feeders=3, substations=1)
    >>> sorted({ref.group_id for refs in tree.values() for ref in refs})
    ['feeder-0', 'feeder-1', 'feeder-2', 'substation-0']
    >>> [ref.kind for ref in tree["m-0"]]
    ['feeder', 'substation']
    """
    count = len(meter_ids)
    if len(set(meter_ids)) != count:
        raise SimulationConfigError("meter ids must be unique to place meters on feeders")
    if not 1 <= feeders <= max(count, 1):
        raise SimulationConfigError(
            f"--feeders {feeders}: use 1..{count} (at least one meter per feeder)"
        )
    if not 1 <= substations <= feeders:
        raise SimulationConfigError(
            f"--substations {substations}: use 1..{feeders} (at least one feeder per substation)"
        )
    if seed < 0:
        raise SimulationConfigError(f"seed={seed}: use a non-negative integer seed")
    order = np.argsort(hash_u64(seed, _STREAM_FEEDER, np.arange(count)), kind="stable")
    feeder_of = np.empty(count, dtype=np.int64)
    feeder_of[order] = np.arange(count) % feeders
    station_of = np.arange(feeders) * substations // feeders
    feeder_refs = [
        GroupRef(f"{FEEDER_KIND}-{f:0{_width(feeders)}d}", FEEDER_KIND) for f in range(feeders)
    ]
    station_refs = [
        GroupRef(f"{SUBSTATION_KIND}-{s:0{_width(substations)}d}", SUBSTATION_KIND)
        for s in range(substations)
    ]
    return {
        meter: (feeder_refs[f], station_refs[int(station_of[f])])
        for meter, f in zip(meter_ids, feeder_of.tolist(), strict=True)
    }


def _width(count: int) -> int:
    return len(str(count - 1))
