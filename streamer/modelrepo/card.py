"""The model card: ``card.json`` beside ``model.onnx``, the contract between training and serving.

Everything model-specific the worker needs (tensor names and shapes, lookback, horizon, feature
list, scaling, quantile levels) is read from here, never hard-coded. Training writes it; serving
validates it at load (:func:`load_card`) and again against the ONNX session's real tensors.

Schema version 1 (``schema_version: 1``). A change that an older reader cannot understand bumps
the version; :func:`load_card` refuses versions it does not know with a sentence saying so.
"""

from __future__ import annotations

import itertools
import json
import math
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from streamer.modelrepo.checksum import sha256_file
from streamer.modelrepo.errors import ModelCardError

CARD_SCHEMA_VERSION: Final = 1
_FIX: Final = "fix the card, or re-train/re-export the model with `streamer train`"

PositiveInt = Annotated[int, Field(ge=1)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


#: The per-window scale (mean |kWh| of the lookback, what ``load_scaled`` divides by): a
#: reference the card may keep beside those of the input features, to see level shifts.
WINDOW_SCALE_FEATURE = "window_scale_kwh"
DERIVED_REFERENCES = (WINDOW_SCALE_FEATURE,)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TensorSpec(_Frozen):
    """One ONNX input or output. ``shape`` uses ``-1`` for the dynamic batch axis (first only)."""

    name: Annotated[str, Field(min_length=1)]
    shape: tuple[int, ...]
    dtype: Literal["float32"] = "float32"

    @field_validator("shape")
    @classmethod
    def _check_shape(cls, shape: tuple[int, ...]) -> tuple[int, ...]:
        if not shape:
            raise ValueError("shape must have at least one axis")
        if shape[0] != -1 and shape[0] < 1:
            raise ValueError(f"batch axis must be -1 (dynamic) or positive, got {shape[0]}")
        if any(d < 1 for d in shape[1:]):
            raise ValueError(f"axes after the batch axis must be positive, got {list(shape)}")
        return shape


class ScalingSpec(_Frozen):
    """How the load is scaled per row before the model and scaled back after it.

    ``mean_abs``: ``scale = mean(|finite load values of the lookback|) + epsilon``; the model sees
    ``load / scale`` (missing slots as 0 with ``is_missing = 1``) and its outputs are multiplied
    by ``scale``.
    """

    method: Literal["mean_abs"] = "mean_abs"
    epsilon: Annotated[float, Field(gt=0.0, allow_inf_nan=False)]


class FeatureReference(_Frozen):
    """Distribution of one input feature over the training windows, for drift detection:
    ``proportions[i]`` of the values fell in ``[bin_edges[i], bin_edges[i + 1])`` (the last bin
    is closed; values outside the edges are counted in the nearest end bin)."""

    feature: Annotated[str, Field(min_length=1)]
    bin_edges: tuple[FiniteFloat, ...]
    proportions: tuple[FiniteFloat, ...]

    @model_validator(mode="after")
    def _check_bins(self) -> FeatureReference:
        edges, props = self.bin_edges, self.proportions
        if len(edges) < 2 or any(b <= a for a, b in itertools.pairwise(edges)):
            raise ValueError(
                f"reference {self.feature!r}: bin_edges must be strictly increasing with at "
                "least 2 edges"
            )
        if len(props) != len(edges) - 1:
            raise ValueError(
                f"reference {self.feature!r}: {len(props)} proportions for {len(edges) - 1} bins"
            )
        if any(p < 0 for p in props) or not math.isclose(sum(props), 1.0, abs_tol=1e-4):
            raise ValueError(
                f"reference {self.feature!r}: proportions must be >= 0 and sum to 1, "
                f"sum is {sum(props):.6f}"
            )
        return self


class TrainingData(_Frozen):
    """What the model was trained on."""

    source: str
    meters: PositiveInt
    first_ts: AwareDatetime
    last_ts: AwareDatetime
    rows: Annotated[int, Field(ge=0)]
    train_windows: Annotated[int, Field(ge=0)]
    validation_windows: Annotated[int, Field(ge=0)]
    validation_days: Annotated[float, Field(ge=0)]
    holdout_days: Annotated[float, Field(ge=0)] = 0.0
    seed: int | None = None

    @field_validator("first_ts", "last_ts")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @field_serializer("first_ts", "last_ts")
    def _rfc3339(self, value: datetime) -> str:
        return _format_datetime(value)


class TrainingSummary(_Frozen):
    """How training went."""

    epochs_run: Annotated[int, Field(ge=0)]
    best_epoch: Annotated[int, Field(ge=0)]
    best_validation_pinball: float | None
    device: str
    seconds: Annotated[float, Field(ge=0)]
    torch_version: str
    hyperparameters: dict[str, int | float | str | bool]


class BacktestMetrics(_Frozen):
    """One model's overall backtest metrics (``None`` where undefined)."""

    model: str
    version: str = "1"
    mae_kwh: float | None = None
    rmse_kwh: float | None = None
    smape_percent: float | None = None
    mase: float | None = None
    pinball_kwh: float | None = None
    coverage: float | None = None
    nominal_coverage: float | None = None


class BacktestSummary(_Frozen):
    """The rolling-origin backtest this version achieved (``BACKTEST.md`` has the tables)."""

    command: str
    history: str
    meters: PositiveInt
    origins: PositiveInt
    holdout_slots: PositiveInt
    origin_step_slots: PositiveInt
    lookback_slots: PositiveInt
    mase_season_slots: PositiveInt
    models: tuple[BacktestMetrics, ...]


class ModelCard(_Frozen):
    """Schema version 1 of ``card.json``. See the module docstring."""

    schema_version: Literal[1]
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    version: Annotated[str, Field(pattern=r"^[1-9][0-9]*$")]
    created_at: AwareDatetime
    model_file: Annotated[str, Field(min_length=1)] = "model.onnx"
    #: PyTorch weights beside the model (``weights.npz``), for ``train --init-from``.
    weights_file: str | None = None
    model_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    onnx_opset: Annotated[int, Field(ge=17)]
    resolution_seconds: PositiveInt
    lookback_slots: PositiveInt
    horizon_slots: PositiveInt
    min_history_slots: PositiveInt
    features: tuple[str, ...]
    scaling: ScalingSpec
    quantile_levels: tuple[float, ...]
    point_quantile: float = 0.5
    holidays: tuple[date, ...] = ()
    #: The clock of the calendar features and holidays: ``"utc"`` (cards written before local
    #: time, such as ``lstm:1``) or ``"local"`` (each meter's own zone, else the fleet's).
    calendar_time: Literal["utc", "local"] = "utc"
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    training_data: TrainingData | None = None
    training: TrainingSummary | None = None
    reference: tuple[FeatureReference, ...] = ()
    backtest: BacktestSummary | None = None
    notes: str = ""

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @field_serializer("created_at")
    def _rfc3339(self, value: datetime) -> str:
        return _format_datetime(value)

    @field_validator("resolution_seconds")
    @classmethod
    def _divides_day(cls, value: int) -> int:
        if 86_400 % value:
            raise ValueError(f"{value} must divide 86400 (e.g. 900, 1800, 3600)")
        return value

    @field_validator("features")
    @classmethod
    def _unique_features(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or len(set(value)) != len(value) or not all(value):
            raise ValueError(f"must be a non-empty list of unique names, got {list(value)}")
        return value

    @field_validator("quantile_levels")
    @classmethod
    def _increasing_levels(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        ok = value and all(0.0 < q < 1.0 for q in value)
        if not ok or any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError(f"must be strictly increasing inside (0, 1), got {list(value)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModelCard:
        if self.min_history_slots > self.lookback_slots:
            raise ValueError(
                f"min_history_slots: {self.min_history_slots} exceeds lookback_slots "
                f"{self.lookback_slots}"
            )
        if self.point_quantile not in self.quantile_levels:
            raise ValueError(
                f"point_quantile: {self.point_quantile} is not one of quantile_levels "
                f"{list(self.quantile_levels)}"
            )
        expected_in = (-1, self.lookback_slots, len(self.features))
        expected_out = (-1, self.horizon_slots, len(self.quantile_levels))
        for field, tensors, expected in (
            ("inputs", self.inputs, expected_in),
            ("outputs", self.outputs, expected_out),
        ):
            if len(tensors) != 1:
                raise ValueError(f"{field}: expected exactly one tensor, got {len(tensors)}")
            if tensors[0].shape != expected:
                raise ValueError(
                    f"{field}[0].shape: {list(tensors[0].shape)} does not match "
                    f"{list(expected)} (batch, lookback/horizon slots, features/quantiles)"
                )
        unknown = [
            r.feature
            for r in self.reference
            if r.feature not in self.features and r.feature not in DERIVED_REFERENCES
        ]
        if unknown:
            raise ValueError(
                f"reference: features {unknown} are neither in features nor one of "
                f"{list(DERIVED_REFERENCES)}"
            )
        return self

    @property
    def input(self) -> TensorSpec:
        """The one input tensor."""
        return self.inputs[0]

    @property
    def output(self) -> TensorSpec:
        """The one output tensor."""
        return self.outputs[0]

    @property
    def point_index(self) -> int:
        """Index of :attr:`point_quantile` in :attr:`quantile_levels`."""
        return self.quantile_levels.index(self.point_quantile)


def _format_datetime(value: datetime) -> str:
    text = value.astimezone(UTC).isoformat(timespec="seconds")
    return text.replace("+00:00", "Z")


def _loc(parts: tuple[int | str, ...]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def card_error_from_validation(where: str, exc: ValidationError) -> ModelCardError:
    """One :class:`ModelCardError` naming ``where`` and each failing field."""
    problems = []
    for err in exc.errors():
        loc = _loc(tuple(err["loc"]))
        message = str(err["msg"]).removeprefix("Value error, ")
        if message == "Field required":
            message = "field required"
        problems.append(f"{loc}: {message}" if loc else message)
    return ModelCardError(f"{where}: {'; '.join(problems)} ({_FIX})")


def parse_card(data: Any, *, where: str = "card") -> ModelCard:
    """Validate a decoded card (a dict) and return it. Errors name ``where`` and the field."""
    if not isinstance(data, dict):
        raise ModelCardError(f"{where}: a card must be a JSON object, got {type(data).__name__}")
    version = data.get("schema_version")
    if version is not None and version != CARD_SCHEMA_VERSION:
        raise ModelCardError(
            f"{where}: schema_version: unknown schema version {version!r}; this streamer reads "
            f"schema version {CARD_SCHEMA_VERSION}. Upgrade streamer, or re-export the model "
            "with this version's `streamer train`"
        )
    try:
        return ModelCard.model_validate(data)
    except ValidationError as exc:
        raise card_error_from_validation(where, exc) from None


def card_path_of(path: str | Path) -> Path:
    """``path`` itself, or ``path/card.json`` when ``path`` is a version directory."""
    target = Path(path)
    return target / "card.json" if target.is_dir() else target


def load_card(path: str | Path, *, verify_model: bool = True) -> ModelCard:
    """Read and validate ``card.json`` (or the card of a version directory).

    With ``verify_model`` the model file named by the card must exist beside it and its SHA-256
    must equal ``model_sha256``. Raises :class:`ModelCardError` naming the file and field.
    """
    card_file = card_path_of(path)
    try:
        text = card_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelCardError(
            f"{card_file}: no model card here; a model version directory needs card.json beside "
            "model.onnx (write both with `streamer train`)"
        ) from None
    except OSError as exc:
        raise ModelCardError(f"{card_file}: cannot read it ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelCardError(f"{card_file}: not valid JSON ({exc}); {_FIX}") from None
    card = parse_card(data, where=str(card_file))
    if verify_model:
        verify_model_file(card, card_file)
    return card


def verify_model_file(card: ModelCard, card_file: Path) -> Path:
    """The model file beside ``card_file``, checked against the card's SHA-256."""
    model_file = card_file.parent / card.model_file
    if not model_file.is_file():
        raise ModelCardError(
            f"{card_file}: model_file: {model_file} does not exist; put the exported model "
            "beside its card or fix model_file"
        )
    actual = sha256_file(model_file)
    if actual != card.model_sha256:
        raise ModelCardError(
            f"{model_file} does not match {card_file}: model_sha256 is {card.model_sha256}, "
            f"the file's SHA-256 is {actual}; restore the model file that belongs to this card "
            "or re-export both with `streamer train`"
        )
    return model_file


def dump_card(card: ModelCard) -> str:
    """The card as indented JSON text (a trailing newline included)."""
    return json.dumps(card.model_dump(mode="json"), indent=2) + "\n"


def write_card(card: ModelCard, path: str | Path) -> Path:
    """Write ``card`` to ``path`` (a file, or ``path/card.json`` for a directory)."""
    target = card_path_of(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(dump_card(card), encoding="utf-8")
    return target
