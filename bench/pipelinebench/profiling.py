"""py-spy attached to the worker while it forecasts, and a summary of where the time went."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

#: Parts of the worker, each the samples with a frame whose function starts with the marker.
GROUPS: dict[str, tuple[str, ...]] = {
    "batch handler (ReadingsLoop.process)": ("ReadingsLoop.process ",),
    "  parse and group by meter (BatchProcessor.begin)": ("BatchProcessor.begin ",),
    "  state updates (BatchProcessor._apply_meter)": ("BatchProcessor._apply_meter ",),
    "  windows for the models (BatchProcessor._prepare_forecasts)": (
        "BatchProcessor._prepare_forecasts ",
    ),
    "  records and state bytes (BatchProcessor.finish)": ("BatchProcessor.finish ",),
    "    forecast records (BatchProcessor._issue_forecasts)": ("BatchProcessor._issue_forecasts ",),
    "inference thread: the models' calls (Inference.run)": ("Inference.run ",),
    "  forecaster call (OnnxForecaster.forecast)": ("OnnxForecaster.forecast ",),
    "    ONNX Runtime session (Session.run)": ("Session.run ",),
    "  forecast JSON (encode_forecasts, ForecastRecord.to_bytes)": (
        "encode_forecasts ",
        "ForecastRecord.to_bytes ",
    ),
    "  accuracy and drift scoring (score_batch)": ("score_batch ",),
    "  record batches out (BulkSender)": ("BulkSender.",),
    "  faust table writes and send_soon (exactly-once path)": (
        "ManagedUserDict.__setitem__ ",
        "_send_through_faust ",
    ),
    "  batch metrics (record_batch)": ("record_batch ",),
    "taking batches (faust Stream.take_events)": ("Stream.take_events ", "event_batches "),
    "faust ProducerBuffer (send_soon and changelog queue)": ("ProducerBuffer.",),
    "aiokafka producer (send, accumulator, sender)": (
        "AIOKafkaProducer.",
        "Sender.",
        "MessageAccumulator.",
        "SendProduceReqHandler.",
    ),
    "faust consumer and fetcher": ("Fetcher.", "Consumer.getmany ", "Consumer._drain"),
    "faust offset commits (Consumer.commit)": ("Consumer.commit ", "Consumer._commit"),
    "timers (silence, metrics, drift reports)": (
        "register_silence_timer.",
        "register_metrics_timers.",
        "register_drift_report_timer.",
    ),
    "HTTP views (/metrics scrapes by the bench)": ("register_views.",),
    "socket writes (transport.write)": ("_SelectorSocketTransport.write ",),
    "event loop waiting (selector)": ("EpollSelector.select ",),
}

#: Parts of the bare faust app of the faust ceiling (pipelinebench.faust_drain).
FAUST_GROUPS: dict[str, tuple[str, ...]] = {
    "faust consumer: fetch, drain, decode, events (Consumer, Conductor, App.create_event)": (
        "Consumer.getmany ",
        "Consumer._drain_messages ",
        "Consumer._to_message ",
        "Conductor.",
        "App.create_event ",
        "TopicBuffer.",
        "Schema.",
    ),
    "mode Service.wait_first (faust's waits in its consumer loop)": ("Service.wait_first ",),
    "asyncio waits and futures (wait_for, wait, create_future, call_soon)": (
        "wait_for ",
        "wait ",
        "_wait ",
        "BaseEventLoop.create_future ",
        "BaseEventLoop.call_soon ",
        "ensure_future ",
        "BaseEventLoop.create_task ",
    ),
    "aiokafka consumer thread (faust's ServiceThread)": ("ServiceThread._start_thread ",),
    "taking batches and counting (Stream.take_events, the agent)": (
        "Stream.take_events ",
        "build_app.<locals>.drain ",
    ),
    "acks and offset commits (Stream.ack, Consumer.commit)": (
        "Stream.ack ",
        "Consumer.ack ",
        "Consumer.commit ",
        "Consumer._commit",
    ),
    "socket reads (transport data_received)": ("_SelectorSocketTransport._read_ready",),
    "event loop waiting (selector)": ("EpollSelector.select ",),
}

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy_path() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


class PySpy:
    """``py-spy record --format raw`` on a running process, stopped with SIGINT."""

    def __init__(self, executable: str, pid: int, out: Path, rate: int = 100) -> None:
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                executable,
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--output",
                str(out),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def stop(self, timeout_seconds: float = 30.0) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err.decode(errors="replace")[-2000:]


def _short(frame: str, root: Path) -> str:
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match.group("file")
    for marker in ("site-packages/", str(root) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match.group('func')} ({path})"


def summarise(
    raw_file: Path,
    root: Path,
    top: int = 25,
    groups_of: dict[str, tuple[str, ...]] | None = None,
) -> dict[str, Any]:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks.

    ``groups_of`` (default :data:`GROUPS`, the worker's parts) names the groups reported: the
    share of samples with a frame whose function starts with one of the group's markers.
    """
    group_markers = GROUPS if groups_of is None else groups_of
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    groups: Counter[str] = Counter()
    total = 0
    for line in raw_file.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f, root) for f in stack.split(";") if f]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
        for label, markers in group_markers.items():
            if any(frame.startswith(markers) for frame in frames):
                groups[label] += count

    def share(n: int) -> float:
        return round(n / total, 4) if total else 0.0

    return {
        "samples": total,
        "groups": {label: share(groups[label]) for label in group_markers},
        "self": [
            {"function": name, "share": share(n), "inclusive_share": share(inclusive[name])}
            for name, n in own.most_common(top)
        ],
        "inclusive": [
            {"function": name, "share": share(n)} for name, n in inclusive.most_common(top)
        ],
    }
