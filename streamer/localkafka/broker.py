"""A local single-node Apache Kafka (KRaft) for development, the demo and the tests.

The broker runs from the official jars, resolved from Maven Central with ``mvn`` using the pom
beside this file, with its log under ``<state_dir>/kafka`` so that a restart keeps the data.
Starting twice is harmless; every failure is one sentence saying what to do.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from streamer.errors import StreamerError
from streamer.settings import Settings

log = logging.getLogger(__name__)

JARS_MARKER = ".complete"


class LocalKafkaError(StreamerError):
    """The local broker cannot be installed, started or stopped; the message says what to do."""


@dataclass(frozen=True, slots=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str
    data_dir: Path
    log_file: Path

    def describe(self) -> str:
        if self.running:
            return (
                f"Kafka is running (pid {self.pid}) on {self.bootstrap}; "
                f"data in {self.data_dir}, log in {self.log_file}"
            )
        return f"Kafka is not running (would listen on {self.bootstrap}; data in {self.data_dir})"


def _split_bootstrap(bootstrap: str) -> tuple[str, int]:
    first = bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if not host or not port.isdigit():
        raise LocalKafkaError(
            f"STREAMER_KAFKA_BOOTSTRAP={bootstrap!r} is not host:port; use e.g. 127.0.0.1:9092"
        )
    return host, int(port)


def port_open(host: str, port: int, timeout_seconds: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_seconds):
            return True
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); check its state where /proc exists.
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            return stat.read_text().split()[2] != "Z"
        except (OSError, IndexError):
            return True
    return True


def override_properties(text: str, overrides: Mapping[str, str]) -> str:
    """``text`` (a .properties file) with each key of ``overrides`` set: replaced or appended."""
    lines = text.splitlines()
    pending = dict(overrides)
    for i, line in enumerate(lines):
        key = line.split("=", 1)[0].strip()
        if not line.lstrip().startswith("#") and "=" in line and key in pending:
            lines[i] = f"{key}={pending.pop(key)}"
    lines.extend(f"{key}={value}" for key, value in pending.items())
    return "\n".join(lines) + "\n"


class LocalKafka:
    """Install, start, stop and inspect the local broker described by ``settings``.

    ``config_overrides`` set broker properties over the template (e.g. a SASL_SSL listener);
    ``scram_credentials`` (``'SCRAM-SHA-256=[name=alice,password=...]'``) are written into the
    metadata log when the storage is formatted. Both are for tests; by default the broker is the
    template's plaintext single node.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        say: Callable[[str], None] | None = None,
        config_overrides: Mapping[str, str] | None = None,
        scram_credentials: Sequence[str] = (),
    ) -> None:
        self.settings = settings
        self.config_overrides = dict(config_overrides or {})
        self.scram_credentials = tuple(scram_credentials)
        self.host, self.port = _split_bootstrap(settings.kafka_bootstrap)
        self.controller_port = settings.kafka_controller_port
        self.home = settings.kafka_dir
        self.libs_dir = settings.kafka_libs_dir or (settings.state_dir / "kafka-libs")
        self.data_dir = self.home / "data"
        self.log_file = self.home / "kafka.log"
        self.pid_file = self.home / "kafka.pid"
        self.config_file = self.home / "server.properties"
        self._say = say or (lambda message: log.info("%s", message))

    # --- install ---------------------------------------------------------------------------
    @staticmethod
    def _require_tool(name: str, how: str) -> str:
        path = shutil.which(name)
        if path is None:
            raise LocalKafkaError(f"{name} was not found on PATH; {how}")
        return path

    def jars_installed(self) -> bool:
        return (self.libs_dir / JARS_MARKER).exists()

    def install(self) -> None:
        """Resolve the broker jars from Maven Central into ``libs_dir`` (once)."""
        if self.jars_installed():
            return
        mvn = self._require_tool(
            "mvn", "install Maven (Debian: sudo apt-get install -y maven) and run this again"
        )
        self._require_tool(
            "java", "install Java 17 (Debian: sudo apt-get install -y openjdk-17-jre-headless)"
        )
        self.libs_dir.mkdir(parents=True, exist_ok=True)
        pom = resources.files("streamer.localkafka").joinpath("pom.xml")
        with resources.as_file(pom) as pom_path:
            self._say(
                f"Resolving the Apache Kafka jars from Maven Central into {self.libs_dir} ..."
            )
            proc = subprocess.run(
                [
                    mvn,
                    "-q",
                    "-B",
                    "-f",
                    str(pom_path),
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={self.libs_dir.resolve()}",
                    "-DincludeScope=runtime",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
            raise LocalKafkaError(
                "mvn could not resolve the Kafka jars (is Maven Central reachable?):\n"
                + "\n".join(tail)
            )
        jar_count = len(list(self.libs_dir.glob("*.jar")))
        (self.libs_dir / JARS_MARKER).write_text(f"{jar_count} jars\n")
        self._say(f"Kafka jars ready ({jar_count} jars).")

    # --- lifecycle -------------------------------------------------------------------------
    def _read_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def status(self) -> BrokerStatus:
        pid = self._read_pid()
        running = pid is not None and port_open(self.host, self.port)
        return BrokerStatus(
            running=running,
            pid=pid,
            bootstrap=f"{self.host}:{self.port}",
            data_dir=self.data_dir,
            log_file=self.log_file,
        )

    def _java(self) -> str:
        return self._require_tool(
            "java", "install Java 17 (Debian: sudo apt-get install -y openjdk-17-jre-headless)"
        )

    def _classpath(self) -> str:
        return str(self.libs_dir.resolve() / "*")

    def _log4j_args(self) -> list[str]:
        log4j = resources.files("streamer.localkafka").joinpath("log4j2.yaml")
        return [f"-Dlog4j2.configurationFile={log4j}"]

    def _write_config(self) -> None:
        template = resources.files("streamer.localkafka").joinpath("server.properties").read_text()
        text = template.format(
            host=self.host,
            port=self.port,
            controller_port=self.controller_port,
            data_dir=self.data_dir.resolve(),
            partitions=self.settings.topic_partitions,
        )
        if self.config_overrides:
            text = override_properties(text, self.config_overrides)
        self.config_file.write_text(text)

    def _format_storage(self) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        cluster_id = "-"
        while cluster_id.startswith("-"):  # as Kafka's Uuid: a leading '-' reads as an option
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        proc = subprocess.run(
            [
                self._java(),
                *self._log4j_args(),
                "-cp",
                self._classpath(),
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(self.config_file),
                "--standalone",
                *[arg for credential in self.scram_credentials for arg in ("-S", credential)],
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise LocalKafkaError(
                f"formatting the Kafka log dir {self.data_dir} failed; remove it and retry:\n"
                + (proc.stdout + proc.stderr)[-2000:]
            )

    def start(self, *, timeout_seconds: float = 90.0) -> BrokerStatus:
        """Start the broker in the background and wait until it accepts connections."""
        current = self.status()
        if current.running:
            self._say(f"Kafka is already running (pid {current.pid}) on {current.bootstrap}.")
            return current
        for port, what in ((self.port, "broker"), (self.controller_port, "controller")):
            if port_open(self.host, port):
                variable = (
                    "STREAMER_KAFKA_BOOTSTRAP"
                    if what == "broker"
                    else "STREAMER_KAFKA_CONTROLLER_PORT"
                )
                raise LocalKafkaError(
                    f"port {port} on {self.host} (Kafka {what}) is in use by another process; "
                    f"stop it or choose another port with {variable}"
                )
        self.install()
        java = self._java()
        self.home.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        self._format_storage()
        heap = f"-Xmx{self.settings.kafka_heap_mb}m"
        command = [
            java,
            heap,
            f"-Xms{min(256, self.settings.kafka_heap_mb)}m",
            "-XX:+UseG1GC",
            "-XX:TieredStopAtLevel=1",
            *self._log4j_args(),
            "-cp",
            self._classpath(),
            "kafka.Kafka",
            str(self.config_file),
        ]
        pid = self._spawn_detached(command)
        self.pid_file.write_text(f"{pid}\n")
        self._say(f"Starting Kafka (pid {pid}) on {self.host}:{self.port} ...")
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                raise LocalKafkaError(
                    f"Kafka exited during start; see {self.log_file}:\n" + self._log_tail()
                )
            if port_open(self.host, self.port):
                self._say(f"Kafka is up on {self.host}:{self.port}.")
                return self.status()
            time.sleep(0.25)
        raise LocalKafkaError(
            f"Kafka did not open {self.host}:{self.port} within {timeout_seconds:.0f} s; "
            f"see {self.log_file}:\n" + self._log_tail()
        )

    def _spawn_detached(self, command: list[str]) -> int:
        """Start ``command`` as a daemon that outlives us (no child to reap); return its pid."""
        script = 'exec "$@" >>"$STREAMER_KAFKA_LOG" 2>&1 </dev/null &\necho $!'
        proc = subprocess.run(
            ["/bin/sh", "-c", script, "sh", *command],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "STREAMER_KAFKA_LOG": str(self.log_file)},
            start_new_session=True,
        )
        if proc.returncode != 0 or not proc.stdout.strip().isdigit():
            raise LocalKafkaError(f"could not start Java: {proc.stderr.strip()}")
        return int(proc.stdout.strip())

    def stop(self, *, timeout_seconds: float = 30.0) -> bool:
        """Stop the broker (SIGTERM, then SIGKILL). Returns whether one was running."""
        pid = self._read_pid()
        if pid is None:
            self._say("Kafka is not running.")
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline and _pid_alive(pid):
            time.sleep(0.2)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        self._say(f"Kafka (pid {pid}) stopped.")
        return True

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
