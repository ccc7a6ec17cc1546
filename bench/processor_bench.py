"""CPU per forecast of the worker's batch path, in process (no Kafka): where the time goes.

Run from the repository root::

    .venv/bin/python bench/processor_bench.py                 # 2,000 meters, 5 measured rounds
    .venv/bin/python bench/processor_bench.py --missing 0.02  # 2% of the history missing
    .venv/bin/python bench/processor_bench.py --profile 25    # and the top 25 functions (cProfile)

Every meter starts with a full window (``lookback_slots`` of history; ``--missing`` leaves a
share of its slots out, as gaps to impute) and, per round, gets one new reading in one batch of
``--meters`` readings: every reading is due a forecast (cadence 1), as in the benchmark suite's
forecasting phase. A few warm-up rounds first fill the forecast ledgers, so that readings are
matched against earlier forecasts as in a running worker.

Per forecast, CPU time of this process (all threads, ONNX Runtime's included), the median
round:

- ``process``: ``BatchProcessor.process`` (parse, state updates, scoring, features, model,
  forecast records, state bytes);
- ``forecaster call``: the live forecaster's ``forecast()`` inside it (features + session);
- ``outputs``: what the agent does next per batch (``score_batch``, the forecasts' JSON);
- ``session``: the ONNX Runtime session alone on prepared inputs at the same batch size;

and ``ratio``: session / (process + outputs), the share of the ONNX ceiling the batch path
could reach on one core. Prints one JSON object, then a table.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from streamer.agents.drift_reporting import attach_data_drift_monitor, score_batch  # noqa: E402
from streamer.app import build_core  # noqa: E402
from streamer.contract.forecast_record import ForecastRecord  # noqa: E402
from streamer.contract.placement import home_partition  # noqa: E402
from streamer.forecast.protocol import Forecaster  # noqa: E402
from streamer.inference import build_inputs  # noqa: E402
from streamer.pipeline.batch_processor import BatchResult  # noqa: E402
from streamer.pipeline.messages import InMessage  # noqa: E402
from streamer.pipeline.meter_record import MeterRecord  # noqa: E402
from streamer.settings import load_settings  # noqa: E402
from streamer.simulate import FaultConfig, FleetModel, iter_slot_chunks  # noqa: E402

try:  # the agent's batch encoder, where this version has one
    from streamer.contract.forecast_record import encode_forecasts
except ImportError:  # older trees: one record at a time

    def encode_forecasts(records: Sequence[ForecastRecord]) -> list[bytes]:
        return [record.to_bytes() for record in records]


END_MS = 1_795_392_000_000  # 2026-11-23T00:00:00Z, a slot boundary
PARTITIONS = 4
TOPIC = "meter-readings"


class _TimedForecaster:
    """Wraps the live forecaster: CPU and wall time of each ``forecast()`` call."""

    def __init__(self, inner: Forecaster) -> None:
        self.inner = inner
        self.cpu_seconds = 0.0
        self.wall_seconds = 0.0
        self.rows = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def forecast(
        self, history_kwh: Any, end_ms: Any, resolution_seconds: int, time_zone: Any = "UTC"
    ) -> Any:
        cpu, wall = time.process_time(), time.perf_counter()
        out = self.inner.forecast(history_kwh, end_ms, resolution_seconds, time_zone)
        self.cpu_seconds += time.process_time() - cpu
        self.wall_seconds += time.perf_counter() - wall
        self.rows += len(history_kwh)
        return out


class _Models:
    def __init__(self, live: Any) -> None:
        self.live = live
        self.shadow = None


def _cpu(call: Callable[[], object]) -> tuple[float, float, object]:
    cpu, wall = time.process_time(), time.perf_counter()
    out = call()
    return time.process_time() - cpu, time.perf_counter() - wall, out


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = load_settings(
        lookback_slots=args.lookback_slots,
        models_dir=ROOT / "models",
        onnx_providers=args.providers,
        state_cache_meters=max(200_000, args.meters),
    )
    runtime = build_core(settings)
    attach_data_drift_monitor(runtime)  # as the worker's control task does
    processor = runtime.processor
    live = runtime.router.live
    timed = _TimedForecaster(live)
    processor.models = _Models(timed)
    config = processor.config
    res_s = settings.resolution_seconds
    res_ms = res_s * 1000
    rounds = args.warmup_rounds + args.rounds

    # history: a full window per meter, straight into the records
    fleet = FleetModel(args.meters, seed=args.seed, resolution_seconds=res_s)
    ends = END_MS - np.arange(config.window.lookback_slots - 1, -1, -1, dtype=np.int64) * res_ms
    history = fleet.load_kwh(ends).astype(np.float32)
    keys = [f"m-{i:06d}" for i in range(args.meters)]
    store: dict[str, bytes] = {}
    gaps = np.random.default_rng(args.seed).random(history.shape) < args.missing
    gaps[:, -1] = False  # every window ends at its head slot
    for i, meter_id in enumerate(keys):
        record = MeterRecord.new(config.record)
        state = record.state
        for ts_ms, kwh, gap in zip(ends.tolist(), history[i].tolist(), gaps[i], strict=True):
            if not gap:
                state.update(ts_ms, kwh, ts_ms)
        store[meter_id] = record.to_bytes(i % PARTITIONS)

    # the rounds: one reading per meter each, as the simulator writes them
    model = FleetModel(args.meters, seed=args.seed, resolution_seconds=res_s)
    chunks = list(
        iter_slot_chunks(model, FaultConfig.none(), END_MS, END_MS + rounds * res_ms, flush=False)
    )
    batches: list[list[InMessage]] = []
    for r, chunk in enumerate(chunks):
        now = chunk.slot_end_ms + 1000
        batches.append(
            [
                InMessage(
                    key,
                    value,
                    "meter-readings",
                    home_partition(key, PARTITIONS),
                    r * 10**6 + i,
                    now,
                )
                for i, (key, value) in enumerate(chunk.messages)
            ]
        )

    def one_round(messages: list[InMessage], now_ms: int) -> tuple[BatchResult, list[bytes]]:
        result = processor.process(messages, store.get, now_ms)
        score_batch(runtime, result)
        bodies = encode_forecasts(result.forecasts)
        for meter_id, write in result.state_writes.items():
            store[meter_id] = write.value
        return result, bodies

    per_round: list[dict[str, Any]] = []
    profiler = cProfile.Profile() if args.profile else None
    for r, messages in enumerate(batches):
        now_ms = int(messages[0].timestamp_ms or 0)
        measured = r >= args.warmup_rounds
        timed.cpu_seconds = timed.wall_seconds = 0.0
        timed.rows = 0
        cpu, wall = time.process_time(), time.perf_counter()
        result = processor.process(messages, store.get, now_ms)
        process_cpu, process_wall = time.process_time() - cpu, time.perf_counter() - wall
        cpu = time.process_time()
        score_batch(runtime, result)
        bodies = encode_forecasts(result.forecasts)
        outputs_cpu = time.process_time() - cpu
        for meter_id, write in result.state_writes.items():
            store[meter_id] = write.value
        if measured:
            forecasts = len(result.forecasts)
            assert forecasts == len(messages), (forecasts, len(messages), result.skipped)
            assert len(bodies) == forecasts
            per_round.append(
                {
                    "forecasts": forecasts,
                    "matches": len(result.matches),
                    "process_cpu_us": process_cpu / forecasts * 1e6,
                    "process_wall_us": process_wall / forecasts * 1e6,
                    "forecaster_cpu_us": timed.cpu_seconds / forecasts * 1e6,
                    "forecaster_wall_us": timed.wall_seconds / forecasts * 1e6,
                    "outputs_cpu_us": outputs_cpu / forecasts * 1e6,
                }
            )
    if profiler is not None:
        # extra rounds under cProfile (it slows Python down: not part of the figures above)
        extra = list(
            iter_slot_chunks(
                model,
                FaultConfig.none(),
                END_MS + rounds * res_ms,
                END_MS + (rounds + args.rounds) * res_ms,
                flush=False,
            )
        )
        for r, chunk in enumerate(extra, rounds):
            now = chunk.slot_end_ms + 1000
            messages = [
                InMessage(
                    key,
                    value,
                    "meter-readings",
                    home_partition(key, PARTITIONS),
                    r * 10**6 + i,
                    now,
                )
                for i, (key, value) in enumerate(chunk.messages)
            ]
            profiler.enable()
            one_round(messages, now)
            profiler.disable()

    # the session alone at the batch size of the rounds, on inputs like the worker's
    onnx_model = live.model
    window = np.stack(
        [MeterRecord.from_bytes(store[k], config.record).state.get().values_kwh for k in keys]
    )
    inputs = build_inputs(
        window, np.full(args.meters, END_MS, dtype=np.int64), onnx_model.feature_spec
    ).values
    session = []
    for i in range(args.session_repeats + 2):
        cpu, wall, _ = _cpu(lambda: onnx_model.run(inputs))
        if i >= 2:
            session.append((cpu, wall))
    session_cpu = statistics.median(c for c, _ in session) / args.meters * 1e6
    session_wall = statistics.median(w for _, w in session) / args.meters * 1e6

    def med(name: str) -> float:
        return round(statistics.median(row[name] for row in per_round), 2)

    summary = {
        "process_cpu_us": med("process_cpu_us"),
        "process_wall_us": med("process_wall_us"),
        "forecaster_cpu_us": med("forecaster_cpu_us"),
        "forecaster_wall_us": med("forecaster_wall_us"),
        "outputs_cpu_us": med("outputs_cpu_us"),
        "session_cpu_us": round(session_cpu, 2),
        "session_wall_us": round(session_wall, 2),
    }
    total = summary["process_cpu_us"] + summary["outputs_cpu_us"]
    summary["batch_path_cpu_us"] = round(total, 2)
    summary["outside_forecaster_cpu_us"] = round(total - summary["forecaster_cpu_us"], 2)
    summary["ratio_session_to_batch_path"] = round(session_cpu / total, 3)
    report: dict[str, Any] = {
        "meters": args.meters,
        "lookback_slots": config.window.lookback_slots,
        "missing_history_share": args.missing,
        "rounds": args.rounds,
        "warmup_rounds": args.warmup_rounds,
        "providers_in_use": list(onnx_model.providers_in_use),
        "cpu_count": os.cpu_count(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "per_forecast": summary,
        "per_round": [{k: round(v, 2) for k, v in row.items()} for row in per_round],
    }
    if profiler is not None:
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("tottime").print_stats(args.profile)
        report["profile"] = text.getvalue()
    return report


def table(report: dict[str, Any]) -> str:
    s = report["per_forecast"]
    rows = [
        ("process (BatchProcessor.process)", s["process_cpu_us"], s["process_wall_us"]),
        ("  forecaster call (features + session)", s["forecaster_cpu_us"], s["forecaster_wall_us"]),
        ("outputs (score_batch, forecast JSON)", s["outputs_cpu_us"], None),
        ("batch path (process + outputs)", s["batch_path_cpu_us"], None),
        ("  of which outside the forecaster call", s["outside_forecaster_cpu_us"], None),
        (
            f"ONNX session alone, batch {report['meters']}",
            s["session_cpu_us"],
            s["session_wall_us"],
        ),
    ]
    lines = [
        f"{report['meters']:,} meters, one reading each per round, every one due a forecast; "
        f"{report['missing_history_share']:.0%} of the history missing; "
        f"median of {report['rounds']} rounds; {', '.join(report['providers_in_use'])}; "
        f"load average {report['load_average'][0]}",
        "",
        "| per forecast | CPU us | wall us |",
        "|---|---|---|",
    ]
    for label, cpu, wall in rows:
        lines.append(f"| {label} | {cpu:.1f} | {'' if wall is None else f'{wall:.1f}'} |")
    lines.append("")
    lines.append(f"ratio session / batch path (CPU): {s['ratio_session_to_batch_path'] * 100:.1f}%")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup-rounds", type=int, default=3)
    parser.add_argument("--lookback-slots", type=int, default=336)
    parser.add_argument("--session-repeats", type=int, default=5)
    parser.add_argument("--providers", default="cpu")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--missing",
        type=float,
        default=0.0,
        help="share of the history slots missing (gaps the forecast imputes); 0: full windows",
    )
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="cProfile extra rounds, top N"
    )
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    report = run(args)
    profile = report.pop("profile", None)
    text = json.dumps(report, indent=2)
    if args.json_out is not None:
        args.json_out.write_text(text + "\n", encoding="utf-8")
    print(text)
    print()
    print(table(report))
    if profile:
        print()
        print(profile)


if __name__ == "__main__":
    main()
