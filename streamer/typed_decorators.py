"""faust ships without type hints; this gives its decorators a type so strict mypy checks ours."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])


def typed(decorator: Any) -> Callable[[F], F]:
    """Wrap an untyped library decorator (``app.page(...)``, ``app.agent(...)``...)."""
    return cast(Callable[[F], F], decorator)
