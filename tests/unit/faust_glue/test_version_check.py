"""faust is the version streamer's patches were written for, and the source they were read
against has not changed."""

from __future__ import annotations

import pytest

from streamer.faust_glue import version_check
from streamer.faust_glue.version_check import (
    FAUST_VERSION,
    FaustVersionError,
    changed_functions,
    check_faust_version,
)


def test_installed_faust_is_the_pinned_version() -> None:
    check_faust_version()


def test_patched_faust_functions_are_unchanged() -> None:
    changed = changed_functions()
    assert not changed, (
        "faust's source changed in the functions streamer.faust_glue patches or mirrors: "
        + ", ".join(changed)
        + f"; re-read them against streamer/faust_glue (written for faust-streaming "
        f"{FAUST_VERSION}) and update version_check.PATCHED"
    )


def test_a_changed_function_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    key = ("faust.transport.consumer", "Consumer.ack")
    monkeypatch.setitem(version_check.PATCHED, key, "0" * 16)
    monkeypatch.setitem(version_check.PATCHED, ("faust.transport.consumer", "Consumer.gone"), "x")
    assert changed_functions() == [
        "faust.transport.consumer.Consumer.ack",
        "faust.transport.consumer.Consumer.gone",
    ]


def test_another_version_is_refused_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(version_check, "installed_faust_version", lambda: "0.16.0")
    with pytest.raises(FaustVersionError, match=r"faust-streaming==0\.15\.3"):
        check_faust_version()
