"""Lower the scheduling priority of worker threads that must yield to the event loop.

A worker's event loop is its critical path: it parses and applies every batch, makes every
record and keeps the broker's heartbeats and the HTTP views answered. Its inference threads
spend most of their time in ONNX Runtime, which releases the GIL. Where the worker has fewer
cores than runnable threads (two inference threads beside the event loop on two cores, with
the broker beside them), the kernel shares the cores evenly, and a batch waits for its event
loop while an inference thread runs ahead of what the loop can use. A positive nice value on
the inference threads (Linux schedules each thread apart) gives the loop a core whenever it is
runnable; with cores to spare it changes nothing.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger(__name__)

#: The highest nice value Linux accepts.
MAX_NICE = 19


def lower_thread_priority(nice: int) -> int | None:
    """Add ``nice`` to the calling thread's nice value (at most :data:`MAX_NICE`); the value
    it has now, or None where it could not be changed (not Linux, where the call would change
    the whole process, or refused)."""
    if nice <= 0 or not sys.platform.startswith("linux"):
        return None
    thread_id = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, thread_id)
        target = min(MAX_NICE, current + nice)
        os.setpriority(os.PRIO_PROCESS, thread_id, target)
    except OSError as exc:
        log.warning("could not lower the priority of thread %d: %s", thread_id, exc)
        return None
    return target
