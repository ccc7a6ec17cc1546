"""The training loop: pinball loss, Adam, learning-rate halving on plateaus, early stopping on
the validation split, the best epoch's weights restored at the end."""

from __future__ import annotations

import copy
import logging
import math
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from streamer.train.config import EpochStats, TrainConfig
from streamer.train.model import QuantileLstm, pinball_loss
from streamer.train.windows import WindowBatch, WindowSampler

logger = logging.getLogger(__name__)

EpochCallback = Callable[[EpochStats], None]


@dataclass(frozen=True, slots=True)
class FitResult:
    """The loop's outcome; the model passed in holds the best epoch's weights."""

    epochs_run: int
    best_epoch: int
    best_validation_pinball: float
    history: tuple[EpochStats, ...]
    stopped: bool = False


def choose_device(name: str) -> torch.device:
    """``auto``: CUDA when torch sees a GPU, else CPU; otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _tensors(batch: WindowBatch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    inputs = torch.from_numpy(batch.inputs).to(device, non_blocking=True)
    targets = torch.from_numpy(batch.targets).to(device, non_blocking=True)
    return inputs, targets


def validation_pinball(
    model: QuantileLstm,
    sampler: WindowSampler,
    levels: torch.Tensor,
    device: torch.device,
    batch_size: int,
    stop: threading.Event | None = None,
) -> float:
    """Mean pinball loss (scaled units) over the validation windows (NaN when ``stop`` is set
    before the end)."""
    model.eval()
    total, count = 0.0, 0.0
    with torch.no_grad():
        for batch in sampler.validation_batches(batch_size):
            if stop is not None and stop.is_set():
                return math.nan
            inputs, targets = _tensors(batch, device)
            pairs = float(torch.isfinite(targets).sum().item())
            if pairs == 0:
                continue
            total += float(pinball_loss(model(inputs), targets, levels).item()) * pairs
            count += pairs
    return total / count if count else math.nan


def fit(
    model: QuantileLstm,
    sampler: WindowSampler,
    config: TrainConfig,
    device: torch.device,
    *,
    on_epoch: EpochCallback | None = None,
    stop: threading.Event | None = None,
) -> FitResult:
    """Train ``model`` in place (see the module docstring).

    ``stop`` (set from another thread, e.g. by a signal handler) ends training within a batch:
    the unfinished epoch is dropped, the best finished epoch's weights are restored and the
    result says ``stopped``.
    """
    stopped = False
    rng = np.random.default_rng(config.seed)
    model.to(device)
    levels = torch.tensor(config.quantile_levels, dtype=torch.float32, device=device)
    optimiser = torch.optim.Adam(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimiser, mode="min", factor=0.5, patience=max(1, config.patience // 2 - 1)
    )
    steps = max(1, config.samples_per_epoch // config.batch_size)
    best, best_epoch, bad = math.inf, 0, 0
    best_state = copy.deepcopy(model.state_dict())
    history: list[EpochStats] = []
    for epoch in range(1, config.epochs + 1):
        if stop is not None and stop.is_set():
            stopped = True
            break
        started = time.perf_counter()
        model.train()
        running, seen = 0.0, 0
        bar = tqdm(
            total=steps,
            desc=f"epoch {epoch}/{config.epochs}",
            unit="batch",
            file=sys.stderr,
            disable=not config.progress,
            leave=False,
        )
        for _ in range(steps):
            if stop is not None and stop.is_set():
                break
            meters, origins = sampler.sample_train(rng, config.batch_size)
            inputs, targets = _tensors(sampler.batch(meters, origins, rng), device)
            loss = pinball_loss(model(inputs), targets, levels)
            optimiser.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            running += float(loss.item())
            seen += 1
            bar.update(1)
            bar.set_postfix(loss=f"{running / seen:.4f}")
        bar.close()
        if stop is not None and stop.is_set():
            stopped = True
            break
        val = validation_pinball(
            model, sampler, levels, device, max(config.batch_size, 1024), stop=stop
        )
        if stop is not None and stop.is_set():
            stopped = True
            break
        plateau.step(val)
        improved = val < best - config.min_delta
        if improved:
            best, best_epoch, bad = val, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
        stats = EpochStats(
            epoch=epoch,
            train_pinball=running / max(seen, 1),
            validation_pinball=val,
            learning_rate=float(optimiser.param_groups[0]["lr"]),
            seconds=time.perf_counter() - started,
            improved=improved,
        )
        history.append(stats)
        logger.info(
            "epoch %d/%d: train pinball %.4f, validation pinball %.4f%s (%.1f s)",
            epoch,
            config.epochs,
            stats.train_pinball,
            val,
            " *" if improved else "",
            stats.seconds,
        )
        if config.progress:
            left = config.epochs - epoch  # early stopping may end it sooner
            mean_seconds = sum(h.seconds for h in history) / len(history)
            tqdm.write(
                f"epoch {epoch}/{config.epochs}: train pinball {stats.train_pinball:.4f}, "
                f"validation pinball {val:.4f}{' (best)' if improved else ''}, "
                f"{stats.seconds:.1f} s; at most {left} more epoch{'' if left == 1 else 's'}, "
                f"ETA <= {_minutes(left * mean_seconds)}",
                file=sys.stderr,
            )
        if on_epoch is not None:
            on_epoch(stats)
        if bad >= config.patience:
            logger.info("early stop: no improvement for %d epochs", bad)
            break
    model.load_state_dict(best_state)
    model.eval()
    return FitResult(
        epochs_run=len(history),
        best_epoch=best_epoch,
        best_validation_pinball=best,
        history=tuple(history),
        stopped=stopped,
    )


def _minutes(seconds: float) -> str:
    """``12:05`` (minutes:seconds) or ``1:02:03``."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
