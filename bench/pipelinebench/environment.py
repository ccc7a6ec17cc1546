"""What the report records about the run: machine, load, versions, code, command."""

from __future__ import annotations

import hashlib
import os
import platform
import re
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("faust-streaming", "aiokafka", "onnxruntime", "onnxruntime-gpu", "numpy", "orjson")


def memory_gb() -> float | None:
    """Total memory of the machine (Linux /proc/meminfo)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        return None
    return None


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
            "memory_gb": memory_gb(),
            "load_average_at_start": load_average(),
        },
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "versions": versions,
        "code": {
            "commit": _git(root, "rev-parse", "HEAD"),
            "uncommitted_paths": len(changed),
            "streamer_tree_sha256": tree_digest(root / "streamer"),
        },
        "command": command_line(root),
    }


def command_line(root: Path) -> str:
    """The command as run from the repository root (the interpreter as ``.venv/bin/python``)."""
    exe = Path(sys.executable)
    try:
        shown = str(exe.relative_to(root)) if exe.is_relative_to(root) else exe.name
    except ValueError:
        shown = exe.name
    args = []
    for arg in sys.argv:
        path = Path(arg)
        if path.is_absolute() and path.is_relative_to(root):
            arg = str(path.relative_to(root))
        args.append(arg)
    return " ".join([shown, *args])


def tree_digest(folder: Path) -> str:
    """SHA-256 (first 12 hex digits) of the ``.py`` files under ``folder``, paths and bytes:
    which code was measured, with or without uncommitted changes."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.py")):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
