"""Errors of training and export."""

from __future__ import annotations

from streamer.errors import StreamerError


class TrainError(StreamerError):
    """Base of the errors raised by :mod:`streamer.train`."""


class TrainConfigError(TrainError):
    """Training arguments or data that cannot produce a model (the message says which)."""


class ExportParityError(TrainError):
    """The exported ONNX model does not reproduce the torch model within tolerance."""


class TrainingStopped(TrainError):
    """Training was stopped (a signal set the stop flag) and no model was written."""

    def __init__(self, message: str, *, epochs_run: int) -> None:
        super().__init__(message)
        self.epochs_run = epochs_run
