"""A client's malformed HTTP request is one log line, not a traceback.

aiohttp's server (under faust's web) answers a request it cannot parse with ``400 Bad
Request`` and closes the connection: a 100 kB URL (``LineTooLong``), a junk request line
(``BadStatusLine``), a header too long or malformed. It then logs ``Error handling request
from <peer>`` with the parser's traceback at ERROR on the ``aiohttp.server`` logger (only a
first request with a bad method goes to DEBUG). That is the client's error, not the server's:
:class:`BadRequestLogFilter`, installed on that logger (:func:`install`), rewrites such a record
to one INFO line without the traceback::

    Bad HTTP request from 127.0.0.1 answered 400: LineTooLong: Got more than 8190 bytes when
    reading: bytearray(b'/aaaa...

(the parser's message with control characters escaped and cut to :data:`DETAIL_CHARS`). At most
one such line passes every ``every_seconds``; the next one says how many were suppressed, so a
scanner cannot fill the log. A record of a 5xx, or of any other exception (a handler that
raised), passes unchanged, traceback and all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from aiohttp.http_exceptions import HttpProcessingError

#: The logger aiohttp's server logs request errors to.
WEB_LOGGERS = ("aiohttp.server",)
#: How much of the parser's message a line keeps.
DETAIL_CHARS = 120


def client_error(record: logging.LogRecord) -> HttpProcessingError | None:
    """The 4xx parser error a record carries (None for any other record)."""
    exc = record.exc_info[1] if record.exc_info else None
    if isinstance(exc, HttpProcessingError) and 400 <= exc.code < 500:
        return exc
    return None


def describe(exc: HttpProcessingError) -> str:
    """``<class>: <message>``, on one line, printable ASCII, cut to :data:`DETAIL_CHARS`."""
    detail = " ".join(str(exc.message or "").split())
    detail = detail.encode("ascii", "backslashreplace").decode("ascii")
    detail = "".join(c if c.isprintable() else "?" for c in detail)
    if len(detail) > DETAIL_CHARS:
        detail = detail[:DETAIL_CHARS] + "..."
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


class BadRequestLogFilter(logging.Filter):
    """Turns aiohttp's traceback of a malformed request into one INFO line (module doc)."""

    def __init__(
        self, *, every_seconds: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.every_seconds = every_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._last_line: float | None = None
        self._suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = client_error(record)
        if exc is None:
            return True
        with self._lock:
            now = self.clock()
            if self._last_line is not None and now - self._last_line < self.every_seconds:
                self._suppressed += 1
                return False
            suppressed, self._suppressed = self._suppressed, 0
            self._last_line = now
        args = record.args if isinstance(record.args, tuple) else ()
        peer = args[0] if args and args[0] else "an unknown peer"
        more = f" ({suppressed} more suppressed before this one)" if suppressed else ""
        record.msg = f"Bad HTTP request from {peer} answered {exc.code}: {describe(exc)}{more}"
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        level = min(record.levelno, logging.INFO)
        record.levelno = level
        record.levelname = logging.getLevelName(level)
        return True


def install(
    loggers: Iterable[str] = WEB_LOGGERS, *, every_seconds: float = 10.0
) -> BadRequestLogFilter:
    """Install one :class:`BadRequestLogFilter` on ``loggers``, replacing an earlier one."""
    bad_requests = BadRequestLogFilter(every_seconds=every_seconds)
    for name in loggers:
        logger = logging.getLogger(name)
        for existing in [f for f in logger.filters if isinstance(f, BadRequestLogFilter)]:
            logger.removeFilter(existing)
        logger.addFilter(bad_requests)
    return bad_requests
