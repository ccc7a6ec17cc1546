"""The backtest progress line: the model being scored and an ETA."""

from __future__ import annotations

import pytest

from streamer.cli import model as model_cli


def test_progress_names_the_model_and_shows_an_eta(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [0.0]
    monkeypatch.setattr(model_cli.time, "monotonic", lambda: now[0])
    progress = model_cli._Progress("backtest")
    progress.model("lstm:1")
    now[0] = 10.0
    progress(1, 4)  # 10 s for one step: 30 s left
    progress.model("lstm:4")
    now[0] = 30.0
    progress(4, 4)
    err = capsys.readouterr().err
    assert "25% (1/4) ETA 0:30, scoring lstm:1" in err
    assert "(1/4) ETA 0:30, scoring lstm:4" in err
    assert err.rstrip().endswith("100% (4/4) done in 0:30")
    assert model_cli._duration(3725) == "1:02:05"
