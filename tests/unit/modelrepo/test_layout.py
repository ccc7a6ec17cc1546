"""Repository layout helpers and the Triton config."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamer.modelrepo import (
    ModelNotFoundError,
    latest_version,
    list_versions,
    load_card,
    model_dir,
    resolve_version,
    triton_config_text,
    write_triton_config,
)
from tests.unit.modelrepo.card_factory import write_version


def test_versions_are_numeric_and_need_a_card(tmp_path: Path) -> None:
    for version in ("1", "2", "10"):
        write_version(tmp_path, version=version)
    (tmp_path / "lstm" / "3").mkdir()  # no card: not a version
    (tmp_path / "lstm" / "draft").mkdir()
    assert list_versions(tmp_path, "lstm") == [1, 2, 10]
    assert latest_version(tmp_path, "lstm") == 10
    assert resolve_version(tmp_path, "lstm", None) == tmp_path / "lstm" / "10"
    assert resolve_version(tmp_path, "lstm", "latest") == tmp_path / "lstm" / "10"
    assert resolve_version(tmp_path, "lstm", "2") == tmp_path / "lstm" / "2"
    assert model_dir(tmp_path, "lstm", 7) == tmp_path / "lstm" / "7"


def test_missing_versions_say_what_exists(tmp_path: Path) -> None:
    assert list_versions(tmp_path, "lstm") == []
    with pytest.raises(ModelNotFoundError, match="no versions of model 'lstm'"):
        latest_version(tmp_path, "lstm")
    write_version(tmp_path, version="1")
    with pytest.raises(ModelNotFoundError, match=r"versions available: 1"):
        resolve_version(tmp_path, "lstm", "4")
    with pytest.raises(ModelNotFoundError, match="positive integer"):
        model_dir(tmp_path, "lstm", "x")


def test_triton_config(tmp_path: Path) -> None:
    card = load_card(write_version(tmp_path))
    text = triton_config_text(card)
    assert 'platform: "onnxruntime_onnx"' in text
    assert "max_batch_size: 0" in text
    assert 'name: "inputs"' in text and "dims: [ -1, 336, 6 ]" in text
    assert 'name: "quantiles"' in text and "dims: [ -1, 48, 3 ]" in text
    assert text.count("TYPE_FP32") == 2
    path = write_triton_config(tmp_path / "lstm", card)
    assert path == tmp_path / "lstm" / "config.pbtxt"
    assert path.read_text(encoding="utf-8") == text
