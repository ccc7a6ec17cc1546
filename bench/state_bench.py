"""Benchmark of per-meter state: memory per meter and window updates per second.

Run from the repository root::

    .venv/bin/python bench/state_bench.py                # 100k meters, lookback 336, 30 min
    .venv/bin/python bench/state_bench.py --meters 10000 --updates 50000   # quicker
    .venv/bin/python bench/state_bench.py --record-only  # the worker's per-meter record only

Prints one JSON object, then a one-line summary. Single-threaded, pure CPU; no Kafka. Rates are
best-of-5; the JSON records the load average because other processes on the machine skew them.
The ``record`` section is the whole table value the worker keeps per meter (window, forecast
ledger, drift detector, rolling accuracy) with default settings, after a week of readings and
forecasts: its bytes by part, and its encode/decode rates.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from streamer.state import MeterState, WindowConfig, apply_batch

T0_MS = 1_709_251_200_000  # 2024-03-01T00:00:00Z


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def full_state(config: WindowConfig, rng: np.random.Generator) -> MeterState:
    """A meter with a full window of realistic-looking values and a few gaps."""
    state = MeterState.new(config)
    count = config.lookback_slots
    ts = T0_MS + np.arange(1, count + 1, dtype=np.int64) * config.resolution_ms
    kwh = np.round(rng.gamma(2.0, 0.15, size=count), 3)
    keep = rng.random(count) > 0.02
    keep[-1] = True
    apply_batch(state, ts[keep], kwh[keep], ts[keep] + 30_000)
    return state


def measure_memory(config: WindowConfig, meters: int, rng: np.random.Generator) -> dict[str, Any]:
    template = full_state(config, rng).to_bytes()
    gc.collect()

    # RSS delta, without tracemalloc's own overhead
    before = rss_bytes()
    held = [MeterState.from_bytes(template, config) for _ in range(meters)]
    gc.collect()
    rss_delta = rss_bytes() - before
    del held
    gc.collect()

    tracemalloc.start()
    start, _ = tracemalloc.get_traced_memory()
    held = [MeterState.from_bytes(template, config) for _ in range(meters)]
    traced_objects = tracemalloc.get_traced_memory()[0] - start
    del held
    gc.collect()
    start, _ = tracemalloc.get_traced_memory()
    held_bytes = [bytes(bytearray(template)) for _ in range(meters)]
    traced_bytes = tracemalloc.get_traced_memory()[0] - start
    tracemalloc.stop()
    del held_bytes
    gc.collect()
    return {
        "meters": meters,
        "to_bytes_len": len(template),
        "tracemalloc_per_meter_state_bytes": round(traced_objects / meters, 1),
        "rss_delta_per_meter_state_bytes": round(rss_delta / meters, 1),
        "tracemalloc_per_meter_as_bytes_object": round(traced_bytes / meters, 1),
        "note": "per-object figures include the 8-byte list slot holding each object",
    }


def rate(count: int, func: Callable[[], object], repeat: int = 5) -> float:
    """Best-of-``repeat`` operations per second of ``func`` doing ``count`` operations."""
    best = float("inf")
    for _ in range(repeat):
        begin = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - begin)
    return count / best


def measure_updates(config: WindowConfig, updates: int, rng: np.random.Generator) -> dict[str, Any]:
    r_ms = config.resolution_ms
    slots = np.arange(1, updates + 1, dtype=np.int64)
    ts_in_order = T0_MS + slots * r_ms
    kwh = np.round(rng.gamma(2.0, 0.15, size=updates), 3)
    arrival = ts_in_order + 30_000
    ts_list, kwh_list, arrival_list = ts_in_order.tolist(), kwh.tolist(), arrival.tolist()

    def single_in_order() -> None:
        state = MeterState.new(config)
        update = state.update
        for t, v, a in zip(ts_list, kwh_list, arrival_list, strict=True):
            update(t, v, a)

    # a messy stream: 10% late fills, 5% duplicates, 5% corrections, 2% too late
    messy_ts = ts_in_order.copy()
    messy_kwh = kwh.copy()
    draw = rng.random(updates)
    late = (draw < 0.10) & (slots > 60)
    messy_ts[late] -= rng.integers(1, config.allowed_lateness_slots, size=int(late.sum())) * r_ms
    dup = (draw >= 0.10) & (draw < 0.15) & (slots > 1)
    messy_ts[dup] = messy_ts[np.flatnonzero(dup) - 1]
    messy_kwh[dup] = messy_kwh[np.flatnonzero(dup) - 1]
    too_late = (draw >= 0.20) & (draw < 0.22) & (slots > 2 * config.lookback_slots)
    messy_ts[too_late] -= 2 * config.lookback_slots * r_ms
    messy = list(zip(messy_ts.tolist(), messy_kwh.tolist(), arrival_list, strict=True))

    def single_messy() -> None:
        state = MeterState.new(config)
        update = state.update
        for t, v, a in messy:
            update(t, v, a)

    def batches(size: int) -> Callable[[], None]:
        chunks = [
            (ts_in_order[i : i + size], kwh[i : i + size], arrival[i : i + size])
            for i in range(0, updates, size)
        ]

        def run() -> None:
            state = MeterState.new(config)
            for t, v, a in chunks:
                apply_batch(state, t, v, a)

        return run

    # the worker's pattern per meter per micro-batch: decode, one update, encode
    template = full_state(config, rng)
    head = template.head_slot
    assert head is not None
    data = template.to_bytes()
    cycle_count = min(updates, 50_000)

    def decode_update_encode() -> None:
        blob = data
        for i in range(cycle_count):
            state = MeterState.from_bytes(blob, config)
            state.update((head + 1 + i) * r_ms, 0.5, 0)
            blob = state.to_bytes()

    get_count = min(updates, 20_000)

    def get_window() -> None:
        for _ in range(get_count):
            template.get()

    return {
        "updates": updates,
        "single_update_in_order_per_s": round(rate(updates, single_in_order)),
        "single_update_messy_per_s": round(rate(updates, single_messy)),
        "apply_batch_size_1_per_s": round(rate(updates, batches(1))),
        "apply_batch_size_4_per_s": round(rate(updates, batches(4))),
        "apply_batch_size_48_per_s": round(rate(updates, batches(48))),
        "decode_update_encode_per_s": round(rate(cycle_count, decode_update_encode)),
        "get_with_imputation_per_s": round(rate(get_count, get_window)),
    }


def full_record() -> tuple[Any, Any]:
    """(record, RecordConfig): a meter after a week of readings, each slot forecast and scored,
    built as the worker builds it with default settings."""
    from streamer.pipeline.config import PipelineConfig
    from streamer.pipeline.meter_record import MeterRecord
    from streamer.pipeline.scoring import score_actual
    from streamer.settings import Settings

    pipeline = PipelineConfig.from_settings(Settings())
    config = pipeline.record
    res_ms = pipeline.resolution_seconds * 1000
    rng = np.random.default_rng(5)
    record = MeterRecord.new(config)
    first = T0_MS // res_ms
    for k in range(config.window.lookback_slots + pipeline.horizon_slots):
        slot = first + k
        kwh = round(float(rng.gamma(2.0, 0.15)), 3)
        record.state.update(slot * res_ms, kwh, slot * res_ms + 30_000)
        score_actual(record, "m", slot, kwh, res_ms=res_ms, now_ms=slot * res_ms)
        point = rng.gamma(2.0, 0.15, pipeline.horizon_slots)
        quantiles = np.stack([point * 0.6, point * 1.05, point * 1.5], axis=1)
        record.ledger.record(slot, point, quantiles)
    return record, config


def measure_record(count: int) -> dict[str, Any]:
    from streamer.pipeline.meter_record import MeterRecord

    record, config = full_record()
    data = record.to_bytes(0)
    parts = {
        "window": len(record.state.to_bytes()),
        "forecast_ledger": len(record.ledger.to_bytes()),
        "drift_detector": len(record.detector.to_bytes()),
        "rolling_accuracy": len(record.accuracy.to_bytes()),
    }
    return {
        "bytes": len(data),
        "parts": parts,
        "framing": len(data) - sum(parts.values()),
        "to_bytes_per_s": round(rate(count, lambda: [record.to_bytes(0) for _ in range(count)])),
        "from_bytes_per_s": round(
            rate(count, lambda: [MeterRecord.from_bytes(data, config) for _ in range(count)])
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=100_000)
    parser.add_argument("--updates", type=int, default=100_000)
    parser.add_argument("--lookback", type=int, default=336)
    parser.add_argument("--resolution", type=int, default=1800)
    parser.add_argument("--lateness", type=int, default=48)
    parser.add_argument(
        "--record-only", action="store_true", help="measure only the default per-meter record"
    )
    args = parser.parse_args()
    config = WindowConfig(args.resolution, args.lookback, args.lateness)
    rng = np.random.default_rng(7)
    load_before = round(os.getloadavg()[0], 2)
    record = measure_record(min(args.updates, 20_000))
    if args.record_only:
        print(json.dumps({"record": record}, indent=2))
        print(f"record per meter: {record['bytes']} B ({record['parts']})")
        return
    mem = measure_memory(config, args.meters, rng)
    thr = measure_updates(config, args.updates, rng)
    result = {
        "config": {
            "resolution_seconds": config.resolution_seconds,
            "lookback_slots": config.lookback_slots,
            "allowed_lateness_slots": config.allowed_lateness_slots,
        },
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_average_1m_before_after": [load_before, round(os.getloadavg()[0], 2)],
        "numpy": np.__version__,
        "memory": mem,
        "throughput": thr,
        "record": record,
    }
    print(json.dumps(result, indent=2))
    print(
        f"state per meter: {mem['to_bytes_len']} B serialized, "
        f"{mem['tracemalloc_per_meter_state_bytes']:.0f} B traced / "
        f"{mem['rss_delta_per_meter_state_bytes']:.0f} B RSS per MeterState object "
        f"({mem['meters']} meters); updates/s: single {thr['single_update_in_order_per_s']}, "
        f"messy {thr['single_update_messy_per_s']}, apply_batch(48) "
        f"{thr['apply_batch_size_48_per_s']}, apply_batch(1) {thr['apply_batch_size_1_per_s']}, "
        f"decode+update+encode {thr['decode_update_encode_per_s']}/s, "
        f"get() {thr['get_with_imputation_per_s']}/s; whole record per meter {record['bytes']} B"
    )


if __name__ == "__main__":
    main()
