"""Where models live: ``<models_dir>/<name>/<version>/{model.onnx, card.json}`` and
``<models_dir>/<name>/config.pbtxt`` (a Triton model repository layout)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from streamer.modelrepo.errors import ModelNotFoundError

MODEL_FILE: Final = "model.onnx"
CARD_FILE: Final = "card.json"
TRITON_CONFIG_FILE: Final = "config.pbtxt"
#: PyTorch weights beside the model, for fine-tuning (``streamer train --init-from``).
WEIGHTS_FILE: Final = "weights.npz"


def model_dir(models_dir: str | Path, name: str, version: int | str) -> Path:
    """``<models_dir>/<name>/<version>`` (not checked for existence)."""
    text = str(version)
    if not text.isdigit() or int(text) < 1:
        raise ModelNotFoundError(
            f"model version {version!r} must be a positive integer (directories 1, 2, ...)"
        )
    return Path(models_dir) / name / str(int(text))


def list_versions(models_dir: str | Path, name: str) -> list[int]:
    """Versions of ``name`` that have a card, ascending. Empty when there are none."""
    root = Path(models_dir) / name
    if not root.is_dir():
        return []
    return sorted(
        int(child.name)
        for child in root.iterdir()
        if child.is_dir() and child.name.isdigit() and int(child.name) > 0
        if (child / CARD_FILE).is_file()
    )


def latest_version(models_dir: str | Path, name: str) -> int:
    """The newest version of ``name``; :class:`ModelNotFoundError` when there is none."""
    versions = list_versions(models_dir, name)
    if not versions:
        raise ModelNotFoundError(
            f"no versions of model {name!r} under {Path(models_dir) / name} (expected "
            f"<version>/{CARD_FILE} beside <version>/{MODEL_FILE}); train one with "
            f"`streamer train --out {Path(models_dir) / name}/1` or set the models directory"
        )
    return versions[-1]


def resolve_version(models_dir: str | Path, name: str, version: str | None) -> Path:
    """The directory of ``name:version`` (``None`` or ``"latest"``: the newest version)."""
    if version is None or version in ("", "latest"):
        return model_dir(models_dir, name, latest_version(models_dir, name))
    path = model_dir(models_dir, name, version)
    if not (path / CARD_FILE).is_file():
        have = ", ".join(map(str, list_versions(models_dir, name))) or "none"
        raise ModelNotFoundError(
            f"model {name}:{version} not found: {path / CARD_FILE} does not exist "
            f"(versions available: {have})"
        )
    return path


def version_dir_of(models_dir: str | Path, spec: str) -> Path:
    """``lstm:2`` (or ``lstm``, the newest) under ``models_dir``, or a version directory path."""
    candidate = Path(spec)
    if (candidate / CARD_FILE).is_file():
        return candidate
    name, _, version = spec.partition(":")
    if not name or "/" in name:
        raise ModelNotFoundError(
            f"{spec!r} is neither a model version (name:version, e.g. lstm:2) nor a version "
            f"directory holding {CARD_FILE}"
        )
    return resolve_version(models_dir, name, version or None)
