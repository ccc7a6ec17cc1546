"""A real Prometheus (the Debian package's binary) for tests: own config, data dir and port.

Missing binaries fail the test with the install command (never a skip). The Debian package's
own service, if the machine runs one, is left alone: this server listens on a free port.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import free_port

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS_DIR = REPO / "grafana" / "dashboards"
PROMETHEUS_DIR = REPO / "compose" / "prometheus"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.rules.yml"))

INSTALL_HINT = (
    "install Prometheus (Debian: apt-get install -y prometheus; ./scripts/bootstrap.sh does it)"
)


def require_tool(name: str) -> str:
    """The path of ``prometheus`` or ``promtool``; fails the test when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not on PATH: {INSTALL_HINT}", pytrace=False)
    return path


def load_yaml(path: Path) -> Any:
    """A YAML file parsed (PyYAML, a dev dependency); fails with the fix when it is missing."""
    try:
        import yaml
    except ModuleNotFoundError:
        pytest.fail(
            "PyYAML is not installed: .venv/bin/pip install pyyaml (or ./scripts/bootstrap.sh)",
            pytrace=False,
        )
    return yaml.safe_load(path.read_text())


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("promtool"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


class PrometheusError(AssertionError):
    """The Prometheus HTTP API answered with an error."""


class PrometheusServer:
    """``prometheus`` on 127.0.0.1:<free port> scraping ``targets`` every ``interval``.

    The config is written as JSON (a YAML subset), so no YAML library is needed.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        targets: Sequence[str],
        rule_files: Sequence[Path] = (),
        job: str = "streamer",
        interval: str = "1s",
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "prometheus.yml"
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(path) for path in rule_files],
            "scrape_configs": [
                {
                    "job_name": job,
                    "metrics_path": "/metrics",
                    "scrape_timeout": interval,
                    "static_configs": [{"targets": list(targets)}],
                }
            ],
        }
        self.config_path.write_text(json.dumps(config, indent=2))
        self.log_path = workdir / "prometheus.log"
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                require_tool("prometheus"),
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_ready(self, timeout_seconds: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited early:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + "/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"prometheus not ready in {timeout_seconds} s:\n{self.log_tail()}")

    def api(self, path: str, **params: str) -> Any:
        """``GET /api/v1/<path>``: the ``data`` of a successful answer."""
        url = f"{self.base_url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:  # 400/422: a bad query, with Prometheus's reason
            body = json.loads(exc.read() or b"{}")
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('error', body)}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query now: the result vector (a scalar becomes one sample)."""
        data = self.api("query", query=expr)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def label_values(self, label: str, match: str) -> list[str]:
        values: list[str] = self.api(f"label/{label}/values", **{"match[]": match})
        return values

    def targets(self) -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = self.api("targets")["activeTargets"]
        return active

    def rule_groups(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self.api("rules")["groups"]
        return groups

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


# --- PromQL, dashboards and rules as text -------------------------------------------------------

# Words of PromQL that are not metric names when they are not followed by "(".
_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or"}
    | {"unless", "offset", "inf", "nan", "atan2"}
)
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![A-Za-z0-9_:.$])[A-Za-z_:][A-Za-z0-9_:]*")
_COMPARISON = re.compile(r"^(?P<quantity>.+?)\s*(?:==|!=|>=|<=|>|<)\s*(?P<threshold>-?[0-9.eE+]+)$")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (functions, keywords and labels left out)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _GROUPING.sub("", text)
    names: set[str] = set()
    for match in _IDENTIFIER.finditer(text):
        token = match.group(0)
        if text[match.end() :].lstrip().startswith("(") or token.lower() in _KEYWORDS:
            continue  # a function or an aggregation, or a keyword
        names.add(token)
    return names


def split_alert(expr: str) -> tuple[str, str]:
    """``"<quantity> <op> <number>"`` as (quantity, threshold); AssertionError otherwise."""
    match = _COMPARISON.match(" ".join(expr.split()))
    if match is None:
        raise AssertionError(f"alert expression is not '<quantity> <op> <number>': {expr!r}")
    return match.group("quantity"), match.group("threshold")


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    expr: str

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel}: {self.expr}"


def load_dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard JSON file in grafana/dashboards, parsed, by file name."""
    files = sorted(DASHBOARDS_DIR.glob("*.json"))
    assert files, f"no dashboards in {DASHBOARDS_DIR}"
    return {path.name: json.loads(path.read_text()) for path in files}


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def panel_queries(dashboards: Mapping[str, dict[str, Any]]) -> list[PanelQuery]:
    queries: list[PanelQuery] = []
    for dashboard in dashboards.values():
        for panel in _panels(dashboard["panels"]):
            for target in panel.get("targets", []):
                queries.append(PanelQuery(dashboard["title"], panel["title"], target["expr"]))
    return queries


def template_variables(dashboards: Mapping[str, dict[str, Any]]) -> dict[str, str]:
    """``name -> query`` of every template variable (the same name means the same query)."""
    variables: dict[str, str] = {}
    for dashboard in dashboards.values():
        for variable in dashboard.get("templating", {}).get("list", []):
            query = variable["query"]
            query = query["query"] if isinstance(query, dict) else query
            assert variables.get(variable["name"], query) == query, variable["name"]
            variables[variable["name"]] = query
    return variables


_LABEL_VALUES = re.compile(r"^label_values\((?P<metric>[^,]+),\s*(?P<label>\w+)\)$")


def parse_label_values(query: str) -> tuple[str, str]:
    """``label_values(metric, label)`` as (metric, label)."""
    match = _LABEL_VALUES.match(query.strip())
    assert match is not None, f"unsupported variable query {query!r}"
    return match.group("metric").strip(), match.group("label")


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Grafana's variables replaced (longest name first, so $__rate_interval before $__range)."""
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    assert "$" not in expr, f"variable left in {expr!r}"
    return expr
