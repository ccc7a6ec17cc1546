"""Training the LSTM forecaster (PyTorch, from the ``train`` extra) and exporting it to ONNX.

Importing this package does not import torch; :func:`train_main` does, and says how to
install the extra when torch is missing. The worker never imports this package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamer.train.config import EpochStats, TrainConfig, TrainReport, TrainSummary
from streamer.train.errors import (
    ExportParityError,
    TrainConfigError,
    TrainError,
    TrainingStopped,
)

__all__ = [
    "EpochStats",
    "ExportParityError",
    "TrainConfig",
    "TrainConfigError",
    "TrainError",
    "TrainReport",
    "TrainSummary",
    "TrainingStopped",
    "train_main",
]


def train_main(history_path: str | Path, out_dir: str | Path, **kwargs: Any) -> TrainReport:
    """See :func:`streamer.train.main.train_main` (imported here on first use)."""
    try:
        from streamer.train.main import train_main as run
    except ImportError as exc:
        raise TrainError(
            f"training needs the train extra ({exc}); install it with "
            "`pip install -e '.[train]'` (torch, onnx, onnxscript, tqdm)"
        ) from None
    return run(history_path, out_dir, **kwargs)
