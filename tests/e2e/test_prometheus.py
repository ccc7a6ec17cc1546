"""A real Prometheus scrapes a real worker fed by the simulator: every dashboard panel and every
alert rule shows data (issue 6).

Alert rules compare one recorded quantity with a number (``<quantity> <op> <number>``,
compose/prometheus/rules/streamer.rules.yml); the test evaluates the quantity, so a rule counts
as working whether or not it fires. The quantities are recording rules, so Prometheus itself must
have evaluated them from the worker's series. Dashboard variables are replaced as Grafana would:
``$instance`` by the workers found with the variable's own query, ``$model_version`` likewise,
``$horizon`` by one slot, ``$__rate_interval`` by 30 s (the scrape interval here is 1 s).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from streamer.groups.membership import GroupRef
from streamer.groups.membership_topic import publish_membership
from streamer.kafka_admin import ensure_topics
from streamer.metrics.names import exported_metric_names
from streamer.metrics.pipeline_metrics import PipelineMetrics
from streamer.rollout.assignment import ModelAssignment
from streamer.rollout.control_topic import publish
from streamer.timeutil import now_ms
from tests.support.kafka import TestKafka
from tests.support.processes import StreamerProcess, WorkerProcess, free_port
from tests.support.prometheus import (
    RULE_FILES,
    PanelQuery,
    PrometheusServer,
    load_dashboards,
    metric_names,
    panel_queries,
    parse_label_values,
    require_tool,
    split_alert,
    substitute,
    template_variables,
)

pytestmark = pytest.mark.e2e

METERS = 40
# 3 days of history in about 3 s: meters pass the LSTM's 84 slots (data drift, live accuracy at
# every horizon) and the shadow's one day; after the backfill the simulator follows the clock.
SIMULATE = ["--meters", str(METERS), "--backfill-days", "3", "--speedup", "100000", "--seed", "3"]
SHADOW = "seasonal_naive_day"
WAIT_SECONDS = 150.0


def test_every_panel_and_alert_quantity_has_data_from_a_real_prometheus(
    kafka: TestKafka, tmp_path: Path
) -> None:
    require_tool("prometheus")
    assert RULE_FILES, "no compose/prometheus/rules/*.rules.yml"
    settings = kafka.settings(
        web_port=free_port(),
        drift_report_interval_seconds=3.0,
        silence_check_interval_seconds=2.0,
        watched_groups="f-0",
        group_lateness_seconds=5,
    )
    asyncio.run(ensure_topics(settings))
    # the simulated meters in two feeders and a substation, f-0 watched: the group panels
    asyncio.run(
        publish_membership(
            settings,
            {
                f"m-{i:06d}": (GroupRef(f"f-{i % 2}", "feeder"), GroupRef("s-0", "substation"))
                for i in range(METERS)
            },
        )
    )
    # a shadow model, so that the shadow-against-live panels have something to compare
    shadow = ModelAssignment(settings.forecaster, SHADOW, now_ms(), "e2e: shadow for dashboards")
    asyncio.run(publish(settings, shadow))

    dashboards = load_dashboards()
    exported = exported_metric_names(PipelineMetrics(CollectorRegistry()).registry)
    queries = panel_queries(dashboards)
    for query in queries:
        unknown = metric_names(query.expr) - exported
        assert not unknown, f"{query} names metrics the worker does not export: {unknown}"

    target = f"{settings.web_host}:{settings.web_port}"
    prometheus = PrometheusServer(tmp_path / "prometheus", targets=[target], rule_files=RULE_FILES)
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    simulator: StreamerProcess | None = None
    try:
        prometheus.wait_ready()
        worker.wait_ready()
        simulator = StreamerProcess(settings, ["simulate", *SIMULATE], tmp_path / "simulate.log")

        rules = [rule for group in prometheus.rule_groups() for rule in group["rules"]]
        recorded = {rule["name"] for rule in rules if rule["type"] == "recording"}
        alerts = [rule for rule in rules if rule["type"] == "alerting"]
        assert len(alerts) >= 6 and recorded, "alert rules not loaded"
        expressions: dict[str, str] = {}  # what -> PromQL
        for alert in alerts:
            quantity, _ = split_alert(alert["query"])
            names = metric_names(quantity)
            assert names <= recorded | {"up"}, f"{alert['name']}: not a recorded quantity"
            expressions[f"alert {alert['name']}: {quantity}"] = quantity
        for name in sorted(recorded):
            expressions[f"recording rule {name}"] = name

        deadline = time.monotonic() + WAIT_SECONDS
        empty: list[str] = []
        while True:
            assert worker.alive, f"worker died:\n{worker.log_tail()}"
            values = _variable_values(prometheus, template_variables(dashboards))
            if values is not None:
                expressions.update(_panel_expressions(queries, values))
            empty = [what for what, expr in expressions.items() if not prometheus.query(expr)]
            if values is not None and not empty:
                break
            if time.monotonic() > deadline:
                break
            time.sleep(3.0)

        assert values is not None, "a dashboard variable found no values"
        assert len(expressions) == len(alerts) + len(recorded) + len(queries)
        assert not empty, (
            f"{len(empty)} of {len(expressions)} expressions returned no data:\n"
            + "\n".join(empty)
            + f"\n--- worker log:\n{worker.log_tail()}"
        )
        targets = prometheus.targets()
        assert [(t["labels"]["instance"], t["health"]) for t in targets] == [(target, "up")]
        # the quantities are real: the worker consumed what the simulator sent
        consumed = prometheus.query("sum(streamer_readings_consumed_total)")
        assert float(consumed[0]["value"][1]) >= METERS * 48
        fallback = prometheus.query("max(streamer:model_cpu_fallback:max)")
        assert float(fallback[0]["value"][1]) == 0.0  # CPU was asked for here, CPU runs
    finally:
        if simulator is not None:
            simulator.stop()
        worker.stop()
        prometheus.stop()


def _variable_values(
    prometheus: PrometheusServer, variables: dict[str, str]
) -> dict[str, str] | None:
    """Each variable's value as Grafana's "All" would give it (None while one has no value)."""
    values = {"__rate_interval": "30s", "__interval": "5s", "__range": "5m"}
    for name, query in variables.items():
        metric, label = parse_label_values(query)
        found = prometheus.label_values(label, metric)
        if not found:
            return None
        # single-value variables (the horizon) take one slot ahead, multi-value ones all values
        values[name] = "1" if name == "horizon" and "1" in found else "(" + "|".join(found) + ")"
    return values


def _panel_expressions(queries: list[PanelQuery], values: dict[str, str]) -> dict[str, str]:
    return {str(query): substitute(query.expr, values) for query in queries}
