"""Which ONNX Runtime execution providers to ask for, and what came of it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
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


NVIDIA_DRIVER: Final = Path("/proc/driver/nvidia/version")


def nvidia_driver_loaded() -> bool:
    """Whether this machine has a loaded NVIDIA kernel driver (a GPU CUDA could use)."""
    return NVIDIA_DRIVER.exists()


def choose_providers(
    requested: Sequence[str] | None,
    available: Sequence[str],
    *,
    gpu_present: bool | None = None,
) -> list[str]:
    """The provider list handed to the session.

    ``None`` asks for CUDA when this ONNX Runtime build has it and an NVIDIA driver is loaded,
    then CPU (TensorRT only when asked by name): onnxruntime-gpu lists CUDA even on machines
    without a GPU, and asking for it there only fills the log with library errors. Asked-for
    providers this build lacks are dropped with a warning; CPU is always last so that the
    session can fall back to it.
    """
    if requested is None:
        has_gpu = nvidia_driver_loaded() if gpu_present is None else gpu_present
        wanted = [CUDA, CPU] if CUDA in available and has_gpu else [CPU]
        if CUDA in available and not has_gpu:
            logger.info("no NVIDIA driver found (%s); ONNX Runtime runs on CPU", NVIDIA_DRIVER)
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
