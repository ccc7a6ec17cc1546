"""Model card: round trip, and errors that name the file and the field."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from streamer.modelrepo import (
    ModelCard,
    ModelCardError,
    dump_card,
    load_card,
    parse_card,
    write_card,
)
from tests.unit.modelrepo.card_factory import card_dict, write_version


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    folder = write_version(tmp_path)
    card = load_card(folder / "card.json")
    assert card.horizon_slots == 48
    assert card.created_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert card.training_data is not None
    assert card.training_data.last_ts == datetime(2025, 12, 15, 23, 0, tzinfo=UTC)
    assert card.holidays == (date(2025, 12, 25),)
    assert card.point_index == 1
    write_card(card, folder)
    again = load_card(folder)
    assert again == card
    assert json.loads(dump_card(again))["created_at"] == "2026-01-02T03:04:05Z"


def test_card_is_frozen() -> None:
    card = parse_card(card_dict())
    with pytest.raises(ValueError, match="frozen"):
        card.horizon_slots = 24  # type: ignore[misc]


def test_missing_field_names_file_and_field(tmp_path: Path) -> None:
    data = card_dict()
    del data["horizon_slots"]
    folder = write_version(tmp_path, data)
    with pytest.raises(ModelCardError) as err:
        load_card(folder / "card.json")
    assert f"{folder / 'card.json'}: horizon_slots: field required" in str(err.value)


def test_wrong_input_shape_is_named(tmp_path: Path) -> None:
    data = card_dict(inputs=[{"name": "inputs", "shape": [-1, 100, 6], "dtype": "float32"}])
    folder = write_version(tmp_path, data)
    with pytest.raises(ModelCardError, match=r"inputs\[0\]\.shape: \[-1, 100, 6\] does not match"):
        load_card(folder)


def test_only_the_batch_axis_may_be_dynamic() -> None:
    data = card_dict(outputs=[{"name": "q", "shape": [-1, -1, 3], "dtype": "float32"}])
    with pytest.raises(ModelCardError, match=r"outputs\[0\]\.shape"):
        parse_card(data, where="c.json")


def test_sha_mismatch_names_both_files(tmp_path: Path) -> None:
    folder = write_version(tmp_path)
    (folder / "model.onnx").write_bytes(b"something else")
    with pytest.raises(ModelCardError) as err:
        load_card(folder)
    message = str(err.value)
    assert str(folder / "model.onnx") in message
    assert str(folder / "card.json") in message
    assert "model_sha256" in message
    assert load_card(folder, verify_model=False).name == "lstm"


def test_missing_model_file(tmp_path: Path) -> None:
    folder = write_version(tmp_path)
    (folder / "model.onnx").unlink()
    with pytest.raises(ModelCardError, match=r"model_file: .* does not exist"):
        load_card(folder)


@pytest.mark.parametrize("version", [2, 0, "1"])
def test_unknown_schema_version(version: object) -> None:
    with pytest.raises(ModelCardError, match="schema_version: unknown schema version"):
        parse_card(card_dict(schema_version=version), where="x/card.json")


def test_invalid_json_and_missing_card(tmp_path: Path) -> None:
    bad = tmp_path / "card.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelCardError, match="not valid JSON"):
        load_card(bad)
    with pytest.raises(ModelCardError, match="no model card here"):
        load_card(tmp_path / "nothing" / "card.json")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"quantile_levels": [0.9, 0.5, 0.1]}, "quantile_levels"),
        ({"point_quantile": 0.3}, "point_quantile"),
        ({"resolution_seconds": 7}, "resolution_seconds"),
        ({"min_history_slots": 400}, "min_history_slots"),
        ({"features": ["a", "a", "b", "c", "d", "e"]}, "features"),
        ({"model_sha256": "xyz"}, "model_sha256"),
        ({"version": "v1"}, "version"),
        ({"onnx_opset": 13}, "onnx_opset"),
        ({"created_at": "2026-01-02T03:04:05"}, "created_at"),
        ({"unexpected": 1}, "unexpected"),
        (
            {"reference": [{"feature": "x", "bin_edges": [0, 1], "proportions": [1.0]}]},
            "reference",
        ),
        (
            {"reference": [{"feature": "tod_sin", "bin_edges": [0, 1], "proportions": [0.5]}]},
            "reference[0]",
        ),
    ],
)
def test_invalid_values_name_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ModelCardError) as err:
        parse_card(card_dict(**overrides), where="m/card.json")
    assert str(err.value).startswith(f"m/card.json: {field}")


def test_valid_card_type() -> None:
    assert isinstance(parse_card(card_dict()), ModelCard)
    with pytest.raises(ModelCardError, match="must be a JSON object"):
        parse_card([1, 2], where="w")
