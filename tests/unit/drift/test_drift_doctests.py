"""The docstring examples in streamer.drift run as tests."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from streamer.drift import (
    kolmogorov_smirnov,
    page_hinkley,
    population_stability,
    reference_histogram,
    residual,
    uniform_reservoir,
)

MODULES = [
    kolmogorov_smirnov,
    page_hinkley,
    population_stability,
    reference_histogram,
    residual,
    uniform_reservoir,
]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
