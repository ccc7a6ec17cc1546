"""One ONNX Runtime session for one model version, checked against its card.

Built once per process (see :mod:`streamer.inference.registration`); every forecaster of that
model version shares it. Importing this module imports onnxruntime, never torch.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from streamer.inference.errors import ModelLoadError
from streamer.inference.features import FeatureSpec, holiday_set
from streamer.inference.providers import CPU, CUDA, TENSORRT, choose_providers
from streamer.modelrepo.card import ModelCard, TensorSpec, card_path_of, load_card
from streamer.modelrepo.errors import ModelCardError

logger = logging.getLogger(__name__)

Float32Array = npt.NDArray[np.float32]
_ORT_DTYPES = {"float32": "tensor(float)"}
DEFAULT_MAX_BATCH_SIZE = 1024


def preload_cuda_libraries() -> None:
    """Load CUDA/cuDNN from the ``nvidia-*`` pip packages when present
    (``onnxruntime.preload_dlls``), so that ``onnxruntime-gpu`` finds them; its chatter on
    stdout goes to the debug log. Failures are left to the session's provider fallback."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter):
            preload()
    except Exception as exc:  # best effort: the session falls back to CPU and says so
        logger.debug("onnxruntime.preload_dlls failed: %s", exc)
    if chatter.getvalue().strip():
        logger.debug("onnxruntime.preload_dlls: %s", chatter.getvalue().strip())


class OnnxModel:
    """``model.onnx`` + ``card.json`` of one version directory, loaded and validated.

    ``providers`` is the list to ask for (``None``: CUDA when this ONNX Runtime build has it,
    then CPU). After loading, :attr:`providers_in_use` is what the session really uses and
    :attr:`fell_back_to_cpu` is true when CUDA was asked for but only CPU runs the model.
    Raises :class:`~streamer.modelrepo.errors.ModelCardError` for a bad card and
    :class:`ModelLoadError` for a model that cannot be loaded or disagrees with its card; both
    name the file and the field.
    """

    def __init__(
        self,
        version_dir: str | Path,
        *,
        providers: Sequence[str] | None = None,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        intra_op_threads: int | None = None,
        io_binding: bool | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ModelLoadError(f"max_batch_size must be positive, got {max_batch_size}")
        self.card_file = card_path_of(version_dir)
        self.card: ModelCard = load_card(self.card_file)
        self.model_file = self.card_file.parent / self.card.model_file
        self.max_batch_size = max_batch_size
        try:
            self.feature_spec = FeatureSpec(
                features=self.card.features,
                lookback_slots=self.card.lookback_slots,
                resolution_seconds=self.card.resolution_seconds,
                epsilon=self.card.scaling.epsilon,
                holidays=holiday_set(self.card.holidays),
                calendar_time=self.card.calendar_time,
            )
        except Exception as exc:
            raise ModelCardError(f"{self.card_file}: features: {exc}") from None
        self.providers_requested: tuple[str, ...] = tuple(
            choose_providers(providers, ort.get_available_providers())
        )
        if CUDA in self.providers_requested or TENSORRT in self.providers_requested:
            preload_cuda_libraries()
        self._session = self._open_session(intra_op_threads)
        self.providers_in_use: tuple[str, ...] = tuple(self._session.get_providers())
        self.fell_back_to_cpu = CUDA in self.providers_requested and CUDA not in (
            self.providers_in_use
        )
        #: inputs and outputs bound to the caller's arrays (ONNX Runtime's IO binding): by
        #: default where a GPU runs the model, so that the copies to and from the device are
        #: ONNX Runtime's own, straight from the input array and into the output array
        self.io_binding = (
            bool(io_binding)
            if io_binding is not None
            else bool({CUDA, TENSORRT} & set(self.providers_in_use))
        )
        log = logger.warning if self.fell_back_to_cpu else logger.info
        log(
            "ONNX model %s:%s (%s): providers asked for %s, in use %s%s",
            self.card.name,
            self.card.version,
            self.model_file,
            list(self.providers_requested),
            list(self.providers_in_use),
            " (fell back to CPU)" if self.fell_back_to_cpu else "",
        )
        self._check_tensors()

    @property
    def input_name(self) -> str:
        return self.card.input.name

    @property
    def output_name(self) -> str:
        return self.card.output.name

    def _open_session(self, intra_op_threads: int | None) -> Any:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if intra_op_threads is not None:
            options.intra_op_num_threads = intra_op_threads
        if intra_op_threads != 1:
            # idle pool threads spin by default, taking a core the rest of the process needs
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            return ort.InferenceSession(
                str(self.model_file), sess_options=options, providers=list(self.providers_requested)
            )
        except Exception as exc:  # onnxruntime raises its own pybind exception types
            raise ModelLoadError(
                f"{self.model_file}: ONNX Runtime cannot load the model ({exc}); the file is "
                "corrupt or not an ONNX model: restore it or re-export it with `streamer train`"
            ) from None

    def _check_tensors(self) -> None:
        for field, expected, actual in (
            ("inputs", self.card.inputs, self._session.get_inputs()),
            ("outputs", self.card.outputs, self._session.get_outputs()),
        ):
            if len(actual) != len(expected):
                raise ModelLoadError(
                    f"{self.model_file} has {len(actual)} {field} but {self.card_file}: {field} "
                    f"lists {len(expected)}; the card does not belong to this model (re-export "
                    "both with `streamer train`)"
                )
            for i, (spec, arg) in enumerate(zip(expected, actual, strict=True)):
                self._check_tensor(f"{field}[{i}]", spec, arg)

    def _check_tensor(self, where: str, spec: TensorSpec, arg: Any) -> None:
        fix = "the card does not belong to this model (re-export both with `streamer train`)"
        if arg.name != spec.name:
            raise ModelLoadError(
                f"{self.card_file}: {where}.name is {spec.name!r} but {self.model_file} names it "
                f"{arg.name!r}; {fix}"
            )
        if arg.type != _ORT_DTYPES[spec.dtype]:
            raise ModelLoadError(
                f"{self.card_file}: {where}.dtype is {spec.dtype} but {self.model_file} has "
                f"{arg.type}; {fix}"
            )
        shape = [d if isinstance(d, int) and d > 0 else -1 for d in arg.shape]
        if shape != list(spec.shape):
            raise ModelLoadError(
                f"{self.card_file}: {where}.shape is {list(spec.shape)} but {self.model_file} "
                f"has {list(arg.shape)} (as {shape}); {fix}"
            )

    def run(self, values: Float32Array) -> Float32Array:
        """Model outputs ``(B, H, Q)`` for inputs ``(B, L, F)``, in chunks of
        ``max_batch_size`` rows."""
        rows = values.shape[0]
        spec = self.card.output.shape
        out = np.empty((rows, *spec[1:]), dtype=np.float32)
        for start in range(0, rows, self.max_batch_size):
            chunk = np.ascontiguousarray(
                values[start : start + self.max_batch_size], dtype=np.float32
            )
            if self.io_binding:
                self._run_bound(chunk, out[start : start + chunk.shape[0]])
                continue
            (result,) = self._session.run([self.output_name], {self.input_name: chunk})
            out[start : start + chunk.shape[0]] = result
        return out

    def _run_bound(self, chunk: Float32Array, target: Float32Array) -> None:
        """One session run with ``chunk`` bound as the input and ``target`` (a contiguous
        slice of the output array) as the output: no output array of ONNX Runtime's own."""
        binding = self._session.io_binding()
        binding.bind_input(
            self.input_name, "cpu", 0, np.float32, list(chunk.shape), chunk.ctypes.data
        )
        binding.bind_output(
            self.output_name, "cpu", 0, np.float32, list(target.shape), target.ctypes.data
        )
        self._session.run_with_iobinding(binding)

    def __repr__(self) -> str:
        providers = list(self.providers_in_use)
        return f"OnnxModel({self.card.name}:{self.card.version}, providers={providers})"


__all__ = ["CPU", "CUDA", "DEFAULT_MAX_BATCH_SIZE", "OnnxModel"]
