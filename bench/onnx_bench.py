"""Benchmark of the ONNX LSTM forecaster: forecasts per second at several batch sizes.

Run from the repository root::

    .venv/bin/python bench/onnx_bench.py                          # CPU, batch 1, 64, 1024
    .venv/bin/python bench/onnx_bench.py --providers cuda,cpu     # on a GPU machine

Two timings per batch size, both after warm-up and the median of ``--repeats`` runs:
``session``: the ONNX Runtime call alone on prepared ``(B, L, F)`` inputs; ``forecast``: the whole
``OnnxForecaster.forecast`` (features from raw history, the session, scaling back, checks).
Prints one JSON object, then a Markdown table. Other processes on the machine skew the numbers:
the JSON records the load average and the providers really in use.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from streamer.inference import OnnxForecaster, OnnxModel, build_inputs, parse_providers
from streamer.simulate.fleet import FleetModel

END_MS = 1_767_571_200_000  # 2026-01-05T00:00:00Z


def median_seconds(call: Callable[[], object], warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(args: argparse.Namespace) -> dict[str, Any]:
    model = OnnxModel(
        args.model,
        providers=parse_providers(args.providers),
        max_batch_size=max(args.batch_sizes),
        intra_op_threads=args.threads,
    )
    card = model.card
    forecaster = OnnxForecaster(model)
    res_ms = card.resolution_seconds * 1000
    ends = np.arange(END_MS - (card.lookback_slots - 1) * res_ms, END_MS + 1, res_ms)
    fleet = FleetModel(max(args.batch_sizes), seed=1, resolution_seconds=card.resolution_seconds)
    history = fleet.load_kwh(ends.astype(np.int64))
    rows: list[dict[str, Any]] = []
    for size in args.batch_sizes:
        hist = history[:size]
        end_ms = np.full(size, END_MS, dtype=np.int64)
        inputs = build_inputs(hist, end_ms, model.feature_spec).values
        session_s = median_seconds(lambda x=inputs: model.run(x), args.warmup, args.repeats)
        forecast_s = median_seconds(
            lambda h=hist, e=end_ms: forecaster.forecast(h, e, card.resolution_seconds),
            args.warmup,
            args.repeats,
        )
        rows.append(
            {
                "batch_size": size,
                "session_ms": round(session_s * 1000, 3),
                "session_forecasts_per_s": round(size / session_s, 1),
                "forecast_ms": round(forecast_s * 1000, 3),
                "forecasts_per_s": round(size / forecast_s, 1),
            }
        )
    return {
        "model": f"{card.name}:{card.version}",
        "model_file": str(model.model_file),
        "model_bytes": model.model_file.stat().st_size,
        "lookback_slots": card.lookback_slots,
        "horizon_slots": card.horizon_slots,
        "providers_requested": list(model.providers_requested),
        "providers_in_use": list(model.providers_in_use),
        "fell_back_to_cpu": model.fell_back_to_cpu,
        "onnxruntime": ort.__version__,
        "intra_op_threads": args.threads,
        "cpu_count": os.cpu_count(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "warmup": args.warmup,
        "repeats": args.repeats,
        "results": rows,
    }


def table(report: dict[str, Any]) -> str:
    lines = [
        f"{report['model']} on {', '.join(report['providers_in_use'])} "
        f"(onnxruntime {report['onnxruntime']}, load average {report['load_average'][0]})",
        "",
        "| batch | session ms | session forecasts/s | forecast ms | forecasts/s |",
        "|---|---|---|---|---|",
    ]
    for row in report["results"]:
        lines.append(
            f"| {row['batch_size']} | {row['session_ms']} | {row['session_forecasts_per_s']} | "
            f"{row['forecast_ms']} | {row['forecasts_per_s']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/lstm/2"))
    parser.add_argument(
        "--providers", default="cpu", help="comma-separated, e.g. cuda,cpu (default: cpu)"
    )
    parser.add_argument(
        "--batch-sizes",
        type=lambda text: [int(v) for v in text.split(",")],
        default=[1, 64, 1024],
    )
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    report = run(args)
    text = json.dumps(report, indent=2)
    if args.json_out is not None:
        args.json_out.write_text(text + "\n", encoding="utf-8")
    print(text)
    print()
    print(table(report))


if __name__ == "__main__":
    main()
