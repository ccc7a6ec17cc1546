"""A small valid model card (and a fake model file) for the model repository tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

MODEL_BYTES = b"not really onnx, but the card only checks the hash"


def card_dict(**overrides: Any) -> dict[str, Any]:
    """A valid schema-1 card as a plain dict."""
    data: dict[str, Any] = {
        "schema_version": 1,
        "name": "lstm",
        "version": "1",
        "created_at": "2026-01-02T03:04:05Z",
        "model_file": "model.onnx",
        "model_sha256": hashlib.sha256(MODEL_BYTES).hexdigest(),
        "onnx_opset": 18,
        "resolution_seconds": 1800,
        "lookback_slots": 336,
        "horizon_slots": 48,
        "min_history_slots": 84,
        "features": ["load_scaled", "is_missing", "tod_sin", "tod_cos", "dow_sin", "dow_cos"],
        "scaling": {"method": "mean_abs", "epsilon": 0.001},
        "quantile_levels": [0.1, 0.5, 0.9],
        "point_quantile": 0.5,
        "holidays": ["2025-12-25"],
        "inputs": [{"name": "inputs", "shape": [-1, 336, 6], "dtype": "float32"}],
        "outputs": [{"name": "quantiles", "shape": [-1, 48, 3], "dtype": "float32"}],
        "training_data": {
            "source": "history.parquet",
            "meters": 3,
            "first_ts": "2025-09-01T00:30:00Z",
            "last_ts": "2025-12-16T00:00:00+01:00",
            "rows": 1000,
            "train_windows": 900,
            "validation_windows": 100,
            "validation_days": 7.0,
            "holdout_days": 14.0,
            "seed": 0,
        },
        "reference": [
            {"feature": "is_missing", "bin_edges": [0.0, 0.5, 1.0], "proportions": [0.9, 0.1]}
        ],
    }
    data.update(overrides)
    return data


def write_version(root: Path, data: dict[str, Any] | None = None, version: str = "1") -> Path:
    """``root/lstm/<version>/{card.json, model.onnx}``; returns the version directory."""
    folder = root / "lstm" / version
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(MODEL_BYTES)
    body = card_dict(version=version) if data is None else data
    (folder / "card.json").write_text(json.dumps(body), encoding="utf-8")
    return folder
