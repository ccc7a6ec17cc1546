"""Errors of group forecasting, under one base."""

from __future__ import annotations

from streamer.errors import StreamerError


class GroupError(StreamerError):
    """Base of this package's errors."""


class MembershipError(GroupError):
    """A membership record or file that cannot be read; the message says what to fix."""


class GroupStateDecodeError(GroupError):
    """Stored group state that cannot be decoded."""
