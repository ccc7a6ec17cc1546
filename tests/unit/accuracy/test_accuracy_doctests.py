"""The docstring examples in streamer.accuracy run as tests."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from streamer.accuracy import fleet_accuracy, forecast_ledger, rolling_accuracy


@pytest.mark.parametrize(
    "module", [fleet_accuracy, forecast_ledger, rolling_accuracy], ids=lambda m: m.__name__
)
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
