"""The zstd level of the record batches a worker writes, which aiokafka does not expose.

aiokafka 0.14 compresses a producer's record batches with ``aiokafka.codec.zstd_encode(data)``
at level 3 (Kafka's default), with no setting for it. Its record batch builders (the C
extension's and the pure-Python one) call that function through their module's global
``zstd_encode``; :func:`set_zstd_level` replaces both with one bound to the level asked. It acts
on the whole process: a worker calls it once, when its app is built.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import partial
from typing import Any

from aiokafka import codec

#: the modules whose record batch builders call ``zstd_encode`` (the C one may be absent)
BUILDER_MODULES = (
    "aiokafka.record.default_records",
    "aiokafka.record._crecords.default_records",
)


class CompressionPatchError(RuntimeError):
    """aiokafka's record batch builders no longer compress through the patched function."""


def set_zstd_level(level: int) -> None:
    """Compress zstd record batches at ``level`` (1 to 22, or negative: faster and larger)."""
    encode: Callable[..., bytes] = partial(codec.zstd_encode, level=level)
    patched = 0
    for name in BUILDER_MODULES:
        try:
            module: Any = importlib.import_module(name)
        except ImportError:  # aiokafka built without its C extension
            continue
        if not hasattr(module, "zstd_encode"):
            raise CompressionPatchError(
                f"{name} has no zstd_encode: this aiokafka compresses differently from the 0.14 "
                "that streamer.faust_glue.compression was written for; unset "
                "STREAMER_KAFKA_ZSTD_LEVEL (or set it to 3) and report the aiokafka version"
            )
        module.zstd_encode = encode
        patched += 1
    if not patched:
        raise CompressionPatchError("no aiokafka record batch builder found to set the zstd level")
