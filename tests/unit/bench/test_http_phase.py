"""The http phase's pure parts: its request bodies, the window it counts, histogram means."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest

from streamer.serving.request import RequestLimits, parse_request

Bench = Callable[[str], ModuleType]
LIMITS = RequestLimits(
    resolution_seconds=1800, lookback_slots=336, min_observed_fraction=0.15, max_series=1000
)


def test_bodies_are_what_the_server_reads_as_full_windows(bench: Bench) -> None:
    http = bench("http_serving")
    made = http.build_bodies(20, 336, 1800, count=3)
    assert len(made.bodies) == 3 and made.windows_kwh.shape == (60, 336)
    assert np.isfinite(made.windows_kwh).all()
    for b, body in enumerate(made.bodies):
        request = parse_request(body, LIMITS)  # the server's own parser accepts it
        assert request.model_spec is None and len(request.series) == 20
        for i, series in enumerate(request.series):
            assert series.series_id == f"bench-{b * 20 + i}"
            assert series.end_ms == http.END_MS and series.observed == 336
            np.testing.assert_array_equal(
                series.window_kwh, made.windows_kwh[b * 20 + i].astype(np.float32)
            )
    assert b'"start_ts":"2025-12-29T00:00:00Z"' in made.bodies[0]  # 336 slots before END_MS


def test_answers_count_within_the_window_only(bench: Bench) -> None:
    http = bench("http_serving")
    answers = [
        http.Answer(0.0, 0.9, 200, 100, 1000),  # warm-up
        http.Answer(0.5, 1.0, 200, 100, 1000),  # the window's first instant counts
        http.Answer(1.0, 1.5, 200, 100, 1000),
        http.Answer(1.2, 2.0, 429, 100, 200),
        http.Answer(1.5, 2.9, 200, 100, 1000),
        http.Answer(2.0, 3.0, 200, 100, 1000),  # the window's end does not
    ]
    out = http.summarise_answers(answers, 1.0, 3.0)
    assert (out["requests"], out["requests_ok"], out["non_200"]) == (4, 3, 1)
    assert out["statuses"] == {"200": 3, "429": 1}
    assert out["series_answered"] == 300 and out["series_per_s"] == 150.0
    assert out["requests_per_s"] == 1.5
    assert out["latency"]["count"] == 3
    assert out["latency"]["p50_ms"] == pytest.approx(500.0)
    assert out["latency"]["max_ms"] == pytest.approx(1400.0)
    empty = http.summarise_answers(answers, 10.0, 11.0)
    assert empty["series_per_s"] == 0.0 and empty["latency"] == {"count": 0}


def test_histogram_mean_between_two_scrapes(bench: Bench) -> None:
    http = bench("http_serving")
    metrics = bench("worker").Metrics

    def scrape(total: float, count: float) -> object:
        return metrics(
            {
                ("streamer_serving_batch_series_sum", ()): total,
                ("streamer_serving_batch_series_count", ()): count,
                ("streamer_http_request_duration_ms_sum", (("route", "/v1/forecast"),)): 80.0,
                ("streamer_http_request_duration_ms_count", (("route", "/v1/forecast"),)): 2.0,
                ("streamer_http_request_duration_ms_sum", (("route", "/metrics"),)): 1.0,
                ("streamer_http_request_duration_ms_count", (("route", "/metrics"),)): 5.0,
            }
        )

    before, after = scrape(1000.0, 5.0), scrape(3000.0, 15.0)
    assert http.histogram_mean(after, before, "streamer_serving_batch_series") == 200.0
    assert http.histogram_mean(after, None, "streamer_serving_batch_series") == 200.0
    assert http.histogram_mean(after, after, "streamer_serving_batch_series") is None
    assert (
        http.histogram_mean(after, None, "streamer_http_request_duration_ms", route="/v1/forecast")
        == 40.0
    )


def test_cli_has_the_http_phase_and_its_sizes(bench: Bench) -> None:
    cli = bench("pipeline_bench")
    assert "http" in cli.PHASES and cli.PHASES[-1] == "groups"
    quick = cli.parse_args(["--quick", "--phases", "http"])
    assert (quick.http_concurrency, quick.http_series_per_request) == (64, 100)
    assert (quick.http_warmup_seconds, quick.http_seconds) == (3.0, 10.0)
    full = cli.parse_args(["--http-concurrency", "16", "--http-series-per-request", "10"])
    assert (full.http_concurrency, full.http_series_per_request) == (16, 10)
    assert (full.http_warmup_seconds, full.http_seconds) == (5.0, 20.0)
