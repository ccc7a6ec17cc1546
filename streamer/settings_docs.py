"""``docs/configuration.md``, generated from :class:`streamer.settings.Settings`.

    .venv/bin/python -m streamer.settings_docs > docs/configuration.md

One table per section of ``settings.py`` (its ``# --- title ---`` comments, in source order):
variable, type (with its bounds), default and description of every field. Pure and
deterministic: the same ``Settings`` class always gives the same text, whatever the environment,
so that ``tests/unit/test_docs.py`` can hold the committed page to it.
"""

from __future__ import annotations

import inspect
import re
import sys
import textwrap
import types
from pathlib import Path
from typing import Any, Final, Literal, Union, get_args, get_origin

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from streamer.settings import Settings, env_name

REGENERATE: Final = ".venv/bin/python -m streamer.settings_docs > docs/configuration.md"
NO_DESCRIPTION: Final = "(no description)"
OTHER_SECTION: Final = "Other settings"

_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
_SECTION = re.compile(r"^    # -{3}\s*(?P<title>.*?)[\s-]*$")
_FIELD = re.compile(r"^    (?P<name>[a-z_][a-z0-9_]*)\s*:")
_TYPE_NAMES: Final[dict[object, str]] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    Path: "path",
    SecretStr: "secret string",
}
#: pydantic's constraint attributes, in the order they are shown
_BOUNDS: Final = (
    ("gt", ">"),
    ("ge", ">="),
    ("lt", "<"),
    ("le", "<="),
    ("min_length", "length >="),
    ("max_length", "length <="),
)


def sections() -> list[tuple[str, list[str]]]:
    """The fields of ``Settings`` grouped by the section comments of its source, in order.

    Fields the source does not show under a section (or a source that cannot be read) end up
    in a last group, :data:`OTHER_SECTION`, in declaration order.
    """
    fields = Settings.model_fields
    try:
        source = inspect.getsource(Settings)
    except (OSError, TypeError):
        source = ""
    groups: list[tuple[str, list[str]]] = []
    seen: set[str] = set()
    for line in source.splitlines():
        section = _SECTION.match(line)
        if section:
            title = section.group("title")
            groups.append((title[:1].upper() + title[1:], []))
            continue
        field = _FIELD.match(line)
        if field and field.group("name") in fields and groups:
            groups[-1][1].append(field.group("name"))
            seen.add(field.group("name"))
    rest = [name for name in fields if name not in seen]
    if rest:
        groups.append((OTHER_SECTION, rest))
    return [(title, names) for title, names in groups if names]


def type_text(annotation: Any) -> str:
    """A field's type in words: ``integer``, ``one of `a`, `b` ``, ``path (optional)``..."""
    origin = get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(f"`{value}`" for value in get_args(annotation))
    if origin is Union or origin is types.UnionType:
        args = get_args(annotation)
        present = [arg for arg in args if arg is not type(None)]
        text = " or ".join(type_text(arg) for arg in present)
        return f"{text} (optional)" if len(present) < len(args) else text
    name = _TYPE_NAMES.get(annotation)
    if name is not None:
        return name
    return getattr(annotation, "__name__", None) or str(annotation)


def bounds_text(field: FieldInfo) -> str:
    """The field's constraints (``>= 1, <= 30000``), empty when it has none."""
    parts: list[str] = []
    for attribute, symbol in _BOUNDS:
        for constraint in field.metadata:
            value = getattr(constraint, attribute, None)
            if value is not None:
                parts.append(f"{symbol} {value}")
    return ", ".join(parts)


def default_text(field: FieldInfo) -> str:
    """The default as it would be written in the variable; ``none`` for no value or a secret."""
    if field.is_required():
        return "(required)"
    value = field.get_default(call_default_factory=True)
    if value is None or isinstance(value, SecretStr):
        return "none"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, Path):
        return f"`{value.as_posix()}`"
    if isinstance(value, str) and not value:
        return "(empty)"
    return f"`{value}`"


def _cell(text: str) -> str:
    """Text safe in a Markdown table cell (one line, no column break, no HTML tag)."""
    return _TAG_START.sub(r"\\<", " ".join(text.split()).replace("|", "\\|"))


def undescribed_fields() -> list[str]:
    """Fields of ``Settings`` without a description (rendered as :data:`NO_DESCRIPTION`)."""
    return [name for name, field in Settings.model_fields.items() if not field.description]


def settings_markdown() -> str:
    """The whole of ``docs/configuration.md``."""
    intro = (
        "Generated from the `Settings` class in `streamer/settings.py`; do not edit by hand, "
        f"regenerate with `{REGENERATE}` (a unit test fails when this page is out of date). "
        "streamer reads its settings once at start from `STREAMER_*` environment variables: "
        "field `x` is read from `STREAMER_X`. A bad value stops the process with a sentence "
        "naming the variable, and `streamer settings` lists every setting with its current "
        "value (secrets masked)."
    )
    # wrapped at 100 columns, never inside the command
    wrapped = textwrap.wrap(
        intro.replace(REGENERATE, REGENERATE.replace(" ", "\0")), 100, break_on_hyphens=False
    )
    lines = ["# Configuration", "", *(line.replace("\0", " ") for line in wrapped)]
    fields = Settings.model_fields
    for title, names in sections():
        lines += [
            "",
            f"## {title}",
            "",
            "| variable | type | default | description |",
            "|---|---|---|---|",
        ]
        for name in names:
            field = fields[name]
            kind = type_text(field.annotation)
            bounds = bounds_text(field)
            if bounds:
                kind = f"{kind}, {bounds}"
            description = field.description or NO_DESCRIPTION
            lines.append(
                f"| `{env_name(name)}` | {_cell(kind)} | {_cell(default_text(field))} "
                f"| {_cell(description)} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(settings_markdown())
