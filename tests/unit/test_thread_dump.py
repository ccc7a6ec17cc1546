"""``kill -QUIT``: a streamer process writes every thread's stack to stderr and goes on, even with
its main thread blocked (as a worker whose event loop is stuck would be)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

CHILD = """
import threading, time
from streamer.thread_dump import install_thread_dump
assert install_thread_dump()
threading.Thread(target=time.sleep, args=(60,), name="helper", daemon=True).start()
print("ready", flush=True)
time.sleep(60)  # the main thread blocked, as a hung event loop would be
"""


def test_sigquit_dumps_every_thread_and_the_process_goes_on() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGQUIT)
        time.sleep(1.0)
        assert child.poll() is None, "SIGQUIT stopped the process; it must only dump"
    finally:
        child.kill()
        _, stderr = child.communicate(timeout=30)
    assert stderr.lower().count("thread 0x") >= 2, stderr  # the main thread and the helper
    assert 'File "<string>", line 7' in stderr, stderr  # where the main thread is blocked
