"""``kill -QUIT <pid>``: the stack of every thread of a streamer process, written to its stderr
(the worker's log), and the process goes on, as a JVM's thread dump does.

For a worker that looks stuck, whatever it is stuck in: the interpreter writes the dump from its
C signal handler (:mod:`faulthandler`), so it comes even when the event loop no longer runs (faust's
own ``SIGUSR1`` dump needs the loop). The tests send it to a worker that does not stop on SIGTERM
before they kill it, so that its log says where it hung.
"""

from __future__ import annotations

import faulthandler
import io
import logging
import signal

log = logging.getLogger(__name__)


def install_thread_dump() -> bool:
    """Dump every thread's stack to stderr on SIGQUIT; whether it could be installed (not where
    there is no SIGQUIT, or stderr is not a file)."""
    quit_signal = getattr(signal, "SIGQUIT", None)
    if quit_signal is None:
        return False
    try:
        faulthandler.register(quit_signal, all_threads=True)
    except (AttributeError, ValueError, OSError, RuntimeError, io.UnsupportedOperation) as exc:
        log.debug("no thread dump on SIGQUIT: %s", exc)
        return False
    return True
