"""compose/: the file validates (a JSON Schema of the Compose keys it uses, and `docker compose
config` where the client has the plugin), Prometheus scrapes exactly its workers, mounts exist,
.env.example lists every variable, and the image holds the worker without PyTorch."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import jsonschema
import pytest

from tests.support.prometheus import PROMETHEUS_DIR, REPO, load_yaml

COMPOSE_DIR = REPO / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"

_DURATION = {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"}
_STRINGS = {"type": "array", "items": {"type": "string"}}
_ENV = {
    "type": "object",
    "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
}
# The part of the Compose Specification (compose-spec.io) this stack uses, strictly: an unknown
# or misspelt key fails, as `docker compose config` would.
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["services"],
    "additionalProperties": False,
    "patternProperties": {"^x-": {}},
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$"},
        "volumes": {
            "type": "object",
            "additionalProperties": {"type": ["object", "null"]},
        },
        "services": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "anyOf": [{"required": ["image"]}, {"required": ["build"]}],
                "properties": {
                    "image": {"type": "string"},
                    "build": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["context"],
                        "properties": {
                            "context": {"type": "string"},
                            "dockerfile": {"type": "string"},
                            "args": _ENV,
                            "target": {"type": "string"},
                        },
                    },
                    "command": {"oneOf": [{"type": "string"}, _STRINGS]},
                    "entrypoint": {"oneOf": [{"type": "string"}, _STRINGS]},
                    "environment": _ENV,
                    "ports": {
                        "type": "array",
                        "items": {"type": "string", "pattern": r"^[0-9]+:[0-9]+(/(tcp|udp))?$"},
                    },
                    "volumes": {
                        "type": "array",
                        "items": {"type": "string", "pattern": r"^[^:]+:/[^:]*(:(ro|rw))?$"},
                    },
                    "depends_on": {
                        "oneOf": [
                            _STRINGS,
                            {
                                "type": "object",
                                "additionalProperties": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["condition"],
                                    "properties": {
                                        "condition": {
                                            "enum": [
                                                "service_started",
                                                "service_healthy",
                                                "service_completed_successfully",
                                            ]
                                        }
                                    },
                                },
                            },
                        ]
                    },
                    "restart": {"enum": ["no", "always", "on-failure", "unless-stopped"]},
                    "profiles": _STRINGS,
                    "healthcheck": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["test"],
                        "properties": {
                            "test": {"oneOf": [{"type": "string"}, _STRINGS]},
                            "interval": _DURATION,
                            "timeout": _DURATION,
                            "retries": {"type": "integer", "minimum": 1},
                            "start_period": _DURATION,
                        },
                    },
                    "deploy": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "resources": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "reservations": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "properties": {
                                            "devices": {
                                                "type": "array",
                                                "items": {
                                                    "type": "object",
                                                    "additionalProperties": False,
                                                    "required": ["capabilities"],
                                                    "properties": {
                                                        "driver": {"type": "string"},
                                                        "count": {
                                                            "oneOf": [
                                                                {"type": "integer"},
                                                                {"const": "all"},
                                                            ]
                                                        },
                                                        "device_ids": _STRINGS,
                                                        "capabilities": _STRINGS,
                                                    },
                                                },
                                            }
                                        },
                                    }
                                },
                            }
                        },
                    },
                },
            },
        },
    },
}


def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE_FILE)
    assert isinstance(data, dict)
    return data


def workers(services: dict[str, Any]) -> dict[str, Any]:
    return {name: s for name, s in services.items() if s.get("command", [None])[0] == "worker"}


def test_compose_file_validates() -> None:
    data = compose()
    jsonschema.validate(data, SCHEMA)
    services = data["services"]
    declared_volumes = set(data.get("volumes") or {})
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert set(depends) <= set(services), f"{name} depends on an unknown service"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (COMPOSE_DIR / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in declared_volumes, f"{name}: volume {source} not declared"
        for port in service.get("ports", []):
            host = port.split(":")[0]
            assert [p for s in services.values() for p in s.get("ports", [])].count(port) == 1
            assert host.isdigit()
    docker = shutil.which("docker")
    if docker is not None:  # validate with Compose itself where the plugin is installed
        plugin = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if plugin.returncode == 0:
            result = subprocess.run(
                [docker, "compose", "--env-file", ".env.example", "config", "--quiet"],
                cwd=COMPOSE_DIR,
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == 0, result.stderr


def test_the_schema_refuses_a_misspelt_key() -> None:
    data = compose()
    data["services"]["kafka"]["enviroment"] = {}
    with pytest.raises(jsonschema.ValidationError, match="enviroment"):
        jsonschema.validate(data, SCHEMA)


def test_the_stack_has_kraft_kafka_two_workers_the_simulator_prometheus_and_grafana() -> None:
    services = compose()["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    always_on = {n: s for n, s in workers(services).items() if "profiles" not in s}
    assert len(always_on) >= 2
    (simulator,) = [s for s in services.values() if s.get("command", [None])[0] == "simulate"]
    assert simulator["environment"]["STREAMER_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    for name, worker in workers(services).items():
        env = worker["environment"]
        assert env["STREAMER_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["STREAMER_WEB_HOST"] == name  # binds and advertises its service name
        assert env["STREAMER_API_KEYS"]  # beyond loopback a worker refuses to start without
        assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_the_gpu_profile_gives_a_worker_the_nvidia_device() -> None:
    services = compose()["services"]
    gpu = [s for s in workers(services).values() if "gpu" in s.get("profiles", [])]
    assert len(gpu) == 1
    (device,) = gpu[0]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert gpu[0]["environment"]["STREAMER_ONNX_PROVIDERS"].startswith("cuda")
    assert "cuda" in gpu[0]["build"]["args"]["ONNXRUNTIME_EXTRAS"]


def test_prometheus_scrapes_exactly_the_worker_services_on_their_web_port() -> None:
    services = compose()["services"]
    prometheus = services["prometheus"]
    mounts = dict(v.removesuffix(":ro").split(":", 1) for v in prometheus["volumes"])
    assert mounts["./prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert mounts["./prometheus/rules"] == "/etc/prometheus/rules"
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "streamer"]
    targets: set[tuple[str, int]] = set()
    for sd in job.get("dns_sd_configs", []):
        assert sd["type"] == "A"
        targets |= {(name, int(sd["port"])) for name in sd["names"]}
    for static in job.get("static_configs", []):
        for target in static["targets"]:
            host, port = target.rsplit(":", 1)
            targets.add((host, int(port)))
    expected = {
        (name, int(worker["environment"]["STREAMER_WEB_PORT"]))
        for name, worker in workers(services).items()
    }
    assert targets == expected
    # the instance label keeps the service name and port
    (relabel,) = [r for r in job.get("relabel_configs", []) if r["target_label"] == "instance"]
    assert {port for _, port in targets} == {int(relabel["replacement"].rsplit(":", 1)[1])}
    for name, worker in workers(services).items():
        assert any(
            p.endswith(f":{worker['environment']['STREAMER_WEB_PORT']}") for p in worker["ports"]
        ), name


def test_env_example_lists_every_variable_with_its_default() -> None:
    text = COMPOSE_FILE.read_text()
    used = dict(re.findall(r"\$\{([A-Z0-9_]+):-([^}]*)\}", text))
    assert not re.findall(r"\$\{([A-Z0-9_]+)\}", text), "a variable without a default"
    example: dict[str, str] = {}
    for line in (COMPOSE_DIR / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            example[key] = value
    for name, default in used.items():
        assert example.get(name) == default, f".env.example: {name}={default}"


def test_the_image_has_the_worker_and_models_without_pytorch() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "torch" not in dockerfile and "[train]" not in dockerfile
    assert re.search(r"^COPY models ", dockerfile, re.M)
    assert re.search(r'^ENTRYPOINT \["streamer"\]', dockerfile, re.M)
    assert "ONNXRUNTIME_EXTRAS" in dockerfile
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".streamer"} <= set(ignored)
    for line in re.findall(r"^COPY (?!--from)(.+)$", dockerfile, re.M):
        for copied in line.split()[:-1]:  # the sources; the last word is the destination
            assert (REPO / copied).exists(), copied
            assert copied not in ignored
