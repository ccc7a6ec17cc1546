"""Ceiling B: faust's own consume rate, a bare faust app draining the ingest backlog.

The app (:mod:`pipelinebench.faust_drain`) has the worker's faust settings and takes the
events in micro-batches of up to ``STREAMER_BATCH_MAX_EVENTS`` with faust's per-message path
(``Stream.take_events``, with a window of the bench's own: the worker has none), acking them
without doing anything else. What the worker
loses against this figure is streamer's own code; what this figure loses against the raw
aiokafka ceiling is faust (its consumer, fetcher, channel and acks).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from pipelinebench.context import RunContext, log
from pipelinebench.profiling import FAUST_GROUPS, PySpy, py_spy_path, summarise
from pipelinebench.worker import WorkerProcess, phase_settings, proc_cpu_seconds

DRAIN_SCRIPT = Path(__file__).resolve().with_name("faust_drain.py")
MODE = "take_events"  # pipelinebench.faust_drain.MODE (that module imports faust: not here)
#: pipelinebench.faust_drain.WITHIN_SECONDS: take_events' window, the bench's own.
WITHIN_SECONDS = 0.25


def _read_status(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


async def faust_drain_run(
    ctx: RunContext,
    *,
    topic: str,
    total: int,
    worker_overrides: dict[str, object],
    profile_out: Path | None = None,
    within_seconds: float = WITHIN_SECONDS,
) -> dict[str, Any]:
    """One bare faust app (fresh consumer group) drains ``total`` readings of ``topic``.

    With ``profile_out``, py-spy records the app from its first event to its last.
    """
    name = ctx.phase_name("faust")
    settings = phase_settings(ctx.base_settings, name, readings_topic=topic, **worker_overrides)
    status_file = ctx.run_dir / f"{name}.status.json"
    status_file.unlink(missing_ok=True)
    command = [
        str(DRAIN_SCRIPT),
        "--expected",
        str(total),
        "--status-file",
        str(status_file),
        "--within-seconds",
        str(within_seconds),
    ]
    app = WorkerProcess(settings, ctx.run_dir / f"{name}.log", ctx.root, command=command)
    deadline = time.monotonic() + ctx.timeout_seconds
    cpu_first = cpu_done = float("nan")
    broker_first = broker_done = float("nan")
    status: dict[str, Any] | None = None
    spy_exe = py_spy_path() if profile_out is not None else None
    spy: PySpy | None = None
    try:
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"faust drain did not finish:\n{app.log_tail()}")
            if not app.alive:
                raise RuntimeError(f"faust drain app exited:\n{app.log_tail()}")
            await asyncio.sleep(ctx.poll_seconds / 2)
            status = _read_status(status_file)
            if status is None:
                continue
            if cpu_first != cpu_first:  # NaN: first sight of the first event
                cpu_first, broker_first = proc_cpu_seconds(app.pid), ctx.broker_cpu()
                if spy_exe is not None and profile_out is not None:
                    spy = PySpy(spy_exe, app.pid, profile_out)
            if status.get("done_at") is not None:
                cpu_done, broker_done = proc_cpu_seconds(app.pid), ctx.broker_cpu()
                if spy is not None:
                    spy.stop()
                break
        while await ctx.watcher.committed_lag(settings.app_id, topic) > 0:  # noqa: ASYNC110
            await asyncio.sleep(ctx.poll_seconds)
        lag0_at = time.time()
    finally:
        app.stop()
    assert status is not None
    first, done = float(status["first_event_at"]), float(status["done_at"])
    drained_s = done - first
    lag_s = lag0_at - first
    result: dict[str, Any] = {
        "mode": MODE,
        "within_seconds": within_seconds,
        "readings": total,
        "batches": status["batches"],
        "mean_batch_events": round(status["events"] / max(1, status["batches"]), 1),
        "first_event_to_last_seconds": round(drained_s, 3),
        "first_event_to_lag0_seconds": round(lag_s, 3),
        "per_s_drained": round(total / drained_s, 1) if drained_s > 0 else None,
        "per_s_to_lag0": round(total / lag_s, 1) if lag_s > 0 else None,
        "app_cores": round((cpu_done - cpu_first) / drained_s, 3) if drained_s > 0 else None,
        "broker_cores": round((broker_done - broker_first) / drained_s, 3)
        if drained_s > 0
        else None,
        "note": "first event and last event timed inside the app; lag 0 polled from the broker "
        "(faust commits every broker_commit_interval = 1 s); CPU sampled at the poll that saw "
        "each status",
    }
    if spy is not None and profile_out is not None and await asyncio.to_thread(profile_out.exists):
        summary = await asyncio.to_thread(summarise, profile_out, ctx.root, 25, FAUST_GROUPS)
        result["profile"] = {"raw_file": ctx.relative(profile_out), **summary}
        result["profiled"] = "py-spy attached at the first event, so the start is missed"
    log.info(
        "ceiling B (faust, %s): %s readings/s drained, %s/s to lag 0",
        MODE,
        result["per_s_drained"],
        result["per_s_to_lag0"],
    )
    return result
