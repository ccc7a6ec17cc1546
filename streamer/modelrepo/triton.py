"""Triton Inference Server ``config.pbtxt`` for a model name, written from its card, so that
``models/`` can be served by Triton as it is."""

from __future__ import annotations

from pathlib import Path

from streamer.modelrepo.card import ModelCard, TensorSpec
from streamer.modelrepo.layout import TRITON_CONFIG_FILE

_TRITON_DTYPES = {"float32": "TYPE_FP32"}


def _tensor(spec: TensorSpec) -> str:
    dims = ", ".join(str(d) for d in spec.shape)
    return (
        "  {\n"
        f'    name: "{spec.name}"\n'
        f"    data_type: {_TRITON_DTYPES[spec.dtype]}\n"
        f"    dims: [ {dims} ]\n"
        "  }"
    )


def triton_config_text(card: ModelCard) -> str:
    """``config.pbtxt`` text: platform ``onnxruntime_onnx``, ``max_batch_size: 0`` with the
    dynamic batch axis spelled ``-1`` in ``dims``, tensors named as in the card."""
    inputs = ",\n".join(_tensor(t) for t in card.inputs)
    outputs = ",\n".join(_tensor(t) for t in card.outputs)
    return (
        f'name: "{card.name}"\n'
        'platform: "onnxruntime_onnx"\n'
        "max_batch_size: 0\n"
        f"input [\n{inputs}\n]\n"
        f"output [\n{outputs}\n]\n"
        "version_policy: { latest { num_versions: 1 } }\n"
    )


def write_triton_config(model_root: str | Path, card: ModelCard) -> Path:
    """Write ``<model_root>/config.pbtxt`` (``model_root`` is ``models/<name>``)."""
    target = Path(model_root) / TRITON_CONFIG_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(triton_config_text(card), encoding="utf-8")
    return target
