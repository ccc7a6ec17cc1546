"""The bench's helpers live in ``bench/pipelinebench`` (not a package of streamer)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench"


def load_bench_module(name: str) -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


@pytest.fixture
def bench() -> Callable[[str], ModuleType]:
    """``bench("stats")`` imports ``pipelinebench.stats``; ``bench("pipeline_bench")`` the CLI."""

    def load(name: str) -> ModuleType:
        return load_bench_module(name if name == "pipeline_bench" else f"pipelinebench.{name}")

    return load
