"""CPU per reading of the worker's batch path with forecasting off, in process (no Kafka).

Run from the repository root::

    .venv/bin/python bench/ingest_bench.py               # 1,000 meters, batches of 2,000
    .venv/bin/python bench/ingest_bench.py --profile 25  # and the top 25 functions (cProfile)

The shape of the benchmark suite's ingest phase: ``--meters`` meters, one reading each per slot
(as the simulator writes them, with its share of register meters), slot-major, taken
``--batch`` readings at a time; no meter is due a forecast. After ``--warmup`` batches (the
meters' first readings, records made afresh), the median of ``--repeats`` timings of
``--batches`` batches: ``BatchProcessor.process`` (parse, state updates, record bytes) per
reading, CPU time of this process. The worker adds Kafka's consume and produce, its delivery
and metrics to this.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamer.app import build_core  # noqa: E402
from streamer.contract.placement import home_partition  # noqa: E402
from streamer.heap import freeze_heap  # noqa: E402
from streamer.pipeline.messages import InMessage  # noqa: E402
from streamer.settings import load_settings  # noqa: E402
from streamer.simulate import FaultConfig, FleetModel, iter_slot_chunks  # noqa: E402

END_MS = 1_795_392_000_000  # 2026-11-23T00:00:00Z, a slot boundary
PARTITIONS = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=4, help="batches before the timings")
    parser.add_argument("--batches", type=int, default=10, help="batches per timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    args = parser.parse_args()

    settings = load_settings(
        models_dir=ROOT / "models",
        onnx_providers="cpu",
        state_cache_meters=max(4096, args.meters),
        forecast_every_slots=10**9,
    )
    processor = build_core(settings).processor
    res_ms = settings.resolution_seconds * 1000
    batches_needed = args.warmup + args.batches * (args.repeats + (1 if args.profile else 0))
    slots = -(-batches_needed * args.batch // args.meters) + 1
    model = FleetModel(args.meters, seed=args.seed, resolution_seconds=settings.resolution_seconds)
    messages: list[InMessage] = []
    for r, chunk in enumerate(
        iter_slot_chunks(model, FaultConfig.none(), END_MS, END_MS + slots * res_ms, flush=False)
    ):
        now = chunk.slot_end_ms + 1000
        messages.extend(
            InMessage(
                key, value, "meter-readings", home_partition(key, PARTITIONS), r * 10**6 + i, now
            )
            for i, (key, value) in enumerate(chunk.messages)
        )
    batches = [messages[i : i + args.batch] for i in range(0, len(messages), args.batch)]
    store: dict[str, bytes] = {}

    def run(batch: list[InMessage]) -> None:
        result = processor.process(batch, store.get, int(batch[-1].timestamp_ms or 0))
        for meter_id, write in result.state_writes.items():
            store[meter_id] = write.value

    position = 0
    for batch in batches[: args.warmup]:
        run(batch)
    position = args.warmup
    freeze_heap()  # as the worker does once its tables are recovered
    timings: list[float] = []
    for _ in range(args.repeats):
        taken = batches[position : position + args.batches]
        position += args.batches
        cpu = time.process_time()
        for batch in taken:
            run(batch)
        timings.append((time.process_time() - cpu) / sum(len(b) for b in taken) * 1e6)
    report = {
        "meters": args.meters,
        "batch": args.batch,
        "process_cpu_us_per_reading": round(statistics.median(timings), 2),
        "timings_us_per_reading": [round(t, 2) for t in timings],
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
    print(json.dumps(report))
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for batch in batches[position : position + args.batches]:
            run(batch)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)


if __name__ == "__main__":
    main()
