"""The topic configs streamer creates and repairs, without a broker."""

from __future__ import annotations

from aiokafka.protocol.admin import DescribeConfigsResponse_v0, DescribeConfigsResponse_v1

from streamer.kafka_admin import (
    changelog_configs,
    configs_to_alter,
    described_configs,
    wanted_topics,
)
from tests.support.settings import make_settings


def test_changelogs_are_compacted_with_segments_that_roll() -> None:
    configs = changelog_configs(
        make_settings(changelog_segment_ms=120_000, changelog_segment_bytes=2_097_152)
    )
    assert configs == {
        "cleanup.policy": "compact",
        "segment.ms": "120000",
        "segment.bytes": "2097152",
        "min.cleanable.dirty.ratio": "0.1",
        "min.compaction.lag.ms": "0",
        "delete.retention.ms": "3600000",
    }


def test_the_defaults_roll_a_segment_every_ten_minutes_or_16_mib() -> None:
    configs = changelog_configs(make_settings())
    assert configs["segment.ms"] == "600000"
    assert configs["segment.bytes"] == str(16 * 1024 * 1024)


def test_every_changelog_topic_is_created_with_the_changelog_configs() -> None:
    current = make_settings(app_id="fleet")
    by_name = {topic.name: topic for topic in wanted_topics(current)}
    changelogs = [name for name in by_name if name.endswith("-changelog")]
    assert changelogs == [
        "fleet-meter-state-changelog",
        "fleet-meter-latest-forecast-changelog",
        "fleet-group-state-changelog",
        "fleet-group-latest-forecast-changelog",
    ]
    for name in changelogs:
        assert by_name[name].topic_configs == changelog_configs(current)
        assert by_name[name].num_partitions == current.topic_partitions
    assert by_name[current.readings_topic].topic_configs == {}
    assert by_name[current.control_topic].topic_configs == {"cleanup.policy": "compact"}
    assert by_name[current.groups_topic].topic_configs == {"cleanup.policy": "compact"}
    assert by_name[current.groups_topic].num_partitions == current.topic_partitions


def test_a_topic_already_configured_is_left_alone() -> None:
    wanted = changelog_configs(make_settings())
    values = {**wanted, "retention.ms": "604800000"}
    assert configs_to_alter(wanted, values, set_here=wanted) is None


def test_a_topic_that_does_not_compact_gets_the_whole_config_keeping_its_own_values() -> None:
    wanted = changelog_configs(make_settings())
    # as faust or an older streamer created it: compacted, with the broker's segment defaults
    values = {
        **wanted,
        "segment.ms": "604800000",
        "segment.bytes": "1073741824",
        "min.cleanable.dirty.ratio": "0.5",
    }
    set_here = {"cleanup.policy": "compact", "retention.ms": "86400000"}
    assert configs_to_alter(wanted, values, set_here) == {**wanted, "retention.ms": "86400000"}
    # a value set on the topic that streamer wants otherwise is replaced
    set_here = {"cleanup.policy": "delete"}
    assert configs_to_alter(wanted, {**wanted, "cleanup.policy": "delete"}, set_here) == wanted


def test_describe_configs_answers_are_read_in_both_versions() -> None:
    v0 = DescribeConfigsResponse_v0(
        0,
        [
            (
                0,
                None,
                2,
                "streamer-meter-state-changelog",
                [
                    ("cleanup.policy", "compact", False, False, False),
                    ("segment.ms", "604800000", False, True, False),
                    ("secret", None, False, False, True),
                ],
            ),
            (3, "unknown topic", 2, "gone-changelog", []),
        ],
    )
    assert described_configs(v0) == {
        "streamer-meter-state-changelog": (
            {"cleanup.policy": "compact", "segment.ms": "604800000"},
            {"cleanup.policy": "compact"},
        )
    }
    v1 = DescribeConfigsResponse_v1(
        0,
        [
            (
                0,
                None,
                2,
                "streamer-meter-state-changelog",
                [
                    ("cleanup.policy", "compact", False, 1, False, []),  # set on the topic
                    ("segment.ms", "604800000", False, 5, False, []),  # the broker's default
                ],
            )
        ],
    )
    assert described_configs(v1) == {
        "streamer-meter-state-changelog": (
            {"cleanup.policy": "compact", "segment.ms": "604800000"},
            {"cleanup.policy": "compact"},
        )
    }
