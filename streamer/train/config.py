"""Training arguments and the report of a training run (plain dataclasses, no torch)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from streamer.forecast.local_time import is_known_zone
from streamer.inference.features import DEFAULT_EPSILON, DEFAULT_FEATURES
from streamer.train.errors import TrainConfigError


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Everything ``streamer train`` can set; defaults build the committed ``lstm`` model.

    Data: the last ``holdout_days`` of the file are never seen (kept for the backtest); before
    them, the last ``validation_days`` of each meter's own history (up to its last reading) are
    its early-stopping split.
    Model: an LSTM over patches of ``patch_slots`` slots of the ``lookback_slots`` input, plus a
    linear path from the scaled load, to ``horizon_slots x quantile_levels`` outputs.
    """

    resolution_seconds: int = 1800
    lookback_slots: int = 336
    horizon_slots: int = 48
    features: tuple[str, ...] = DEFAULT_FEATURES
    holidays: tuple[date, ...] = ()
    #: The clock of the calendar features: "local" (each meter's zone, from the history's
    #: ``time_zone`` column, else ``time_zone``) or "utc" (how ``lstm:1`` was trained).
    calendar_time: str = "local"
    time_zone: str = "UTC"
    quantile_levels: tuple[float, ...] = (0.1, 0.5, 0.9)
    epsilon: float = DEFAULT_EPSILON
    min_history_fraction: float = 0.25
    hidden_size: int = 64
    num_layers: int = 1
    patch_slots: int = 4
    epochs: int = 30
    batch_size: int = 256
    samples_per_epoch: int = 32_768
    max_validation_windows: int = 8_192
    learning_rate: float = 2e-3
    weight_decay: float = 0.0
    patience: int = 5
    min_delta: float = 1e-4
    validation_days: float = 7.0
    holdout_days: float = 0.0
    gap_probability: float = 0.2
    max_gap_slots: int = 48
    prefix_mask_probability: float = 0.05
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    opset: int = 18
    parity_batch_sizes: tuple[int, ...] = (1, 7, 256)
    parity_tolerance: float = 1e-4
    reference_windows: int = 4_096
    progress: bool = True
    notes: str = ""
    #: A version directory to fine-tune from (its architecture and weights); None: from scratch.
    init_from: Path | None = None

    def __post_init__(self) -> None:
        positive = {
            "resolution_seconds": self.resolution_seconds,
            "lookback_slots": self.lookback_slots,
            "horizon_slots": self.horizon_slots,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "patch_slots": self.patch_slots,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "samples_per_epoch": self.samples_per_epoch,
            "max_validation_windows": self.max_validation_windows,
            "patience": self.patience,
            "max_gap_slots": self.max_gap_slots,
            "reference_windows": self.reference_windows,
        }
        for name, value in positive.items():
            if value < 1:
                raise TrainConfigError(f"{name} must be a positive integer, got {value}")
        if 86_400 % self.resolution_seconds:
            raise TrainConfigError(
                f"resolution_seconds={self.resolution_seconds} must divide 86400 (e.g. 1800)"
            )
        if self.lookback_slots % self.patch_slots:
            raise TrainConfigError(
                f"lookback_slots ({self.lookback_slots}) must be a multiple of patch_slots "
                f"({self.patch_slots})"
            )
        if 0.5 not in self.quantile_levels:
            raise TrainConfigError(
                f"quantile_levels {self.quantile_levels} must contain 0.5 (the point forecast)"
            )
        if not 0.0 < self.min_history_fraction <= 1.0:
            raise TrainConfigError(
                f"min_history_fraction must be in (0, 1], got {self.min_history_fraction}"
            )
        if self.validation_days <= 0 or self.holdout_days < 0:
            raise TrainConfigError(
                "validation_days must be positive and holdout_days non-negative, got "
                f"{self.validation_days} and {self.holdout_days}"
            )
        if self.calendar_time not in ("local", "utc"):
            raise TrainConfigError(
                f"calendar_time must be 'local' or 'utc', got {self.calendar_time!r}"
            )
        if not is_known_zone(self.time_zone):
            raise TrainConfigError(
                f"time_zone {self.time_zone!r} is not an IANA zone name (e.g. 'Europe/London')"
            )
        if self.opset < 17:
            raise TrainConfigError(f"opset must be at least 17, got {self.opset}")

    @property
    def slots_per_day(self) -> int:
        return 86_400 // self.resolution_seconds

    @property
    def min_history_slots(self) -> int:
        """Finite values a row needs in its lookback to be forecast."""
        return max(1, math.ceil(self.min_history_fraction * self.lookback_slots))

    @property
    def validation_slots(self) -> int:
        return round(self.validation_days * self.slots_per_day)

    @property
    def holdout_slots(self) -> int:
        return round(self.holdout_days * self.slots_per_day)

    def hyperparameters(self) -> dict[str, int | float | str | bool]:
        """The model and optimiser settings recorded in the card."""
        return {
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "patch_slots": self.patch_slots,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "samples_per_epoch": self.samples_per_epoch,
            "learning_rate": self.learning_rate,
            "weight_decay": self.weight_decay,
            "patience": self.patience,
            "gap_probability": self.gap_probability,
            "max_gap_slots": self.max_gap_slots,
            "prefix_mask_probability": self.prefix_mask_probability,
            "seed": self.seed,
            "loss": "pinball",
            "init_from": "" if self.init_from is None else str(self.init_from),
        }


@dataclass(frozen=True, slots=True)
class EpochStats:
    """One finished epoch, handed to ``on_epoch`` callbacks."""

    epoch: int
    train_pinball: float
    validation_pinball: float
    learning_rate: float
    seconds: float
    improved: bool


@dataclass(frozen=True, slots=True)
class TrainSummary:
    """What a run is about to train on, handed to ``on_summary`` before epoch 1.

    The periods are the first and last slot ends (UTC) that each set's targets cover, over all
    meters (each meter's validation period is the end of its own history).
    """

    meters: int
    train_meters: int
    train_windows: int
    validation_windows: int
    train_period: tuple[datetime, datetime]
    validation_period: tuple[datetime, datetime]
    resolution_seconds: int
    lookback_slots: int
    horizon_slots: int
    epochs: int
    device: str

    def describe(self) -> str:
        """A few lines for the terminal."""

        def period(span: tuple[datetime, datetime]) -> str:
            return f"{span[0]:%Y-%m-%d %H:%M} .. {span[1]:%Y-%m-%d %H:%M} UTC"

        return "\n".join(
            [
                f"Training on {self.meters:,} meters ({self.train_meters:,} with training "
                f"windows), {self.resolution_seconds} s slots",
                f"  training:   {self.train_windows:,} windows, targets "
                f"{period(self.train_period)}",
                f"  validation: {self.validation_windows:,} windows (each meter's own last "
                f"days), targets {period(self.validation_period)}",
                f"  lookback {self.lookback_slots} slots, horizon {self.horizon_slots} slots, "
                f"up to {self.epochs} epochs on {self.device}",
            ]
        )


@dataclass(frozen=True, slots=True)
class TrainReport:
    """What :func:`streamer.train.train_main` produced."""

    out_dir: Path
    model_path: Path
    card_path: Path
    triton_config_path: Path
    device: str
    epochs_run: int
    best_epoch: int
    best_validation_pinball: float
    train_windows: int
    validation_windows: int
    seconds: float
    parity_max_abs_diff: dict[int, float] = field(default_factory=dict)
    history: tuple[EpochStats, ...] = ()
    stopped: bool = False
