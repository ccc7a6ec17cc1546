"""Which forecasters serve now; swapped between micro-batches when an assignment arrives."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from streamer.errors import StreamerError
from streamer.forecast.protocol import Forecaster
from streamer.rollout.assignment import ModelAssignment

log = logging.getLogger(__name__)

ForecasterBuilder = Callable[[str], Forecaster]


@dataclass(frozen=True, slots=True)
class RolloutChange:
    applied: bool
    live: str
    shadow: str | None
    error: str | None = None


class ModelRouter:
    """Holds the live forecaster and an optional shadow; ``apply`` loads before it swaps.

    A version that fails to load (missing, bad card, wrong resolution) leaves the current models
    serving and is reported, so a bad rollout never stops the stream.
    """

    def __init__(self, build: ForecasterBuilder, live_spec: str) -> None:
        self._build = build
        self.live_spec = live_spec
        self._live: Forecaster | None = None  # built on first use: commands need no model
        self.shadow_spec: str | None = None
        self.shadow: Forecaster | None = None
        self.applied_at_ms: int | None = None

    def build(self, spec: str) -> Forecaster:
        """A forecaster for ``spec`` built as the router builds its own (sessions shared)."""
        return self._build(spec)

    @property
    def live(self) -> Forecaster:
        if self._live is None:
            self._live = self._build(self.live_spec)
        return self._live

    def apply(self, assignment: ModelAssignment) -> RolloutChange:
        if assignment.live == self.live_spec and assignment.shadow == self.shadow_spec:
            return RolloutChange(False, self.live_spec, self.shadow_spec)
        try:
            live = self.live if assignment.live == self.live_spec else self._build(assignment.live)
            shadow: Forecaster | None = None
            if assignment.shadow is not None:
                shadow = (
                    self.shadow
                    if assignment.shadow == self.shadow_spec
                    else self._build(assignment.shadow)
                )
        except StreamerError as exc:
            log.error(
                "rollout to live=%s shadow=%s refused: %s", assignment.live, assignment.shadow, exc
            )
            return RolloutChange(False, self.live_spec, self.shadow_spec, str(exc))
        previous = (self.live_spec, self.shadow_spec)
        self._live, self.live_spec = live, assignment.live
        self.shadow, self.shadow_spec = shadow, assignment.shadow
        self.applied_at_ms = assignment.at_ms
        log.info(
            "rollout: live %s -> %s, shadow %s -> %s",
            previous[0],
            self.live_spec,
            previous[1],
            self.shadow_spec,
        )
        return RolloutChange(True, self.live_spec, self.shadow_spec)
