"""A real ``python -m streamer worker`` process, its settings, its /metrics and its CPU time."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from streamer.settings import Settings, load_settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def phase_settings(base: Mapping[str, object], name: str, **overrides: object) -> Settings:
    """Settings of one phase: its own app id (consumer group), topics and state dir."""
    values: dict[str, object] = dict(base)
    values["app_id"] = name
    values["state_dir"] = Path(str(base["state_dir"])) / name
    for field in Settings.model_fields:
        if field.endswith("_topic"):
            values[field] = f"{name}-{field.removesuffix('_topic').replace('_', '-')}"
    values["web_port"] = free_port()
    values.update(overrides)
    return load_settings(**values)


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its threads (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Metrics:
    """One scrape of /metrics: ``{(name, ((label, value), ...)): value}``."""

    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]

    def total(self, name: str, **labels: str) -> float:
        """Sum of the samples called ``name`` whose labels include ``labels``."""
        want = set(labels.items())
        return sum(
            value
            for (sample, sample_labels), value in self.samples.items()
            if sample == name and want <= set(sample_labels)
        )


WORKER_COMMAND = ("-m", "streamer", "worker", "-l", "info")


class WorkerProcess:
    """A worker child process with ``settings`` in its environment, logging to ``log_path``.

    ``command`` (the arguments after the Python executable) runs another faust app instead of
    ``streamer worker``, e.g. the bare drain app of :mod:`pipelinebench.faust_drain`.
    """

    def __init__(
        self,
        settings: Settings,
        log_path: Path,
        cwd: Path,
        extra_env: Mapping[str, str] | None = None,
        command: Sequence[str] = WORKER_COMMAND,
    ) -> None:
        self.settings = settings
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMER_")}
        env.update(settings.to_env())
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra_env or {})
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, *command],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            cwd=cwd,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.web_host}:{self.settings.web_port}"

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def metrics(self) -> Metrics:
        with urllib.request.urlopen(self.base_url + "/metrics", timeout=10) as response:
            text = response.read().decode()
        samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return Metrics(samples)

    def try_metrics(self) -> Metrics | None:
        try:
            return self.metrics()
        except OSError:
            return None

    def readiness(self) -> dict[str, object] | None:
        """The body of ``GET /ready`` (``readings_partitions``, ``ready`` ...), None if down."""
        try:
            with urllib.request.urlopen(self.base_url + "/ready", timeout=5) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:  # 503 while not ready: the body still says why
            body = exc.read()
        except OSError:
            return None
        try:
            data: dict[str, object] = json.loads(body)
        except ValueError:
            return None
        return data

    def wait_ready(self, timeout_seconds: float) -> float:
        """Wait until /ready answers 200; returns the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_seconds:
            if not self.alive:
                raise RuntimeError(f"worker exited early:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + "/ready", timeout=2) as response:
                    if response.status == 200:
                        return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready in {timeout_seconds:.0f} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no leaving the consumer group, no last commit."""
        if self.alive:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self._log.close()

    def stop(self, timeout_seconds: float = 30.0) -> None:
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_seconds)
            except subprocess.TimeoutExpired:  # hung: its threads' stacks to its log first
                self.proc.send_signal(signal.SIGQUIT)  # (streamer.thread_dump)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=2.0)
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def parse_vm_rss(status_text: str) -> int:
    """Resident bytes from the text of ``/proc/<pid>/status`` (its ``VmRSS:  123 kB`` line)."""
    for line in status_text.splitlines():
        if line.startswith("VmRSS:"):
            value, unit = line.split()[1:3]
            if unit.lower() != "kb":
                raise ValueError(f"unexpected VmRSS unit {unit!r}")
            return int(value) * 1024
    raise ValueError("no VmRSS line (is the process a zombie?)")


def vm_rss_bytes(pid: int) -> int:
    """Resident set size of a live process, from Linux /proc."""
    return parse_vm_rss(Path(f"/proc/{pid}/status").read_text())


def proc_runqueue_wait_seconds(pid: int) -> float:
    """Seconds the process's threads were runnable but waiting for a CPU (Linux schedstat).

    On a machine shared with other work this tells a process that waits for the CPU (the
    machine is busy) from one that sleeps (it waits for I/O, timers, other processes).
    """
    total = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return float("nan")
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # a thread that ended meanwhile
    return total / 1e9
