"""Calls made on an inference thread, kept to be made on the event loop, in batch order.

The worker runs the models of a batch's chunks on inference threads, several at once; a model's
``input_observer`` (the data-drift monitor's ``update``) must not run there: the monitor is not
thread-safe, and its sample depends on the order it is offered rows in. A callable wrapped with
:func:`deferrable` runs at once, except inside :func:`deferring`, where the call is kept in the
list given; :func:`replay` makes the kept calls later, in the order the chunks were made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: calls kept: (callable, its positional arguments)
Calls = list[tuple[Callable[..., object], tuple[Any, ...]]]

_local = threading.local()


def deferrable(function: Callable[..., object]) -> Callable[..., None]:
    """``function``, called at once, or, inside :func:`deferring`, kept for :func:`replay`."""

    def call(*args: Any) -> None:
        kept: Calls | None = getattr(_local, "calls", None)
        if kept is None:
            function(*args)
        else:
            kept.append((function, args))

    return call


@contextmanager
def deferring(into: Calls) -> Iterator[None]:
    """Within the block, on this thread, calls of :func:`deferrable` callables go to ``into``."""
    previous = getattr(_local, "calls", None)
    _local.calls = into
    try:
        yield
    finally:
        _local.calls = previous


def replay(calls: Calls) -> None:
    """Make the kept calls, in order, and forget them."""
    for function, args in calls:
        function(*args)
    calls.clear()
