"""Errors of the model repository (``models/<name>/<version>/``)."""

from __future__ import annotations

from streamer.errors import StreamerError


class ModelRepoError(StreamerError):
    """Base of the errors raised by :mod:`streamer.modelrepo`."""


class ModelCardError(ModelRepoError):
    """A model card (``card.json``) is missing, unreadable, invalid, or disagrees with its model.

    The message starts with the file and names the field, e.g.
    ``models/lstm/1/card.json: horizon_slots: field required``.
    """


class ModelNotFoundError(ModelRepoError):
    """The repository has no such model name or version."""
