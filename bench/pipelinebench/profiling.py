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
    "batch handler (readings_agent.handle_batch)": ("handle_batch ",),
    "  BatchProcessor.process": ("BatchProcessor.process ",),
    "    state updates (BatchProcessor._apply_meter)": ("BatchProcessor._apply_meter ",),
    "    forecasting (BatchProcessor._forecast)": ("BatchProcessor._forecast ",),
    "      forecaster call (OnnxForecaster.forecast)": ("OnnxForecaster.forecast ",),
    "      ONNX Runtime session (Session.run)": ("Session.run ",),
    "  forecast JSON (ForecastRecord.to_bytes)": ("ForecastRecord.to_bytes ",),
    "  table writes (faust table __setitem__)": ("ManagedUserDict.__setitem__ ",),
    "  waiting for delivery (delivery.deliver_outputs)": ("deliver_outputs ",),
    "faust ProducerBuffer (send_soon and changelog queue)": ("ProducerBuffer.",),
    "aiokafka producer (send, accumulator, sender)": (
        "AIOKafkaProducer.",
        "Sender.",
        "MessageAccumulator.",
        "SendProduceReqHandler.",
    ),
    "faust consumer and fetcher": ("Fetcher.", "Consumer.getmany ", "Consumer._drain"),
    "socket writes (transport.write)": ("_SelectorSocketTransport.write ",),
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


def summarise(raw_file: Path, root: Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
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
        for label, markers in GROUPS.items():
            if any(frame.startswith(markers) for frame in frames):
                groups[label] += count

    def share(n: int) -> float:
        return round(n / total, 4) if total else 0.0

    return {
        "samples": total,
        "groups": {label: share(groups[label]) for label in GROUPS},
        "self": [
            {"function": name, "share": share(n), "inclusive_share": share(inclusive[name])}
            for name, n in own.most_common(top)
        ],
        "inclusive": [
            {"function": name, "share": share(n)} for name, n in inclusive.most_common(top)
        ],
    }
