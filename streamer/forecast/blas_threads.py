"""Run many tiny linear-algebra calls without BLAS thread pools.

The per-meter ETS/SARIMA fits solve matrices of size 2 to 4 thousands of times. OpenBLAS hands
even those to its thread pool, and on a busy machine the threads wait for cores: a SARIMA fit
measured 7 to 25 times slower with 2 BLAS threads on 2 busy cores than with one. The fits
therefore run inside :func:`single_threaded_blas`, which uses ``threadpoolctl`` when it is
installed (it should be, with streamer) and otherwise does nothing but log a warning once.
The limit is process-wide while it is held: other threads doing matrix work at that moment
also get one BLAS thread.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
from collections.abc import Iterator
from typing import Any

logger = logging.getLogger(__name__)


@functools.cache
def _controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        logger.warning(
            "threadpoolctl is not installed: per-meter ETS/SARIMA fits keep BLAS thread pools "
            "and can be many times slower on a busy machine; pip install threadpoolctl"
        )
        return None
    # The controller sees the BLAS libraries loaded when it is built. SciPy ships its own
    # OpenBLAS (used by statsmodels' Lyapunov solves, the slow part), loaded on first import
    # of scipy.linalg: load it now so the limit reaches it too.
    importlib.import_module("scipy.linalg")
    return ThreadpoolController()


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS libraries to one thread inside the ``with`` block (when possible)."""
    controller = _controller()
    if controller is None:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield
