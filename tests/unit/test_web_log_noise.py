"""A malformed HTTP request is answered 400 and logged as one INFO line, not a traceback."""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest
from aiohttp import web
from aiohttp.http_exceptions import BadStatusLine, HttpProcessingError, LineTooLong

from streamer.web_log_noise import WEB_LOGGERS, BadRequestLogFilter, install


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def aiohttp_record(exc: BaseException, level: int = logging.ERROR) -> logging.LogRecord:
    """What aiohttp's server logs after answering a request it could not parse."""
    record = logging.LogRecord(
        "aiohttp.server", level, __file__, 1, "Error handling request from %s", ("10.0.0.7",), None
    )
    try:
        raise exc
    except BaseException:
        record.exc_info = sys.exc_info()
    return record


def test_a_url_too_long_is_one_info_line_naming_the_peer_and_the_error() -> None:
    bad_requests = BadRequestLogFilter(clock=Clock())
    rec = aiohttp_record(LineTooLong(b"/" + b"a" * 100_000, 8190))
    assert bad_requests.filter(rec)
    assert (rec.levelno, rec.levelname) == (logging.INFO, "INFO")
    assert rec.exc_info is None and rec.exc_text is None
    message = rec.getMessage()
    assert message.startswith(
        "Bad HTTP request from 10.0.0.7 answered 400: LineTooLong: Got more than 8190 bytes"
    ), message
    assert message.endswith("...") and len(message) < 200 and "\n" not in message


def test_control_characters_of_a_junk_request_line_are_escaped() -> None:
    bad_requests = BadRequestLogFilter(clock=Clock())
    rec = aiohttp_record(BadStatusLine("\x1b[2Jjunk\r\nline\x00é"))
    assert bad_requests.filter(rec)
    message = rec.getMessage()
    assert message.startswith("Bad HTTP request from 10.0.0.7 answered 400: BadStatusLine: ")
    assert message.isprintable() and message.isascii(), message


def test_at_most_one_line_every_interval_then_the_count_of_those_suppressed() -> None:
    clock = Clock()
    bad_requests = BadRequestLogFilter(every_seconds=10.0, clock=clock)
    passed = []
    for i in range(250):  # 25 s of a scanner, 10 bad requests a second
        clock.now = 100.0 + i / 10
        rec = aiohttp_record(BadStatusLine("GET / HTTP/9.9"))
        if bad_requests.filter(rec):
            passed.append(rec.getMessage())
    assert len(passed) == 3  # at 0, 10 and 20 s
    assert "suppressed" not in passed[0]
    assert passed[1].endswith(" (99 more suppressed before this one)")


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("a handler that raised"),
        HttpProcessingError(code=500, message="server side"),
    ],
)
def test_other_errors_pass_unchanged_with_their_traceback(exc: BaseException) -> None:
    bad_requests = BadRequestLogFilter(clock=Clock())
    for _ in range(3):
        rec = aiohttp_record(exc)
        assert bad_requests.filter(rec)
        assert rec.levelno == logging.ERROR and rec.exc_info is not None
        assert rec.getMessage() == "Error handling request from 10.0.0.7"


def test_install_puts_one_filter_on_aiohttp_s_server_logger() -> None:
    from aiohttp.log import server_logger

    assert server_logger.name in WEB_LOGGERS
    try:
        first = install()
        second = install()
        assert first is not second
        assert [f for f in server_logger.filters if isinstance(f, BadRequestLogFilter)] == [second]
    finally:
        for f in [f for f in server_logger.filters if isinstance(f, BadRequestLogFilter)]:
            server_logger.removeFilter(f)


async def _send(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await reader.read(200)
    finally:
        writer.close()
        await writer.wait_closed()


async def _serve_bad_requests() -> list[bytes]:
    app = web.Application()

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)  # as faust's web server
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        return [
            await _send(port, b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
            await _send(port, b"GET / HTTP/9.9\r\n\r\n"),
            await _send(port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        ]
    finally:
        await runner.cleanup()


def test_aiohttp_answers_400_and_logs_one_line_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad_requests = install(every_seconds=0.0)
    try:
        with caplog.at_level(logging.DEBUG, logger="aiohttp"):
            answers = asyncio.run(_serve_bad_requests())
    finally:
        logging.getLogger("aiohttp.server").removeFilter(bad_requests)
    assert answers[0].startswith(b"HTTP/1.0 400 Bad Request"), answers[0][:80]
    assert answers[1].startswith(b"HTTP/1.0 400 Bad Request"), answers[1][:80]
    assert answers[2].startswith(b"HTTP/1.1 200 OK"), answers[2][:80]
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "aiohttp.server"]
    assert [level for level, _ in lines] == ["INFO", "INFO"], lines
    assert lines[0][1].startswith("Bad HTTP request from 127.0.0.1 answered 400: LineTooLong: ")
    assert lines[1][1].startswith("Bad HTTP request from 127.0.0.1 answered 400: BadStatusLine: ")
    assert "Traceback" not in caplog.text
    assert all(r.exc_info is None for r in caplog.records)
