"""The membership every worker holds: meter -> groups and group -> members, from the
``meter-groups`` topic (each worker reads all of it, as it reads the control topic)."""

from __future__ import annotations

import logging

from streamer.groups.errors import MembershipError
from streamer.groups.membership import GroupRef, parse_membership

log = logging.getLogger(__name__)


class MembershipView:
    """``apply`` each record of the topic in order; then ``groups_of`` and ``members_of``."""

    def __init__(self) -> None:
        self._groups: dict[str, tuple[GroupRef, ...]] = {}
        self._members: dict[str, set[str]] = {}
        self._kinds: dict[str, str] = {}
        self.refused = 0
        self.version = 0

    def apply(self, meter_id: str, value: bytes | None) -> bool:
        """One record: the meter's groups from now on. False (logged) for a bad record."""
        try:
            groups = parse_membership(value)
        except MembershipError as exc:
            log.error("meter-groups record of %r ignored: %s", meter_id[:64], exc)
            self.refused += 1
            return False
        for old in self._groups.get(meter_id, ()):
            members = self._members.get(old.group_id)
            if members is not None:
                members.discard(meter_id)
                if not members:
                    del self._members[old.group_id]
        if groups:
            self._groups[meter_id] = groups
        else:
            self._groups.pop(meter_id, None)
        for ref in groups:
            self._members.setdefault(ref.group_id, set()).add(meter_id)
            self._kinds[ref.group_id] = ref.kind
        self.version += 1
        return True

    def groups_of(self, meter_id: str) -> tuple[GroupRef, ...]:
        return self._groups.get(meter_id, ())

    def members_of(self, group_id: str) -> frozenset[str]:
        return frozenset(self._members.get(group_id, ()))

    def kind_of(self, group_id: str) -> str:
        return self._kinds.get(group_id, "group")

    def meter_ids(self) -> list[str]:
        return list(self._groups)

    @property
    def meters(self) -> int:
        return len(self._groups)

    @property
    def groups(self) -> int:
        return len(self._members)

    def __bool__(self) -> bool:
        return bool(self._groups)
