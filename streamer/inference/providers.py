"""Which ONNX Runtime execution providers to ask for, and what came of it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

logger = logging.getLogger(__name__)

CPU: Final = "CPUExecutionProvider"
CUDA: Final = "CUDAExecutionProvider"
TENSORRT: Final = "TensorrtExecutionProvider"
_ALIASES: Final = {"cpu": CPU, "cuda": CUDA, "gpu": CUDA, "tensorrt": TENSORRT, "trt": TENSORRT}


def canonical_provider(name: str) -> str:
    """``cuda`` / ``cpu`` / ``tensorrt`` (any case) or a full ONNX Runtime provider name."""
    text = name.strip()
    return _ALIASES.get(text.lower(), text)


def parse_providers(text: str | None) -> tuple[str, ...] | None:
    """A comma-separated setting (``"cuda,cpu"``) as provider names; ``None``/empty: default."""
    if text is None or not text.strip():
        return None
    return tuple(canonical_provider(p) for p in text.split(",") if p.strip())


def choose_providers(requested: Sequence[str] | None, available: Sequence[str]) -> list[str]:
    """The provider list handed to the session.

    ``None`` asks for CUDA when this ONNX Runtime build has it, then CPU (TensorRT only when
    asked by name). Asked-for providers this build lacks are dropped with a warning; CPU is
    always last so that the session can fall back to it.
    """
    if requested is None:
        wanted = [CUDA, CPU] if CUDA in available else [CPU]
    else:
        wanted = [canonical_provider(p) for p in requested]
    chosen: list[str] = []
    for name in wanted:
        if name in chosen:
            continue
        if name not in available:
            logger.warning(
                "ONNX Runtime provider %s was asked for but this build has only %s; "
                "install onnxruntime-gpu (and the CUDA libraries) to use it",
                name,
                ", ".join(available),
            )
            continue
        chosen.append(name)
    if CPU not in chosen:
        chosen.append(CPU)
    return chosen
