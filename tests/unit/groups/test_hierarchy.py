"""The simulated network: meters on feeders, feeders in substations."""

from __future__ import annotations

import doctest
from collections import Counter
from pathlib import Path

import pytest

from streamer.cli.simulate import _write_groups
from streamer.groups.membership import members_of, read_membership_csv
from streamer.simulate import hierarchy as hierarchy_module
from streamer.simulate.errors import SimulationConfigError
from streamer.simulate.fleet import FleetModel
from streamer.simulate.hierarchy import feeder_hierarchy

IDS = [f"m-{i:06d}" for i in range(2000)]


def test_every_meter_is_on_one_feeder_in_one_substation() -> None:
    tree = feeder_hierarchy(IDS, seed=7, feeders=20, substations=4)
    assert list(tree) == IDS
    for refs in tree.values():
        assert sorted(ref.kind for ref in refs) == ["feeder", "substation"]
    feeders = Counter(refs[0].group_id for refs in tree.values())
    stations = Counter(refs[1].group_id for refs in tree.values())
    assert sorted(feeders) == [f"feeder-{f:02d}" for f in range(20)]
    assert sorted(stations) == [f"substation-{s}" for s in range(4)]
    assert set(feeders.values()) == {100} and set(stations.values()) == {500}
    # a feeder lies in one substation, the feeders in order
    station_of = {refs[0].group_id: refs[1].group_id for refs in tree.values()}
    assert station_of["feeder-00"] == station_of["feeder-04"] == "substation-0"
    assert station_of["feeder-05"] == "substation-1" and station_of["feeder-19"] == "substation-3"
    # meters are spread over the feeders, not in runs of the id order
    assert len({tree[m][0] for m in IDS[:20]}) > 10


@pytest.mark.parametrize(("meters", "feeders", "substations"), [(61, 3, 1), (1001, 7, 3)])
def test_sizes_are_balanced(meters: int, feeders: int, substations: int) -> None:
    tree = feeder_hierarchy(IDS[:meters], seed=1, feeders=feeders, substations=substations)
    sizes = Counter(refs[0].group_id for refs in tree.values())
    assert len(sizes) == feeders and max(sizes.values()) - min(sizes.values()) <= 1
    stations = Counter(refs[1].group_id for refs in tree.values())
    assert len(stations) == substations
    per_station = -(-feeders // substations)
    assert max(stations.values()) - min(stations.values()) <= per_station * (meters // feeders + 1)


def test_the_assignment_is_a_pure_function_of_the_seed() -> None:
    first = feeder_hierarchy(IDS, seed=7, feeders=20, substations=4)
    assert feeder_hierarchy(IDS, seed=7, feeders=20, substations=4) == first
    other = feeder_hierarchy(IDS, seed=8, feeders=20, substations=4)
    assert sum(first[m] != other[m] for m in IDS) > 1000


def test_bad_counts_are_refused_with_the_flag_to_fix() -> None:
    with pytest.raises(SimulationConfigError, match="--feeders"):
        feeder_hierarchy(IDS[:5], seed=1, feeders=6, substations=1)
    with pytest.raises(SimulationConfigError, match="--feeders"):
        feeder_hierarchy(IDS[:5], seed=1, feeders=0, substations=1)
    with pytest.raises(SimulationConfigError, match="--substations"):
        feeder_hierarchy(IDS[:5], seed=1, feeders=2, substations=3)
    with pytest.raises(SimulationConfigError, match="unique"):
        feeder_hierarchy(["a", "a"], seed=1, feeders=1, substations=1)


def test_groups_out_writes_the_fleets_network(tmp_path: Path) -> None:
    out = tmp_path / "net" / "groups.csv"
    _write_groups(out, 60, 7, "m-", 3, 1)
    membership = read_membership_csv(out)
    assert sorted(membership) == FleetModel(60, 7).meter_ids.tolist()
    groups = members_of(membership)
    assert sorted(len(m) for ref, m in groups.items() if ref.kind == "feeder") == [20, 20, 20]
    assert [len(m) for ref, m in groups.items() if ref.kind == "substation"] == [60]
    assert membership == feeder_hierarchy(sorted(membership), 7, 3, 1)


def test_docstring_examples_run() -> None:
    result = doctest.testmod(hierarchy_module)
    assert result.attempted >= 2 and result.failed == 0
