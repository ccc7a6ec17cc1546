"""Pipeline benchmark: the worker against the ceilings of what it is built on, in one run.

Run from the repository root (it starts its own local Kafka on 127.0.0.1:49092, controller
49093, log in ``.streamer/bench/kafka``, and stops it at the end)::

    .venv/bin/python bench/pipeline_bench.py --quick                  # about 2 minutes
    .venv/bin/python bench/pipeline_bench.py --json-out report.json --markdown-out report.md
    .venv/bin/python bench/pipeline_bench.py --profile                 # + py-spy of the worker

Phases, on the same broker:

1. ceiling A: raw aiokafka consume (``getmany``, nothing decoded) of the ingest backlog;
2. ingest: a real ``python -m streamer worker`` (forecast cadence set so that nothing is due)
   consumes the same backlog; first consumed message to consumer-group lag 0;
3. forecasting: a second worker preloads ``--history-slots`` of history for
   ``--forecast-meters`` meters, then gets one new slot for every meter at a time
   (``--rounds``); forecasts/s until all of a round's forecasts are in the forecasts topic;
4. raw ONNX Runtime forecasts/s of the default model at the batch size the worker used.

Prints one JSON object and a Markdown table. The machine's load skews everything: the report
records the load average and the CPU the worker and the broker used in each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipelinebench.context import RunContext, log  # noqa: E402
from pipelinebench.environment import environment, load_average  # noqa: E402
from pipelinebench.forecasting import forecast_phase  # noqa: E402
from pipelinebench.ingest import ingest_phase  # noqa: E402
from pipelinebench.kafka_io import OffsetWatcher  # noqa: E402
from pipelinebench.report import markdown  # noqa: E402
from pipelinebench.workload import slot_end_before  # noqa: E402

from streamer.localkafka.broker import LocalKafka  # noqa: E402
from streamer.settings import load_settings  # noqa: E402
from streamer.timeutil import now_ms  # noqa: E402

# Sizes for a 2-core machine: the worker takes in about 1-3k readings/s there, so the quick
# run (about 2 minutes) keeps every phase to some 10-30 s of work.
QUICK = {
    "ingest_meters": 1000,
    "ingest_slots": 24,
    "forecast_meters": 1000,
    "history_slots": 96,  # 2 days: more than the LSTM's min_history_slots (84)
    "rounds": 4,
    "profile_rounds": 2,
    "ceiling_repeats": 3,
}
FULL = {
    "ingest_meters": 4000,
    "ingest_slots": 24,
    "forecast_meters": 2000,
    "history_slots": 144,  # 3 days
    "rounds": 6,
    "profile_rounds": 3,
    "ceiling_repeats": 3,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, about 2 minutes")
    parser.add_argument("--ingest-meters", type=int)
    parser.add_argument("--ingest-slots", type=int)
    parser.add_argument("--forecast-meters", type=int)
    parser.add_argument("--history-slots", type=int, help="history preloaded per meter")
    parser.add_argument("--rounds", type=int, help="measured rounds of one slot per meter")
    parser.add_argument("--profile-rounds", type=int, help="extra rounds under py-spy")
    parser.add_argument("--ceiling-repeats", type=int)
    parser.add_argument("--phases", default="ingest,forecast", help="ingest,forecast (or one)")
    parser.add_argument("--batch-max-events", type=int, default=None)
    parser.add_argument("--batch-within-seconds", type=float, default=None)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--kafka-port", type=int, default=49092)
    parser.add_argument("--controller-port", type=int, default=49093)
    parser.add_argument("--onnx-providers", default="", help="as STREAMER_ONNX_PROVIDERS")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the workers (ingest: the measured run itself; forecasting: extra rounds)",
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of the worker processes (repeatable)",
    )
    parser.add_argument("--keep-broker", action="store_true", help="leave the broker running")
    parser.add_argument("--timeout-seconds", type=float, default=600.0)
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--markdown-out", type=Path)
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    for name, value in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.kafka_port in (9092, 39092) or args.controller_port in (9093, 39093):
        parser.error("ports 9092/9093 and 39092/39093 belong to the demo and the tests")
    return args


async def run(args: argparse.Namespace) -> dict[str, Any]:
    state_dir = ROOT / ".streamer" / "bench"
    libs_dir = ROOT / ".streamer" / "kafka-libs"
    bootstrap = f"127.0.0.1:{args.kafka_port}"
    broker_settings = load_settings(
        state_dir=state_dir,
        kafka_bootstrap=bootstrap,
        kafka_controller_port=args.controller_port,
        kafka_libs_dir=libs_dir,
        topic_partitions=args.partitions,
    )
    report: dict[str, Any] = {"environment": environment(ROOT, libs_dir)}
    report["partitions"] = args.partitions
    report["worker_env"] = args.worker_env
    run_id = uuid.uuid4().hex[:8]
    run_dir = state_dir / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    report["run_dir"] = str(run_dir.relative_to(ROOT))

    broker = LocalKafka(broker_settings)
    if broker.status().running:
        broker.stop()
    shutil.rmtree(broker_settings.kafka_dir, ignore_errors=True)  # a fresh log every run
    started = time.perf_counter()
    status = broker.start()
    log.info("broker up in %.1f s (pid %s)", time.perf_counter() - started, status.pid)
    watcher = OffsetWatcher(bootstrap)
    try:
        await watcher.start()
        base: dict[str, object] = {
            "state_dir": run_dir,  # each worker's data dir goes under the run's folder
            "kafka_bootstrap": bootstrap,
            "kafka_controller_port": args.controller_port,
            "kafka_libs_dir": libs_dir,
            "topic_partitions": args.partitions,
            "models_dir": ROOT / "models",
            "onnx_providers": args.onnx_providers,
        }
        overrides: dict[str, object] = {}
        if args.batch_max_events is not None:
            overrides["batch_max_events"] = args.batch_max_events
        if args.batch_within_seconds is not None:
            overrides["batch_within_seconds"] = args.batch_within_seconds
        ctx = RunContext(
            root=ROOT,
            run_dir=run_dir,
            run_id=run_id,
            bootstrap=bootstrap,
            base_settings=base,
            watcher=watcher,
            broker_pid=status.pid,
            poll_seconds=0.1,
            timeout_seconds=args.timeout_seconds,
            kafka_data_dir=broker.data_dir,
            worker_env=dict(item.split("=", 1) for item in args.worker_env),
        )
        phases = {p.strip() for p in args.phases.split(",")}
        res_s = broker_settings.resolution_seconds
        if "ingest" in phases:
            report["ingest"] = await ingest_phase(
                ctx,
                meters=args.ingest_meters,
                slots=args.ingest_slots,
                end_ms=slot_end_before(now_ms(), res_s, 2),
                ceiling_repeats=args.ceiling_repeats,
                worker_overrides=overrides,
                profile_out=run_dir / "ingest-worker.pyspy.txt" if args.profile else None,
            )
        if "forecast" in phases:
            report["forecast"] = await forecast_phase(
                ctx,
                meters=args.forecast_meters,
                history_slots=args.history_slots,
                rounds=args.rounds,
                profile_rounds=args.profile_rounds,
                # the rounds' slots must not lie in the future (STREAMER_FUTURE_TOLERANCE_SECONDS)
                end_ms=slot_end_before(now_ms(), res_s, args.rounds + args.profile_rounds + 2),
                worker_overrides=overrides,
                profile_out=run_dir / "forecast-worker.pyspy.txt" if args.profile else None,
            )
    finally:
        await watcher.stop()
        if not args.keep_broker:
            broker.stop()
            shutil.rmtree(broker_settings.kafka_dir, ignore_errors=True)  # the log is spent
    if "forecast" in report:
        report["onnx"] = report["forecast"].pop("onnx")
    report["ratios"] = ratios(report)
    report["load_average_at_end"] = load_average()
    return report


def ratios(report: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ingest = report.get("ingest")
    if ingest is not None:
        out["ingest"] = ingest["ratio_to_ceiling"]
    forecast, onnx = report.get("forecast"), report.get("onnx")
    if forecast is not None and onnx is not None:
        batch = max(1, round(forecast["mean_lstm_batch"]))
        row = next(r for r in onnx["results"] if r["batch_size"] == batch)
        out["forecast_batch_size"] = batch
        out["onnx_session_per_s"] = row["session_forecasts_per_s"]
        out["onnx_forecast_per_s"] = row["forecast_forecasts_per_s"]
        out["forecast"] = round(forecast["forecasts_per_s"] / row["session_forecasts_per_s"], 4)
        out["forecast_vs_forecast_call"] = round(
            forecast["forecasts_per_s"] / row["forecast_forecasts_per_s"], 4
        )
    return out


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    args = parse_args(argv)
    report = asyncio.run(run(args))
    text = json.dumps(report, indent=2)
    table = markdown(report)
    if args.json_out is not None:
        args.json_out.write_text(text + "\n", encoding="utf-8")
    if args.markdown_out is not None:
        args.markdown_out.write_text(table + "\n", encoding="utf-8")
    print(text)
    print()
    print(table)


if __name__ == "__main__":
    main()
