"""What every phase of a benchmark run shares: the broker, base settings, paths, options."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from pipelinebench.kafka_io import OffsetWatcher
from pipelinebench.worker import (
    Metrics,
    WorkerProcess,
    proc_cpu_seconds,
    proc_runqueue_wait_seconds,
)

log = logging.getLogger("pipeline_bench")


@dataclass(slots=True)
class RunContext:
    root: Path  # repository root (the workers run there)
    run_dir: Path  # worker logs, profiles
    run_id: str
    bootstrap: str
    base_settings: dict[str, object]
    watcher: OffsetWatcher
    broker_pid: int | None
    poll_seconds: float
    timeout_seconds: float
    kafka_data_dir: Path
    worker_env: dict[str, str]

    def relative(self, path: Path) -> str:
        """``path`` relative to the repository root where it lies under it (for reports)."""
        return str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path)

    def phase_name(self, phase: str) -> str:
        return f"bench-{self.run_id}-{phase}"

    def topic_bytes(self, prefix: str) -> dict[str, int]:
        """Bytes in the broker's log segments of each topic whose name starts with ``prefix``."""
        sizes: dict[str, int] = {}
        for part in self.kafka_data_dir.glob(f"{prefix}*-*"):
            topic = part.name.rsplit("-", 1)[0]
            size = sum(f.stat().st_size for f in part.glob("*.log"))
            sizes[topic.removeprefix(prefix)] = sizes.get(topic.removeprefix(prefix), 0) + size
        return dict(sorted(sizes.items()))

    def broker_cpu(self) -> float:
        return proc_cpu_seconds(self.broker_pid) if self.broker_pid else float("nan")


@dataclass(frozen=True, slots=True)
class Sample:
    """A moment of a worker: wall clock, its metrics, its CPU time and the broker's."""

    at: float
    metrics: Metrics
    worker_cpu: float
    broker_cpu: float
    worker_cpu_wait: float  # runnable, waiting for a CPU (schedstat)

    @classmethod
    def take(cls, ctx: RunContext, worker: WorkerProcess, metrics: Metrics | None = None) -> Sample:
        got = metrics if metrics is not None else worker.metrics()
        return cls(
            time.perf_counter(),
            got,
            proc_cpu_seconds(worker.pid),
            ctx.broker_cpu(),
            proc_runqueue_wait_seconds(worker.pid),
        )


def delta(after: Sample, before: Sample, name: str, **labels: str) -> float:
    return after.metrics.total(name, **labels) - before.metrics.total(name, **labels)


def cpu_shares(after: Sample, before: Sample, seconds: float) -> dict[str, float]:
    """CPU used per wall second (1.0 = one core busy) by the worker and by the broker."""
    if seconds <= 0:
        return {"worker_cores": float("nan"), "broker_cores": float("nan")}
    return {
        "worker_cpu_seconds": round(after.worker_cpu - before.worker_cpu, 3),
        "broker_cpu_seconds": round(after.broker_cpu - before.broker_cpu, 3),
        "worker_cores": round((after.worker_cpu - before.worker_cpu) / seconds, 3),
        "broker_cores": round((after.broker_cpu - before.broker_cpu) / seconds, 3),
        # runnable but not running: the machine's other work held the CPUs
        "worker_waiting_for_cpu_cores": round(
            (after.worker_cpu_wait - before.worker_cpu_wait) / seconds, 3
        ),
    }
