"""ONNX export with a dynamic batch axis, and the torch-vs-ONNX Runtime parity check."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import torch

from streamer.train.errors import ExportParityError
from streamer.train.model import QuantileLstm

logger = logging.getLogger(__name__)

INPUT_NAME = "inputs"
OUTPUT_NAME = "quantiles"
Float32Array = npt.NDArray[np.float32]


def export_onnx(model: QuantileLstm, path: str | Path, *, opset: int = 18) -> Path:
    """Write ``model`` (on CPU, eval mode) as a single-file ONNX model.

    Input ``inputs`` ``(batch, L, F)`` float32, output ``quantiles`` ``(batch, H, Q)``; the
    batch axis is dynamic. Uses the ``torch.export``-based exporter (needs ``onnxscript``).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    model = model.to("cpu").eval()
    example = torch.zeros(2, model.lookback_slots, model.n_features)
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    with warnings.catch_warnings(), _quiet_loggers("onnxscript", "onnx_ir"):
        # The exporter's internals emit FutureWarning/UserWarning chatter that is not ours.
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            opset_version=opset,
            external_data=False,
            optimize=True,
            verbose=False,
        )
    if program is None:  # pragma: no cover - the dynamo exporter always returns a program
        raise ExportParityError("torch.onnx.export returned no program")
    program.save(str(target), external_data=False)
    logger.info("exported %s (%d bytes, opset %d)", target, target.stat().st_size, opset)
    return target


@contextlib.contextmanager
def _quiet_loggers(*names: str) -> Iterator[None]:
    """Raise the exporter's INFO-level loggers to WARNING while it runs."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [item.level for item in loggers]
    for item in loggers:
        item.setLevel(max(item.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for item, level in zip(loggers, levels, strict=True):
            item.setLevel(level)


def onnx_outputs(path: str | Path, inputs: Float32Array) -> Float32Array:
    """Run the ONNX model at ``path`` on CPU."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(inputs)})
    result: Float32Array = np.asarray(out, dtype=np.float32)
    return result


def check_parity(
    model: QuantileLstm,
    path: str | Path,
    inputs: Float32Array,
    *,
    batch_sizes: Sequence[int] = (1, 7, 256),
    tolerance: float = 1e-4,
) -> dict[int, float]:
    """Max absolute difference torch vs ONNX Runtime at each batch size (rows of ``inputs``,
    repeated when there are fewer). Raises :class:`ExportParityError` above ``tolerance``."""
    model = model.to("cpu").eval()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    diffs: dict[int, float] = {}
    for size in batch_sizes:
        rows = np.resize(np.arange(inputs.shape[0]), size)
        chunk = np.ascontiguousarray(inputs[rows], dtype=np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(chunk)).numpy()
        (actual,) = session.run([OUTPUT_NAME], {INPUT_NAME: chunk})
        if actual.shape != expected.shape:
            raise ExportParityError(
                f"{path}: ONNX output shape {actual.shape} != torch {expected.shape} at batch "
                f"size {size}; the batch axis is not dynamic"
            )
        diffs[size] = float(np.max(np.abs(actual - expected)))
    worst = max(diffs.values())
    if not worst <= tolerance:
        raise ExportParityError(
            f"{path}: ONNX Runtime and torch differ by up to {worst:.3g} (> {tolerance:g}) at "
            f"batch sizes {diffs}; the export is not faithful - check the torch and onnx versions"
        )
    logger.info("parity torch vs ONNX Runtime: %s", diffs)
    return diffs
