"""What the report records about the run: machine, load, versions, code, command."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("faust-streaming", "aiokafka", "onnxruntime", "onnxruntime-gpu", "numpy", "orjson")


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def kafka_version(libs_dir: Path) -> str:
    for jar in sorted(libs_dir.glob("kafka-server-*.jar")):
        match = re.match(r"kafka-server-(\d[\w.\-]*)\.jar$", jar.name)
        if match:
            return match.group(1)
    return "unknown"


def _git(root: Path, *args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=False, timeout=10
        )
    except OSError:
        return ""
    return out.stdout.strip()


def environment(root: Path, libs_dir: Path) -> dict[str, Any]:
    versions: dict[str, str] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    versions["kafka"] = kafka_version(libs_dir)
    changed = [line[3:] for line in _git(root, "status", "--porcelain").splitlines() if line]
    return {
        "machine": {
            "nproc": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "load_average_at_start": load_average(),
        },
        "versions": versions,
        "code": {"commit": _git(root, "rev-parse", "HEAD"), "uncommitted_paths": len(changed)},
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
