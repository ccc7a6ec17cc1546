"""The zstd level reaches aiokafka's record batch builders (both: C extension and Python)."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from streamer.faust_glue import compression
from streamer.faust_glue.compression import BUILDER_MODULES, set_zstd_level

ZSTD = 4  # aiokafka's compression_type code


def batch_size(module_name: str, level: int) -> int:
    """Bytes of a zstd record batch built by ``module_name``'s builder at ``level``."""
    set_zstd_level(level)
    module: Any = importlib.import_module(module_name)
    builder = module.DefaultRecordBatchBuilder(
        magic=2,
        compression_type=ZSTD,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for i in range(300):
        value = (
            f'{{"meter_id":"m-{i:06d}","points_kwh":['
            + ",".join(f"{(i * 7 + j * 13) % 997 / 1000:.3f}" for j in range(48))
            + "]}"
        ).encode()
        builder.append(i, timestamp=None, key=f"m-{i:06d}".encode(), value=value, headers=[])
    return len(builder.build())


@pytest.fixture(autouse=True)
def _kafka_default_level_after() -> Any:
    yield
    set_zstd_level(3)


@pytest.mark.parametrize("module_name", BUILDER_MODULES)
def test_the_level_set_is_the_level_the_builder_compresses_at(module_name: str) -> None:
    fast, default, best = (batch_size(module_name, level) for level in (-5, 3, 19))
    assert fast > default > best  # each level gives its own size: the builder used it


def test_a_builder_that_compresses_otherwise_gets_a_sentence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module: Any = importlib.import_module(BUILDER_MODULES[0])
    monkeypatch.delattr(module, "zstd_encode")
    with pytest.raises(compression.CompressionPatchError, match="STREAMER_KAFKA_ZSTD_LEVEL"):
        set_zstd_level(1)
