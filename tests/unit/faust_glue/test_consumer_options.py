from __future__ import annotations

from types import SimpleNamespace

from streamer.faust_glue.consumer_options import set_fetch_max_wait


def test_fetch_max_wait_reaches_the_running_fetcher_and_its_consumer() -> None:
    fetcher = SimpleNamespace(_fetch_max_wait_ms=1500)
    client = SimpleNamespace(_fetch_max_wait_ms=1500, _fetcher=fetcher)
    consumer = SimpleNamespace(_thread=SimpleNamespace(_ensure_consumer=lambda: client))
    set_fetch_max_wait(consumer, 50)
    assert fetcher._fetch_max_wait_ms == 50  # the next fetch request carries it
    assert client._fetch_max_wait_ms == 50  # and a fetcher the consumer makes again


def test_a_consumer_not_started_yet_keeps_the_value_for_its_fetcher() -> None:
    client = SimpleNamespace(_fetch_max_wait_ms=1500, _fetcher=None)
    consumer = SimpleNamespace(_thread=SimpleNamespace(_ensure_consumer=lambda: client))
    set_fetch_max_wait(consumer, 50)
    assert client._fetch_max_wait_ms == 50
