"""The faust-streaming these patches were written for, and a check that it is still that one.

:mod:`streamer.faust_glue` replaces or mirrors a few of faust's internal functions (and one of
aiokafka's). They were written against faust-streaming |FAUST_VERSION| (``pyproject.toml`` pins
it) and aiokafka 0.14, and read against
the source of the functions listed in :data:`PATCHED`: a worker refuses to start on another
version, and ``tests/unit/faust_glue/test_version_check.py`` fails with a sentence naming every
listed function whose source changed (hashes of their source text, read with :mod:`ast` from
the libraries' files, so that the check does not depend on whether the patches are applied).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import importlib.util
from pathlib import Path

FAUST_VERSION = "0.15.3"

#: module, qualified name -> sha256 (first 16 hex digits) of the function's source text
PATCHED: dict[tuple[str, str], str] = {
    # replaced or wrapped (consumer_fixes, bulk_readings)
    ("faust.transport.consumer", "Consumer._new_offset"): "7524555f309a6493",
    ("faust.transport.consumer", "Consumer._commit_tps"): "bd6689ec028ce61b",
    ("faust.transport.consumer", "Consumer._wait_next_records"): "97fc2cf4cf94c619",
    ("faust.transport.consumer", "Consumer._drain_messages"): "8308d11bc7a290dc",
    ("faust.transport.consumer", "Consumer.perform_seek"): "b2fa31dd2a8784d3",
    ("faust.transport.consumer", "Consumer.wait_empty"): "f29971a4a89cf07e",
    # called by consumer_fixes.seek_never_committed (a never-committed partition's beginning)
    (
        "faust.transport.drivers.aiokafka",
        "AIOKafkaConsumerThread.seek_to_beginning",
    ): "217531394a6dcdbc",
    ("aiokafka.consumer.consumer", "AIOKafkaConsumer.seek_to_beginning"): "a62f30f01b58d747",
    # mirrored by bulk_readings (its loop folds getmany in; ack_offsets is ack's bookkeeping)
    ("faust.transport.consumer", "Consumer.getmany"): "fb4700d31489b3b4",
    ("faust.transport.consumer", "Consumer.ack"): "6341c682b9ca914d",
    ("faust.transport.consumer", "Consumer._add_gap"): "d28ad8e076b67739",
    # hooked (exactly_once_hooks) or relied upon (the order of a revoke; memory store layout)
    (
        "faust.transport.drivers.aiokafka",
        "AIOKafkaConsumerThread._create_worker_consumer",
    ): "684c167041ff0044",
    ("faust.tables.recovery", "Recovery._slurp_changelogs"): "2e29833a409e0003",
    ("faust.app.base", "App._on_partitions_revoked"): "549ee65b7b3a3155",
    # relied upon by bulk_readings.commit_acknowledged (one commit at a time; a caller waiting
    # for another's commit returns without committing)
    ("faust.transport.consumer", "Consumer.commit"): "e19de4c0199d8897",
    ("faust.transport.consumer", "Consumer.maybe_wait_for_commit_to_finish"): "0eb6edba7d218a84",
    ("faust.stores.memory", "Store.apply_changelog_batch"): "dc48f47e4f91e604",
    ("faust.stores.memory", "Store.on_recovery_completed"): "e83ad45037d0db92",
    # aiokafka (pinned by faust's range and pyproject): the record each fetched message becomes
    # (bulk_records makes the readings topic's as messages); the one place it is made
    ("aiokafka.consumer.fetcher", "PartitionRecords._consumer_record"): "d8ace8ffb7f64cae",
    ("aiokafka.consumer.fetcher", "PartitionRecords._unpack_records"): "40c81a2a6aac5ac0",
}


class FaustVersionError(RuntimeError):
    """The installed faust-streaming is not the one streamer's patches were written for."""


def installed_faust_version() -> str:
    return importlib.metadata.version("faust-streaming")


def check_faust_version() -> None:
    """Raise :class:`FaustVersionError` unless faust-streaming is :data:`FAUST_VERSION`."""
    found = installed_faust_version()
    if found != FAUST_VERSION:
        raise FaustVersionError(
            f"faust-streaming {found} is installed, but streamer patches faust-streaming "
            f"{FAUST_VERSION}'s internals (streamer.faust_glue); install it with "
            f"pip install 'faust-streaming=={FAUST_VERSION}'"
        )


def source_of(module: str, qualname: str) -> str:
    """The source text of a function or method of ``module`` (``Class.method``)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise FaustVersionError(f"{module} not found")
    text = Path(spec.origin).read_text(encoding="utf-8")
    tree = ast.parse(text)
    node: ast.AST = tree
    for part in qualname.split("."):
        body = getattr(node, "body", [])
        found = next(
            (
                n
                for n in body
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and n.name == part
            ),
            None,
        )
        if found is None:
            raise FaustVersionError(f"{module}.{qualname} not found")
        node = found
    segment = ast.get_source_segment(text, node)
    return segment or ""


def fingerprint(module: str, qualname: str) -> str:
    return hashlib.sha256(source_of(module, qualname).encode()).hexdigest()[:16]


def changed_functions() -> list[str]:
    """The functions of :data:`PATCHED` whose source is not the one the patches were written
    against (or that are gone)."""
    changed: list[str] = []
    for (module, qualname), expected in PATCHED.items():
        try:
            found = fingerprint(module, qualname)
        except FaustVersionError:
            found = "missing"
        if found != expected:
            changed.append(f"{module}.{qualname}")
    return changed
