"""``streamer train``: history file in, ``models/<name>/<version>/`` out.

Writes ``model.onnx`` (exported, parity-checked), ``card.json`` beside it and the model's
Triton ``config.pbtxt`` one level up.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streamer.evaluate.grid import build_grid
from streamer.evaluate.history import load_history
from streamer.modelrepo.card import write_card
from streamer.modelrepo.checksum import sha256_file
from streamer.modelrepo.layout import CARD_FILE, MODEL_FILE, WEIGHTS_FILE
from streamer.modelrepo.triton import write_triton_config
from streamer.timeutil import to_datetime
from streamer.train.card_builder import build_card
from streamer.train.checkpoint import (
    base_version,
    config_from_base,
    load_weights,
    save_weights,
)
from streamer.train.config import TrainConfig, TrainReport, TrainSummary
from streamer.train.errors import TrainConfigError, TrainingStopped
from streamer.train.export import check_parity, export_onnx
from streamer.train.loop import EpochCallback, choose_device, fit
from streamer.train.model import QuantileLstm
from streamer.train.windows import WindowSampler

logger = logging.getLogger(__name__)


def name_and_version(out_dir: Path) -> tuple[str, str]:
    """``models/lstm/2`` -> ``("lstm", "2")``."""
    version, name = out_dir.name, out_dir.parent.name
    if not version.isdigit() or int(version) < 1 or not name:
        raise TrainConfigError(
            f"--out {out_dir}: must be <models dir>/<model name>/<version>, with a positive "
            "integer version, e.g. models/lstm/2"
        )
    return name, str(int(version))


def build_model(config: TrainConfig) -> QuantileLstm:
    """A fresh (seeded by the caller) model for ``config``."""
    return QuantileLstm(
        lookback_slots=config.lookback_slots,
        horizon_slots=config.horizon_slots,
        n_features=len(config.features),
        quantile_levels=tuple(config.quantile_levels),
        load_index=tuple(config.features).index("load_scaled"),
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        patch_slots=config.patch_slots,
    )


def train_main(
    history_path: str | Path,
    out_dir: str | Path,
    *,
    config: TrainConfig | None = None,
    on_epoch: EpochCallback | None = None,
    on_summary: Callable[[TrainSummary], None] | None = None,
    stop: threading.Event | None = None,
    keep_best_on_stop: bool = False,
    **overrides: Any,
) -> TrainReport:
    """Train on ``history_path`` (CSV/CSV.GZ/Parquet ``meter_id, ts, kwh``) and write the model.

    ``overrides`` replace fields of ``config`` (default :class:`TrainConfig`), e.g.
    ``train_main("h.parquet", "models/lstm/2", epochs=10, seed=1, progress=False)``.

    ``on_summary`` gets what the run trains on before epoch 1. ``stop`` (set from another
    thread) ends training within a batch: then :class:`TrainingStopped` is raised and nothing
    is written, unless ``keep_best_on_stop`` and an epoch finished, in which case the best
    epoch so far is exported (the report says ``stopped``).
    """
    try:
        cfg = dataclasses.replace(config or TrainConfig(), **overrides)
    except TypeError as exc:
        fields = ", ".join(f.name for f in dataclasses.fields(TrainConfig))
        raise TrainConfigError(f"{exc}; TrainConfig fields are: {fields}") from None
    base_weights = None
    if cfg.init_from is not None:
        base_card, base_weights = base_version(cfg.init_from)
        cfg = config_from_base(cfg, base_card)
        logger.info("fine-tuning from %s:%s (%s)", base_card.name, base_card.version, cfg.init_from)
    target = Path(out_dir)
    name, version = name_and_version(target)
    started = time.perf_counter()
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = choose_device(cfg.device)
    logger.info("training %s:%s on %s from %s", name, version, device, history_path)

    grid = build_grid(load_history(history_path), cfg.resolution_seconds)
    sampler = WindowSampler(grid, cfg)
    if on_summary is not None:
        on_summary(summarise(sampler, cfg, str(device)))
    model = build_model(cfg)
    if base_weights is not None:
        load_weights(model, base_weights)
    result = fit(model, sampler, cfg, device, on_epoch=on_epoch, stop=stop)
    if result.stopped and (not keep_best_on_stop or result.best_epoch == 0):
        done = "no epoch had finished" if result.best_epoch == 0 else "--keep-best-on-stop not set"
        raise TrainingStopped(
            f"training stopped after {result.epochs_run} epochs; no model written ({done})",
            epochs_run=result.epochs_run,
        )

    model_path = export_onnx(model, target / MODEL_FILE, opset=cfg.opset)
    save_weights(model.to("cpu"), target / WEIGHTS_FILE)
    parity_inputs = next(sampler.validation_batches(max(cfg.parity_batch_sizes))).inputs
    diffs = check_parity(
        model,
        model_path,
        parity_inputs,
        batch_sizes=cfg.parity_batch_sizes,
        tolerance=cfg.parity_tolerance,
    )
    seconds = time.perf_counter() - started
    card = build_card(
        name=name,
        version=version,
        config=cfg,
        sampler=sampler,
        fit=result,
        model_sha256=sha256_file(model_path),
        source=str(history_path),
        device=str(device),
        seconds=seconds,
        reference_inputs=sampler.reference_inputs(cfg.reference_windows),
    )
    card_path = write_card(card, target / CARD_FILE)
    triton_path = write_triton_config(target.parent, card)
    return TrainReport(
        out_dir=target,
        model_path=model_path,
        card_path=card_path,
        triton_config_path=triton_path,
        device=str(device),
        epochs_run=result.epochs_run,
        best_epoch=result.best_epoch,
        best_validation_pinball=result.best_validation_pinball,
        train_windows=sampler.train_windows,
        validation_windows=sampler.validation_windows,
        seconds=time.perf_counter() - started,
        parity_max_abs_diff=diffs,
        history=result.history,
        stopped=result.stopped,
    )


def summarise(sampler: WindowSampler, config: TrainConfig, device: str) -> TrainSummary:
    """What ``sampler`` trains and validates on, for the summary printed before epoch 1."""
    grid = sampler.grid

    def period(span: tuple[int, int]) -> tuple[datetime, datetime]:
        return to_datetime(grid.end_ms(span[0])), to_datetime(grid.end_ms(span[1]))

    return TrainSummary(
        meters=sampler.meters,
        train_meters=sampler.meters_in_training,
        train_windows=sampler.train_windows,
        validation_windows=sampler.validation_windows,
        train_period=period(sampler.train_period()),
        validation_period=period(sampler.validation_period()),
        resolution_seconds=config.resolution_seconds,
        lookback_slots=config.lookback_slots,
        horizon_slots=config.horizon_slots,
        epochs=config.epochs,
        device=device,
    )
