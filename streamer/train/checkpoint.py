"""The trained weights beside ``model.onnx`` (``weights.npz``), so a version can be fine-tuned.

ONNX holds the weights too, but rewritten for inference (an LSTM's gates reordered and fused);
``weights.npz`` keeps PyTorch's own ``state_dict`` as float32 arrays, readable without torch.
``streamer train --init-from lstm:N`` starts from them and takes the version's architecture
(lookback, horizon, features, calendar clock, quantile levels, layer sizes) from its card.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Final

import numpy as np
import torch

from streamer.modelrepo.card import ModelCard, load_card
from streamer.modelrepo.layout import CARD_FILE, WEIGHTS_FILE
from streamer.train.config import TrainConfig
from streamer.train.errors import TrainConfigError
from streamer.train.model import QuantileLstm

#: Hyper-parameters that shape the network: a fine-tuned model keeps the base model's.
_ARCHITECTURE: Final = ("hidden_size", "num_layers", "patch_slots")


def save_weights(model: QuantileLstm, path: Path) -> Path:
    """``model``'s ``state_dict`` as ``.npz`` (float32 arrays named as in PyTorch)."""
    arrays = {name: t.detach().to("cpu").numpy() for name, t in model.state_dict().items()}
    with path.open("wb") as handle:
        np.savez(handle, **arrays)
    return path


def load_weights(model: QuantileLstm, path: Path) -> None:
    """Load ``path`` (from :func:`save_weights`) into ``model``; a sentence if they differ."""
    with np.load(path) as data:
        state = {name: torch.from_numpy(np.array(data[name])) for name in data.files}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise TrainConfigError(
            f"{path}: the weights do not fit the model built from its card ({exc}); re-train "
            "the base version with this streamer"
        ) from None


def base_version(init_from: Path) -> tuple[ModelCard, Path]:
    """The card and weights file of the version directory to fine-tune from."""
    card_file = init_from / CARD_FILE
    if not card_file.is_file():
        raise TrainConfigError(
            f"--init-from {init_from}: no {CARD_FILE} there; name a trained version such as "
            "lstm:2 or models/lstm/2"
        )
    card = load_card(card_file)
    weights = init_from / (card.weights_file or WEIGHTS_FILE)
    if not weights.is_file():
        raise TrainConfigError(
            f"--init-from {card.name}:{card.version}: it has no {WEIGHTS_FILE} (versions "
            "trained before fine-tuning existed ship only model.onnx); fine-tune from a version "
            "trained with this streamer, or train from scratch without --init-from"
        )
    return card, weights


def config_from_base(config: TrainConfig, card: ModelCard) -> TrainConfig:
    """``config`` with the base version's architecture and inputs (its card's values)."""
    if card.resolution_seconds != config.resolution_seconds:
        raise TrainConfigError(
            f"--init-from {card.name}:{card.version} was trained at {card.resolution_seconds} s "
            f"slots, this run is at {config.resolution_seconds} s; set "
            f"STREAMER_RESOLUTION_SECONDS={card.resolution_seconds}"
        )
    hyper = card.training.hyperparameters if card.training is not None else {}
    shape = {name: int(hyper[name]) for name in _ARCHITECTURE if name in hyper}
    return dataclasses.replace(
        config,
        lookback_slots=card.lookback_slots,
        horizon_slots=card.horizon_slots,
        features=tuple(card.features),
        holidays=tuple(card.holidays),
        calendar_time=card.calendar_time,
        quantile_levels=tuple(card.quantile_levels),
        epsilon=card.scaling.epsilon,
        **shape,  # type: ignore[arg-type]
    )
