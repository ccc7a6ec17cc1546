"""Bounded logging of a Kafka outage: a few lines that say what is down and since when.

While a broker is away, aiokafka's clients retry in tight loops and log every failed attempt
(``Unable connect to ...``, ``Unable to update metadata ...``, ``Failed fetch messages ...``,
``Heartbeat send request failed ...``): a 17 s outage wrote ~31,000 ERROR lines per worker.
:class:`OutageLogFilter`, installed on the loggers that write them (:func:`install`), lets
through:

- the first connection failure of an outage, rewritten to ``Kafka broker(s) <host:port>
  unreachable since <UTC time>; further connection errors suppressed (first: <message>)``;
- at most one line every ``summary_every_seconds``: ``... still unreachable since <UTC time>,
  <n> messages suppressed (latest: <message>)``;
- one line when a record shows the connection back: ``Kafka reachable again after <x> s;
  <n> connection errors suppressed (<message>)``. That record is the broker-health probe's
  ``answers again`` (INFO, :mod:`streamer.agents.broker_health`), or any other record of these
  loggers once ``settle_seconds`` passed without a connection failure. At a log level above
  INFO the line may come later than the recovery (no INFO record reaches the filter).

Errors an outage brings that also come without one (:data:`OUTAGE_SYMPTOM`: no group
coordinator, no partition leader, timeouts) are suppressed with them during an outage only,
and neither start nor end one. Every other record passes unchanged (and, after
``settle_seconds`` without a connection failure, ends the outage). A connection failure after
``summary_every_seconds`` without one starts a new outage.

Outside an outage, a group coordinator that is not ready (:data:`COORDINATOR_NOT_READY`: a
fresh broker still electing one, loading its offsets, or one that moved) is not an error:
aiokafka logs ``Group Coordinator Request failed: [Error 15]
GroupCoordinatorNotAvailableError`` at ERROR and retries every 100 ms. The first such record
becomes one WARNING without a traceback, ``Kafka group coordinator not available yet
(<message>); the client retries``, and the next ones are suppressed until the coordinator is
found (``Discovered coordinator ...``, which ends the spell) or a quiet
``summary_every_seconds``. Only when it is still not available after
``coordinator_grace_seconds`` does an ERROR show, ``Kafka group coordinator still not available
after <x> s, <n> retries not logged (<message>)``, at most once every
``summary_every_seconds``.

The filter is shared by all the loggers it is installed on (one outage, whichever client
noticed it) and is thread-safe (faust runs its consumer in a thread of its own).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

#: Messages of a failed connection (aiokafka's client, fetcher, coordinator and sender, and
#: streamer's broker-health probe).
CONNECTION_FAILURE = re.compile(
    r"Unable connect to"
    r"|Unable to (?:update|request) metadata"
    r"|Unable to bootstrap"
    r"|Failed fetch (?:messages|offsets) from"
    r"|Heartbeat send request failed"
    r"|marking coordinator dead"
    r"|No connection to broker"
    r"|Connection at \S+ (?:broken|closed)"
    r"|KafkaConnectionError|NodeNotReadyError"
    r"|Connect call failed|Connection refused"
    r"|Kafka at \S+ does not answer"
)
#: Errors a broker outage brings besides failed connections, which also come without one (a
#: group coordinator not yet elected on a fresh broker): suppressed during an outage only.
OUTAGE_SYMPTOM = re.compile(
    r"(?:Group Coordinator|FindCoordinator) Request failed"
    r"|Marking the coordinator dead"
    r"|Got error produce response"
    r"|CoordinatorNotAvailable|NotCoordinator|NotLeaderForPartition|LeaderNotAvailable"
    r"|RequestTimedOutError|KafkaTimeoutError"
)
#: A group coordinator that is not ready: not yet elected (a fresh broker), loading the group's
#: offsets, or moved to another broker. The client finds it again by itself.
COORDINATOR_NOT_READY = re.compile(
    r"(?:Group)?CoordinatorNotAvailable|(?:Group|Coordinator)LoadInProgress"
    r"|NotCoordinator(?:ForGroup)?Error"
)
#: aiokafka's record that the group coordinator is known again.
COORDINATOR_FOUND = re.compile(r"Discovered coordinator ")
#: A record that says the connection is back at once.
RECOVERED = re.compile(r"Kafka at \S+ answers again")
_CONNECTION_ERRORS = frozenset({"KafkaConnectionError", "NodeNotReadyError", "ConnectionError"})
_HOST_PORT = re.compile(
    r"""(?:"|\bat |\(')(?P<host>[A-Za-z0-9_.\-]+)(?:"?:|', )(?P<port>\d{1,5})\b"""
)

#: Loggers that log connection failures; :func:`install` adds every ``aiokafka.*`` and
#: ``faust.transport.*`` logger already created.
NOISY_LOGGERS = (
    "aiokafka",
    "aiokafka.conn",
    "aiokafka.cluster",
    "aiokafka.admin.client",
    "aiokafka.consumer.consumer",
    "aiokafka.consumer.fetcher",
    "aiokafka.consumer.group_coordinator",
    "aiokafka.producer.producer",
    "aiokafka.producer.sender",
    "faust.transport.consumer",
    "faust.transport.producer",
    "faust.transport.drivers.aiokafka",
    "streamer.agents.broker_health",
)


def is_connection_failure(record: logging.LogRecord) -> bool:
    """A warning or error that a Kafka connection failed."""
    if record.levelno < logging.WARNING:
        return False
    kind = record.exc_info[0] if record.exc_info else None
    if kind is not None and any(cls.__name__ in _CONNECTION_ERRORS for cls in kind.__mro__):
        return True
    return CONNECTION_FAILURE.search(record.getMessage()) is not None


def is_outage_symptom(record: logging.LogRecord) -> bool:
    """A warning or error that a broker outage brings, though not only an outage."""
    return record.levelno >= logging.WARNING and bool(OUTAGE_SYMPTOM.search(record.getMessage()))


def is_coordinator_not_ready(record: logging.LogRecord) -> bool:
    """A warning or error that the group coordinator is not (yet) available."""
    return record.levelno >= logging.WARNING and bool(
        COORDINATOR_NOT_READY.search(record.getMessage())
    )


def brokers_named(message: str) -> list[str]:
    """The ``host:port`` pairs a message names (quoted, ``at host:port`` or ``('host', port)``)."""
    return [f"{m['host']}:{m['port']}" for m in _HOST_PORT.finditer(message)]


def utc_iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


class OutageLogFilter(logging.Filter):
    """Collapses the connection failures of a Kafka outage into a few lines (module doc)."""

    def __init__(
        self,
        bootstrap: str,
        *,
        summary_every_seconds: float = 30.0,
        settle_seconds: float = 5.0,
        coordinator_grace_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.bootstrap = [server.strip() for server in bootstrap.split(",") if server.strip()]
        self.summary_every_seconds = summary_every_seconds
        self.settle_seconds = settle_seconds
        self.coordinator_grace_seconds = coordinator_grace_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._since: float | None = None  # clock() at the outage's first failure
        self._since_utc = ""
        self._brokers: dict[str, None] = {}
        self._last_failure = 0.0
        self._last_line = 0.0
        self._suppressed = 0  # since the last line let through
        self._suppressed_total = 0
        # a group coordinator not available (outside an outage): since when, the latest record,
        # the latest ERROR let through, records suppressed since the last line
        self._coordinator_since: float | None = None
        self._coordinator_last = 0.0
        self._coordinator_error: float | None = None
        self._coordinator_suppressed = 0

    @property
    def in_outage(self) -> bool:
        return self._since is not None

    def filter(self, record: logging.LogRecord) -> bool:
        failure = is_connection_failure(record)
        with self._lock:
            now = self.clock()
            if failure:
                return self._failure(record, now)
            if self._since is None:
                if is_coordinator_not_ready(record):
                    return self._coordinator_not_ready(record, now)
                if self._coordinator_since is not None and COORDINATOR_FOUND.search(
                    record.getMessage()
                ):
                    self._coordinator_since = None
                return True
            if is_outage_symptom(record):
                if now - self._last_failure < self.summary_every_seconds:
                    return self._during(record, now)
                return True  # trouble of another kind, not a sign the broker is back
            if (
                RECOVERED.search(record.getMessage())
                or now - self._last_failure >= self.settle_seconds
            ):
                self._recovered(record, now)
            return True

    def _failure(self, record: logging.LogRecord, now: float) -> bool:
        message = record.getMessage()
        named = brokers_named(message)
        if self._since is None or now - self._last_failure >= self.summary_every_seconds:
            previous = self._suppressed_total + self._suppressed if self._since else 0
            self._since = self._last_line = self._last_failure = now
            self._since_utc = utc_iso(record.created)
            self._brokers = dict.fromkeys(named or self.bootstrap)
            self._suppressed = self._suppressed_total = 0
            earlier = f"; {previous} suppressed in an earlier outage" if previous else ""
            _rewrite(
                record,
                f"Kafka broker(s) {self._names()} unreachable since {self._since_utc}; further "
                f"connection errors suppressed{earlier} (first: {message})",
                keep_traceback=True,
            )
            return True
        self._brokers.update(dict.fromkeys(named))
        self._last_failure = now
        return self._during(record, now)

    def _during(self, record: logging.LogRecord, now: float) -> bool:
        if now - self._last_line < self.summary_every_seconds:
            self._suppressed += 1
            return False
        _rewrite(
            record,
            f"Kafka broker(s) {self._names()} still unreachable since {self._since_utc}, "
            f"{self._suppressed} messages suppressed (latest: {record.getMessage()})",
        )
        self._last_line = now
        self._suppressed_total += self._suppressed
        self._suppressed = 0
        return True

    def _recovered(self, record: logging.LogRecord, now: float) -> None:
        assert self._since is not None
        suppressed = self._suppressed_total + self._suppressed
        _rewrite(
            record,
            f"Kafka reachable again after {now - self._since:.1f} s; {suppressed} connection "
            f"errors suppressed ({record.getMessage()})",
            keep_traceback=True,
        )
        self._since = None
        self._suppressed = self._suppressed_total = 0

    def _coordinator_not_ready(self, record: logging.LogRecord, now: float) -> bool:
        message = record.getMessage()
        if (
            self._coordinator_since is None
            or now - self._coordinator_last >= self.summary_every_seconds
        ):
            # a new spell: a warning, the client retries
            self._coordinator_since = self._coordinator_last = now
            self._coordinator_error = None
            self._coordinator_suppressed = 0
            _rewrite(
                record,
                f"Kafka group coordinator not available yet ({message}); the client retries",
                level=logging.WARNING,
            )
            return True
        self._coordinator_last = now
        waited = now - self._coordinator_since
        if waited < self.coordinator_grace_seconds or (
            self._coordinator_error is not None
            and now - self._coordinator_error < self.summary_every_seconds
        ):
            self._coordinator_suppressed += 1
            return False
        # persistent: an error, at most once per summary interval
        _rewrite(
            record,
            f"Kafka group coordinator still not available after {waited:.0f} s, "
            f"{self._coordinator_suppressed} retries not logged ({message})",
            keep_traceback=True,
            level=max(record.levelno, logging.ERROR),
        )
        self._coordinator_error = now
        self._coordinator_suppressed = 0
        return True

    def _names(self) -> str:
        return ", ".join(self._brokers)


def _rewrite(
    record: logging.LogRecord,
    message: str,
    *,
    keep_traceback: bool = False,
    level: int | None = None,
) -> None:
    record.msg = message
    record.args = ()
    if level is not None:
        record.levelno = level
        record.levelname = logging.getLevelName(level)
    if not keep_traceback:
        record.exc_info = None
        record.exc_text = None


def install(
    bootstrap: str,
    loggers: Iterable[str] = NOISY_LOGGERS,
    *,
    summary_every_seconds: float = 30.0,
    settle_seconds: float = 5.0,
    coordinator_grace_seconds: float = 60.0,
) -> OutageLogFilter:
    """Install one :class:`OutageLogFilter` on ``loggers`` and on every ``aiokafka.*`` and
    ``faust.transport.*`` logger created so far (call it once those modules are imported).

    A logger's filter sees only the records logged to that logger, not those of its children,
    hence one filter on each.
    """
    outage = OutageLogFilter(
        bootstrap,
        summary_every_seconds=summary_every_seconds,
        settle_seconds=settle_seconds,
        coordinator_grace_seconds=coordinator_grace_seconds,
    )
    names = dict.fromkeys(loggers)
    for name in list(logging.root.manager.loggerDict):
        if name.split(".")[0] == "aiokafka" or name.startswith("faust.transport."):
            names[name] = None
    for name in names:
        logger = logging.getLogger(name)
        for existing in [f for f in logger.filters if isinstance(f, OutageLogFilter)]:
            logger.removeFilter(existing)
        logger.addFilter(outage)
    return outage
