"""The Grafana dashboards: generated, parseable, only exported metrics, provisioned as compose
mounts them, every panel described in docs/operations.md."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streamer.metrics.names import exported_metric_names
from streamer.metrics.pipeline_metrics import PipelineMetrics
from tests.support.prometheus import (
    DASHBOARDS_DIR,
    REPO,
    load_dashboards,
    load_yaml,
    metric_names,
    panel_queries,
    parse_label_values,
    substitute,
    template_variables,
)

GRAFANA = REPO / "grafana"


def builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_dashboards", GRAFANA / "build_dashboards.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def test_committed_dashboards_are_what_the_builder_writes() -> None:
    build = builder()
    expected = {build.file_name(d): build.render(d) for d in build.DASHBOARDS}
    committed = {path.name: path.read_text() for path in DASHBOARDS_DIR.glob("*.json")}
    assert committed == expected, "run: .venv/bin/python grafana/build_dashboards.py"


def test_three_dashboards_pipeline_quality_fleet_with_worker_and_model_variables() -> None:
    dashboards = load_dashboards()
    assert set(dashboards) == {
        "streamer-pipeline.json",
        "streamer-quality.json",
        "streamer-fleet.json",
    }
    uids = [d["uid"] for d in dashboards.values()]
    assert len(set(uids)) == 3
    for dashboard in dashboards.values():
        names = {v["name"] for v in dashboard["templating"]["list"]}
        assert {"instance", "model_version"} <= names, dashboard["title"]
        assert panels(dashboard), dashboard["title"]


def test_every_dashboard_names_only_metrics_the_worker_exports() -> None:
    exported = exported_metric_names(PipelineMetrics(CollectorRegistry()).registry)
    queries = panel_queries(load_dashboards())
    assert len(queries) >= 40
    used: set[str] = set()
    for query in queries:
        names = metric_names(query.expr)
        assert names, f"{query}: selects no metric"
        assert names <= exported, f"{query}: unknown metrics {names - exported}"
        used |= names
    for variable_query in template_variables(load_dashboards()).values():
        metric, _ = parse_label_values(variable_query)
        assert metric in exported
    # what issue 6 asks to watch is on a dashboard
    for name in (
        "streamer_consumer_lag_messages",
        "streamer_end_to_end_latency_seconds_bucket",
        "streamer_inference_duration_seconds_bucket",
        "streamer_batch_size_messages_bucket",
        "streamer_dead_letters_total",
        "streamer_window_updates_total",
        "streamer_data_drift_psi",
        "streamer_data_drift_ks",
        "streamer_concept_drift_events_total",
        "streamer_fleet_mae_kwh",
        "streamer_fleet_smape_percent",
        "streamer_fleet_pinball_kwh",
        "streamer_model_info",
        "streamer_fleet_actual_energy_kwh_total",
        "streamer_fleet_forecast_energy_kwh_total",
        "streamer_active_meters",
        "streamer_silent_meters",
        "streamer_flatlined_meters",
    ):
        assert name in used, f"{name} is on no dashboard"


def test_every_query_follows_the_worker_variable() -> None:
    for query in panel_queries(load_dashboards()):
        selectors = re.findall(r"\b(?:streamer|process)_\w+\{([^}]*)\}", query.expr)
        bare = re.findall(r"\b(?:streamer|process)_\w+(?![\w{])", query.expr)
        assert selectors and not bare, f"{query}: a selector without matchers"
        for matchers in selectors:
            assert 'instance=~"$instance"' in matchers, f"{query}: ignores $instance"


def test_variables_substitute_as_grafana_would() -> None:
    expr = 'sum(rate(x{instance=~"$instance"}[$__rate_interval])) by ($__range)'
    values = {"instance": "(a|b)", "__rate_interval": "30s", "__range": "5m"}
    assert substitute(expr, values) == 'sum(rate(x{instance=~"(a|b)"}[30s])) by (5m)'
    with pytest.raises(AssertionError):
        substitute('x{a=~"$unknown"}', values)


def test_panels_have_descriptions_queries_and_do_not_overlap() -> None:
    for dashboard in load_dashboards().values():
        cells: set[tuple[int, int]] = set()
        for panel in dashboard["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24
            area = {
                (x, y)
                for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not area & cells, f"{dashboard['title']} / {panel['title']} overlaps"
            cells |= area
            if panel["type"] == "row":
                continue
            assert len(panel["description"]) > 40, panel["title"]
            assert panel["targets"] and all(t["expr"] for t in panel["targets"])
            assert panel["datasource"]["uid"] == "prometheus"


def test_red_thresholds_are_explained() -> None:
    """A panel that can turn red says what to do then (docs/operations.md repeats it)."""
    for dashboard in load_dashboards().values():
        for panel in panels(dashboard):
            steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
            if any(step["color"] == "red" for step in steps):
                assert "Red" in panel["description"], f"{panel['title']}: when red?"


def test_provisioning_points_at_the_dashboards_and_the_compose_prometheus() -> None:
    compose = load_yaml(REPO / "compose" / "docker-compose.yml")
    grafana = compose["services"]["grafana"]
    mounts = dict(
        (source, target.removesuffix(":ro"))
        for source, target in (v.split(":", 1) for v in grafana["volumes"])
    )
    assert (Path("compose") / mounts["../grafana/dashboards"]).parts  # mounted somewhere
    providers = load_yaml(GRAFANA / "provisioning" / "dashboards" / "streamer.yml")["providers"]
    assert [p["options"]["path"] for p in providers] == [mounts["../grafana/dashboards"]]
    assert mounts["../grafana/provisioning"] == "/etc/grafana/provisioning"
    sources = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    (source,) = sources["datasources"]
    assert source["uid"] == "prometheus" and source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert "9090:9090" in compose["services"]["prometheus"]["ports"]


def test_operations_page_describes_every_panel() -> None:
    page = (REPO / "docs" / "operations.md").read_text()
    match = re.search(r"^## Dashboards\n(.*?)(?=^## |\Z)", page, re.S | re.M)
    assert match, "docs/operations.md has no '## Dashboards' section"
    section = match.group(1)
    for dashboard in load_dashboards().values():
        assert dashboard["title"] in section
        for panel in panels(dashboard):
            assert f"*{panel['title']}*" in section, (
                f"docs/operations.md misses panel {panel['title']!r}; paste the output of "
                ".venv/bin/python grafana/build_dashboards.py --markdown"
            )
