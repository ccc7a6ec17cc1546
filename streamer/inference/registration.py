"""Make ``lstm`` / ``lstm:<version>`` forecaster specs available (called at worker start-up).

Sessions are built once per process: the factory caches one :class:`OnnxModel` per version
directory and provider list, so building the forecaster again (another horizon, a restart of
the batch processor) reuses the session.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from streamer.forecast.errors import ForecasterSpecError
from streamer.forecast.protocol import Forecaster
from streamer.forecast.registry import ForecasterFactory, register_forecaster
from streamer.inference.onnx_forecaster import OnnxForecaster
from streamer.inference.onnx_model import DEFAULT_MAX_BATCH_SIZE, OnnxModel
from streamer.modelrepo.errors import ModelNotFoundError
from streamer.modelrepo.layout import resolve_version

MODEL_NAME = "lstm"


def onnx_factory(
    models_dir: Path,
    name: str = MODEL_NAME,
    providers: Sequence[str] | None = None,
    *,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    intra_op_threads: int | None = None,
) -> ForecasterFactory:
    """A registry factory for ``name`` / ``name:<version>`` models under ``models_dir``."""
    cache: dict[tuple[Path, tuple[str, ...] | None], OnnxModel] = {}
    lock = threading.Lock()
    wanted = None if providers is None else tuple(providers)

    def factory(argument: str | None, horizon_slots: int, resolution_seconds: int) -> Forecaster:
        try:
            version_dir = resolve_version(models_dir, name, argument).resolve()
        except ModelNotFoundError as exc:
            raise ForecasterSpecError(f"{exc} (forecaster spec {name}:{argument})") from None
        with lock:
            model = cache.get((version_dir, wanted))
            if model is None:
                model = OnnxModel(
                    version_dir,
                    providers=wanted,
                    max_batch_size=max_batch_size,
                    intra_op_threads=intra_op_threads,
                )
                cache[(version_dir, wanted)] = model
        if model.card.resolution_seconds != resolution_seconds:
            raise ForecasterSpecError(
                f"{model.card_file}: resolution_seconds: the model was trained at "
                f"{model.card.resolution_seconds} s, the worker runs at {resolution_seconds} s; "
                f"set STREAMER_RESOLUTION_SECONDS={model.card.resolution_seconds}"
            )
        return OnnxForecaster(model, horizon_slots)

    return factory


def register_lstm(
    models_dir: Path,
    providers: Sequence[str] | None = None,
    *,
    intra_op_threads: int | None = None,
    factories: dict[str, ForecasterFactory],
) -> None:
    """Register ``lstm`` (newest version) and ``lstm:<version>`` from ``models_dir`` in
    ``factories`` (see :func:`~streamer.forecast.registry.builtin_factories`).

    ``intra_op_threads``: ONNX Runtime's threads per inference (None or 0: one per core).
    Idempotent: calling it again replaces the earlier registration. Nothing is loaded until a
    spec is built with :func:`~streamer.forecast.registry.make_forecaster`.
    """
    register_forecaster(
        MODEL_NAME,
        onnx_factory(Path(models_dir), MODEL_NAME, providers, intra_op_threads=intra_op_threads),
        replace=True,
        factories=factories,
    )
