"""Which groups a meter belongs to: the ``meter-groups`` topic and the CSV it is loaded from.

The topic is compacted and keyed by meter id; a value lists the meter's groups, each with a kind
(``feeder``, ``substation``, ``portfolio`` or any other lowercase word)::

    {"groups": [{"id": "feeder-07", "kind": "feeder"}, {"id": "sub-2", "kind": "substation"}]}

An empty list (or a tombstone) takes the meter out of every group. A file for
``streamer groups load`` has one row per (meter, group): ``meter_id,group_id,kind``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import orjson

from streamer.groups.errors import MembershipError

MAX_GROUP_ID_CHARS: Final = 128
MAX_GROUPS_PER_METER: Final = 16
_KIND: Final = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
CSV_COLUMNS: Final = ("meter_id", "group_id", "kind")


@dataclass(frozen=True, slots=True, order=True)
class GroupRef:
    """One group a meter belongs to."""

    group_id: str
    kind: str

    def __post_init__(self) -> None:
        if not 1 <= len(self.group_id) <= MAX_GROUP_ID_CHARS or not self.group_id.isprintable():
            raise MembershipError(
                f"group id {self.group_id[:64]!r} must be 1-{MAX_GROUP_ID_CHARS} printable "
                "characters"
            )
        if not _KIND.fullmatch(self.kind):
            raise MembershipError(
                f"group kind {self.kind[:40]!r} must be a lowercase word such as feeder, "
                "substation or portfolio"
            )


def parse_membership(raw: bytes | None) -> tuple[GroupRef, ...]:
    """The groups of a ``meter-groups`` value (sorted, no duplicates); none for a tombstone."""
    if raw is None:
        return ()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MembershipError(f"meter-groups value is not JSON ({exc})") from None
    groups = body.get("groups") if isinstance(body, dict) else None
    if not isinstance(groups, list):
        raise MembershipError('a meter-groups value is {"groups": [{"id": ..., "kind": ...}]}')
    if len(groups) > MAX_GROUPS_PER_METER:
        raise MembershipError(f"{len(groups)} groups for one meter; at most {MAX_GROUPS_PER_METER}")
    refs: set[GroupRef] = set()
    for item in groups:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise MembershipError('each group is {"id": "...", "kind": "..."}')
        kind = item.get("kind", "group")
        if not isinstance(kind, str):
            raise MembershipError("a group's kind must be a string")
        refs.add(GroupRef(item["id"], kind))
    return tuple(sorted(refs))


def encode_membership(groups: Iterable[GroupRef]) -> bytes:
    """The ``meter-groups`` value of a meter in ``groups``."""
    ordered = sorted(set(groups))
    return orjson.dumps({"groups": [{"id": g.group_id, "kind": g.kind} for g in ordered]})


def read_membership_csv(path: str | Path) -> dict[str, tuple[GroupRef, ...]]:
    """``meter_id -> groups`` from a ``meter_id,group_id,kind`` CSV file (header required)."""
    file = Path(path)
    if not file.is_file():
        raise MembershipError(f"{file}: no such membership file")
    out: dict[str, set[GroupRef]] = {}
    with file.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise MembershipError(
                f"{file} lacks column(s) {missing}; the header must be meter_id,group_id,kind"
            )
        for line, row in enumerate(reader, start=2):
            meter = (row["meter_id"] or "").strip()
            if not meter:
                raise MembershipError(f"{file}:{line}: meter_id is empty")
            try:
                ref = GroupRef((row["group_id"] or "").strip(), (row["kind"] or "").strip())
            except MembershipError as exc:
                raise MembershipError(f"{file}:{line}: {exc}") from None
            out.setdefault(meter, set()).add(ref)
    too_many = [m for m, g in out.items() if len(g) > MAX_GROUPS_PER_METER]
    if too_many:
        raise MembershipError(
            f"{file}: meter {too_many[0]!r} is in more than {MAX_GROUPS_PER_METER} groups"
        )
    return {meter: tuple(sorted(groups)) for meter, groups in out.items()}


def write_membership_csv(path: str | Path, membership: Mapping[str, Iterable[GroupRef]]) -> Path:
    """Write ``meter_id,group_id,kind`` rows (meters and groups sorted)."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for meter in sorted(membership):
            for ref in sorted(set(membership[meter])):
                writer.writerow((meter, ref.group_id, ref.kind))
    return file


def members_of(membership: Mapping[str, Iterable[GroupRef]]) -> dict[GroupRef, tuple[str, ...]]:
    """``group -> its meters`` (sorted) from ``meter -> groups``."""
    out: dict[GroupRef, list[str]] = {}
    for meter, groups in membership.items():
        for ref in groups:
            out.setdefault(ref, []).append(meter)
    return {ref: tuple(sorted(meters)) for ref, meters in out.items()}
