"""Prometheus config and alert rules: promtool accepts them, their unit tests pass, and every
alert compares one recorded quantity with a number (so the e2e test can evaluate it)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from streamer.metrics.names import exported_metric_names
from streamer.metrics.pipeline_metrics import PipelineMetrics
from tests.support.prometheus import (
    PROMETHEUS_DIR,
    RULE_FILES,
    load_yaml,
    metric_names,
    promtool,
    split_alert,
)

CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.test.yml"))
# issue 6: lag growing, DLQ rate, drift, silent meters, CPU fallback when a GPU was asked for
REQUIRED_ALERTS = {
    "StreamerConsumerLagGrowing",
    "StreamerDeadLetterRateHigh",
    "StreamerDataDrift",
    "StreamerConceptDrift",
    "StreamerSilentMeters",
    "StreamerGpuFallbackToCpu",
}


def rules() -> list[dict[str, Any]]:
    return [rule for path in RULE_FILES for g in load_yaml(path)["groups"] for rule in g["rules"]]


def test_promtool_check_rules() -> None:
    assert RULE_FILES
    for path in RULE_FILES:
        result = promtool("check", "rules", str(path))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout


def test_promtool_check_config_of_the_compose_prometheus() -> None:
    result = promtool("check", "config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    # the rule files it names are found, relative to the config, as in the container
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout, result.stdout
    for path in RULE_FILES:
        assert f"Checking {CONFIG.parent}/rules/{path.name}" in result.stdout, result.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    assert RULE_TESTS
    for path in RULE_TESTS:
        result = promtool("test", "rules", path.name, cwd=path.parent)
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_unit_tested() -> None:
    alerts = {rule["alert"] for rule in rules() if "alert" in rule}
    tested = {
        case["alertname"]
        for path in RULE_TESTS
        for test in load_yaml(path)["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")  # a test where it fires, not only where it stays quiet
    }
    assert alerts <= tested, f"alerts never seen firing in a test: {alerts - tested}"


def test_alerts_compare_a_recorded_quantity_with_a_number() -> None:
    all_rules = rules()
    recorded = {rule["record"] for rule in all_rules if "record" in rule}
    alerts = [rule for rule in all_rules if "alert" in rule]
    assert {rule["alert"] for rule in alerts} >= REQUIRED_ALERTS
    for rule in alerts:
        quantity, threshold = split_alert(rule["expr"])
        float(threshold)
        assert metric_names(quantity) <= recorded | {"up"}, rule["alert"]
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert rule.get("for"), f"{rule['alert']}: fires on a single evaluation"


def test_rules_name_only_exported_metrics() -> None:
    exported = exported_metric_names(PipelineMetrics(CollectorRegistry()).registry)
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    for rule in rules():
        names = metric_names(rule["expr"])
        assert names <= exported | recorded | {"up"}, f"{rule}: {names - exported - recorded}"
    for name in recorded:
        assert name.startswith("streamer:") and name.count(":") == 2  # level:metric:operations


def test_the_compose_prometheus_loads_the_shipped_rule_files() -> None:
    config = load_yaml(CONFIG)
    found = sorted(p for pattern in config["rule_files"] for p in CONFIG.parent.glob(pattern))
    assert found == RULE_FILES
