"""Choosing ONNX Runtime execution providers."""

from __future__ import annotations

import logging

import pytest

from streamer.inference import choose_providers, parse_providers

CPU, CUDA, TRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"


def test_default_asks_for_cuda_only_when_the_build_has_it() -> None:
    assert choose_providers(None, [TRT, CUDA, CPU], gpu_present=True) == [CUDA, CPU]
    # onnxruntime-gpu lists CUDA on machines without a GPU too: do not ask for it there
    assert choose_providers(None, [TRT, CUDA, CPU], gpu_present=False) == [CPU]
    assert choose_providers(None, [CPU]) == [CPU]


def test_tensorrt_only_when_asked_and_cpu_always_last() -> None:
    assert choose_providers(["tensorrt", "cuda"], [TRT, CUDA, CPU]) == [TRT, CUDA, CPU]
    assert choose_providers(["cpu"], [TRT, CUDA, CPU]) == [CPU]


def test_unavailable_providers_are_dropped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert choose_providers(["cuda", "cuda"], [CPU]) == [CPU]
    assert "CUDAExecutionProvider was asked for" in caplog.text


def test_parse_providers_setting() -> None:
    assert parse_providers(None) is None
    assert parse_providers("  ") is None
    assert parse_providers("CUDA, cpu") == (CUDA, CPU)
    assert parse_providers("MyCustomExecutionProvider") == ("MyCustomExecutionProvider",)
