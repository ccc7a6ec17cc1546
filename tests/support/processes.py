"""Run streamer CLI processes (workers, the simulator) against the test broker."""

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
from collections.abc import Sequence
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamer.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class StreamerProcess:
    """A ``python -m streamer ...`` child with the given settings in its environment (or
    ``python -m <module>``, a test's wrapper of it, with ``extra_env`` added)."""

    def __init__(
        self,
        settings: Settings,
        args: list[str],
        log_path: Path,
        *,
        module: str = "streamer",
        extra_env: dict[str, str] | None = None,
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
            [sys.executable, "-m", module, *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no final commit."""
        if self.alive:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self, timeout_seconds: float = 30.0) -> int:
        """SIGTERM; a process still there after ``timeout_seconds`` is hung: its stacks go to
        its log first (:meth:`dump_stacks`), then SIGKILL."""
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_seconds)
            except subprocess.TimeoutExpired:
                self.dump_stacks()
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def dump_stacks(self, settle_seconds: float = 2.0) -> None:
        """Have the process write every thread's stack to its log (SIGQUIT: streamer.thread_dump,
        even with its event loop blocked), then its asyncio tasks' (SIGUSR1: faust's, when the
        loop still runs; it may end a process that is not a worker); ``settle_seconds`` each."""
        for signum in (signal.SIGQUIT, signal.SIGUSR1):
            if not self.alive:
                return
            self.proc.send_signal(signum)
            with contextlib.suppress(subprocess.TimeoutExpired):  # a dump does not stop it
                self.proc.wait(timeout=settle_seconds)


class WorkerProcess(StreamerProcess):
    def __init__(
        self,
        settings: Settings,
        log_path: Path,
        *,
        module: str = "streamer",
        extra_env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            settings, ["worker", "-l", "info"], log_path, module=module, extra_env=extra_env
        )

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.web_host}:{self.settings.web_port}"

    def metrics(self) -> dict[str, float]:
        """Samples of /metrics as {'name{label="v",...}': value}."""
        with urllib.request.urlopen(self.base_url + "/metrics", timeout=5) as response:
            text = response.read().decode()
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return samples

    def wait_ready(self, timeout_seconds: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if not self.alive:
                raise AssertionError(f"worker exited early:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + "/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"worker not ready in {timeout_seconds} s:\n{self.log_tail()}")


def get_json(url: str, timeout_seconds: float = 10.0) -> tuple[int, dict[str, object]]:
    """The status and JSON body of a GET, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_seconds) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def wait_all_own_readings(workers: Sequence[WorkerProcess], timeout_seconds: float = 60.0) -> None:
    """Until every worker holds a readings partition (so each owns meters before data flows);
    fails the test when one still holds none after ``timeout_seconds``."""
    deadline = time.monotonic() + timeout_seconds
    owned: list[object] = []
    while time.monotonic() < deadline:
        owned = [get_json(w.base_url + "/ready")[1].get("readings_partitions") for w in workers]
        if all(owned):
            return
        time.sleep(0.5)
    pytest.fail(f"a worker holds no readings partition after {timeout_seconds:.0f} s: {owned}")
