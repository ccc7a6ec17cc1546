"""The committed default model behind the Forecaster protocol, and load-time validation."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from streamer.forecast import ForecasterSpecError, ForecastInputError, make_forecaster
from streamer.forecast.protocol import Forecaster
from streamer.forecast.registry import ForecasterFactory
from streamer.inference import (
    ModelLoadError,
    OnnxForecaster,
    OnnxModel,
    build_inputs,
    register_lstm,
)
from streamer.modelrepo import ModelCardError, sha256_file
from streamer.simulate.fleet import FleetModel

REPO = Path(__file__).resolve().parents[3]
MODELS = REPO / "models"
DEFAULT = MODELS / "lstm" / "1"
END_MS = 1_767_571_200_000  # 2026-01-05T00:00:00Z


@pytest.fixture(scope="module")
def model() -> OnnxModel:
    return OnnxModel(DEFAULT, providers=["CPUExecutionProvider"], max_batch_size=16)


@pytest.fixture(scope="module")
def history() -> np.ndarray:
    fleet = FleetModel(40, seed=5, resolution_seconds=1800)
    ends = np.arange(END_MS - 335 * 1_800_000, END_MS + 1, 1_800_000, dtype=np.int64)
    return fleet.load_kwh(ends)


def _ends(rows: int) -> np.ndarray:
    return np.full(rows, END_MS, dtype=np.int64)


def test_default_model_forecasts_finite_values_of_the_right_shapes(
    model: OnnxModel, history: np.ndarray
) -> None:
    forecaster = OnnxForecaster(model)
    assert isinstance(forecaster, Forecaster)
    assert (forecaster.name, forecaster.version) == ("lstm", "1")
    assert forecaster.quantile_levels == (0.1, 0.5, 0.9)
    batch = forecaster.forecast(history, _ends(40), 1800)  # 40 rows: chunks of 16
    assert batch.point_kwh.shape == (40, 48) and batch.quantiles_kwh.shape == (40, 48, 3)
    assert batch.valid.all() and np.isfinite(batch.quantiles_kwh).all()
    assert (np.diff(batch.quantiles_kwh, axis=-1) >= 0).all()
    # a plausible forecast: the median's daily energy is near the last day's
    last_day = history[:, -48:].sum(axis=1)
    ratio = batch.point_kwh.sum(axis=1) / np.where(last_day == 0, 1, last_day)
    assert np.median(np.abs(ratio)) == pytest.approx(1.0, abs=0.5)


def test_rows_are_independent_and_deterministic(model: OnnxModel, history: np.ndarray) -> None:
    forecaster = OnnxForecaster(model)
    whole = forecaster.forecast(history, _ends(40), 1800)
    alone = forecaster.forecast(history[7:8], _ends(1), 1800)
    np.testing.assert_allclose(alone.quantiles_kwh[0], whole.quantiles_kwh[7], rtol=1e-5)
    again = forecaster.forecast(history, _ends(40), 1800)
    np.testing.assert_array_equal(again.quantiles_kwh, whole.quantiles_kwh)


def test_rows_without_enough_history_are_invalid(model: OnnxModel, history: np.ndarray) -> None:
    forecaster = OnnxForecaster(model)
    hist = history[:4].copy()
    hist[1, :] = np.nan
    hist[2, : 336 - forecaster.min_history_slots + 1] = np.nan  # one finite value too few
    hist[3, 100:140] = np.nan  # a gap: still fine
    batch = forecaster.forecast(hist, _ends(4), 1800)
    assert batch.valid.tolist() == [True, False, False, True]
    assert np.isnan(batch.point_kwh[1]).all() and np.isfinite(batch.point_kwh[3]).all()
    short = forecaster.forecast(history[:2, -200:], _ends(2), 1800)  # left-padded
    assert short.valid.all()


def test_bad_calls_are_input_errors(model: OnnxModel, history: np.ndarray) -> None:
    forecaster = OnnxForecaster(model)
    with pytest.raises(ForecastInputError, match="STREAMER_RESOLUTION_SECONDS=1800"):
        forecaster.forecast(history, _ends(40), 900)
    with pytest.raises(ForecastInputError, match="at least 84 history slots"):
        forecaster.forecast(history[:, -50:], _ends(40), 1800)
    with pytest.raises(ForecasterSpecError, match="horizon_slots"):
        OnnxForecaster(model, horizon_slots=49)
    short = OnnxForecaster(model, horizon_slots=12).forecast(history[:2], _ends(2), 1800)
    assert short.point_kwh.shape == (2, 12)
    empty = forecaster.forecast(np.empty((0, 336)), np.empty(0, dtype=np.int64), 1800)
    assert empty.rows == 0


def test_providers_are_reported(model: OnnxModel) -> None:
    assert model.providers_requested == ("CPUExecutionProvider",)
    assert model.providers_in_use == ("CPUExecutionProvider",)
    assert model.fell_back_to_cpu is False


def test_registration_builds_the_session_once(history: np.ndarray) -> None:
    factories: dict[str, ForecasterFactory] = {}
    register_lstm(MODELS, providers=["cpu"], factories=factories)
    register_lstm(MODELS, providers=["cpu"], factories=factories)  # idempotent
    newest = make_forecaster("lstm", horizon_slots=48, resolution_seconds=1800, factories=factories)
    newest_version = f"lstm:{newest.version}"
    first = make_forecaster(
        newest_version, horizon_slots=24, resolution_seconds=1800, factories=factories
    )
    assert isinstance(newest, OnnxForecaster) and isinstance(first, OnnxForecaster)
    assert newest.model is first.model  # one session per version, whatever the horizon
    assert first.horizon_slots == 24
    assert newest.forecast(history[:3], _ends(3), 1800).valid.all()
    with pytest.raises(ForecasterSpecError, match="versions available: 1, 2"):
        make_forecaster("lstm:9", horizon_slots=48, resolution_seconds=1800, factories=factories)
    with pytest.raises(ForecasterSpecError, match="resolution_seconds"):
        make_forecaster("lstm:1", horizon_slots=48, resolution_seconds=900, factories=factories)


def _copy_default(tmp_path: Path) -> Path:
    target = tmp_path / "lstm" / "1"
    shutil.copytree(DEFAULT, target)
    return target


def _edit_card(folder: Path, **changes: object) -> None:
    card_file = folder / "card.json"
    data = json.loads(card_file.read_text(encoding="utf-8"))
    data.update(changes)
    card_file.write_text(json.dumps(data), encoding="utf-8")


def test_card_that_disagrees_with_the_session_names_file_and_field(tmp_path: Path) -> None:
    folder = _copy_default(tmp_path)
    card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    renamed = [{**card["inputs"][0], "name": "x"}]
    _edit_card(folder, inputs=renamed)
    with pytest.raises(ModelLoadError) as err:
        OnnxModel(folder, providers=["cpu"])
    assert f"{folder / 'card.json'}: inputs[0].name is 'x'" in str(err.value)
    assert str(folder / "model.onnx") in str(err.value)

    shorter = [{**card["inputs"][0], "shape": [-1, 168, 6]}]
    _edit_card(folder, inputs=card["inputs"])
    _edit_card(folder, inputs=shorter, lookback_slots=168)
    with pytest.raises(ModelLoadError, match=r"inputs\[0\]\.shape is \[-1, 168, 6\]"):
        OnnxModel(folder, providers=["cpu"])


def test_corrupt_model_file_is_a_load_error(tmp_path: Path) -> None:
    folder = _copy_default(tmp_path)
    (folder / "model.onnx").write_bytes(b"\x08\x07garbage" * 100)
    with pytest.raises(ModelCardError, match="does not match"):
        OnnxModel(folder, providers=["cpu"])
    _edit_card(folder, model_sha256=sha256_file(folder / "model.onnx"))
    with pytest.raises(ModelLoadError, match="ONNX Runtime cannot load the model"):
        OnnxModel(folder, providers=["cpu"])


def test_unknown_feature_in_card(tmp_path: Path) -> None:
    folder = _copy_default(tmp_path)
    card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    features = ["temperature", *card["features"][1:]]
    _edit_card(folder, features=features, reference=[])
    with pytest.raises(ModelCardError, match=r"features: .*unknown feature"):
        OnnxModel(folder, providers=["cpu"])


def test_worker_import_path_never_imports_torch() -> None:
    code = (
        "import sys\n"
        "import streamer.inference, streamer.modelrepo\n"
        "from streamer.inference import OnnxModel, register_lstm\n"
        "import streamer.train\n"
        f"OnnxModel({str(DEFAULT)!r}, providers=['cpu'])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_io_binding_writes_the_session_outputs_into_the_callers_array(
    model: OnnxModel, history: np.ndarray
) -> None:
    # the path a GPU session takes (on by default where CUDA runs the model), here on CPU
    bound = OnnxModel(
        DEFAULT, providers=["CPUExecutionProvider"], max_batch_size=16, io_binding=True
    )
    assert model.io_binding is False  # CPU: off by default
    inputs = build_inputs(history[:40], _ends(40), model.feature_spec).values
    plain, via_binding = model.run(inputs), bound.run(inputs)  # 40 rows: chunks of 16
    assert via_binding.shape == plain.shape and np.array_equal(via_binding, plain)
