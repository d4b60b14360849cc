"""Who is asking, and what they may do: the role table and the scope rule, in one place."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .errors import Forbidden
from .models import Role

ALL_ROLES = frozenset(Role)
PERMISSIONS: dict[str, frozenset[Role]] = {
    "units.read": ALL_ROLES,
    "units.write": frozenset({Role.admin}),
    "rooms.read": ALL_ROLES,
    "rooms.write": frozenset({Role.admin}),
    "accounts.read": frozenset({Role.admin}),
    "accounts.write": frozenset({Role.admin}),
    "devices.write": frozenset({Role.admin}),
    "audit.read": frozenset({Role.admin}),
    "contacts.read": ALL_ROLES,
    "roster.read": ALL_ROLES,
    "roster.write": frozenset({Role.admin, Role.host, Role.duty_officer}),
    "roster.status": frozenset({Role.admin, Role.host}),
    "conference.join": ALL_ROLES,
    #: Opening a free-form meeting room and inviting others into it (command staff only).
    "conference.create": frozenset({Role.admin, Role.host, Role.leader}),
    "rollcall.host": frozenset({Role.admin, Role.host}),
    "notices.respond": frozenset({Role.admin, Role.host, Role.duty_officer}),
    #: Incidents: every account reads those in scope; duty staff file reports (初报, 续报, 终报);
    #: hosts verify (核报), merge, supervise (督办) and close; leaders write instructions (批示).
    "incidents.read": ALL_ROLES,
    "incidents.report": frozenset({Role.admin, Role.host, Role.duty_officer}),
    "incidents.manage": frozenset({Role.admin, Role.host}),
    "incidents.instruct": frozenset({Role.admin, Role.leader}),
    "incidents.respond": frozenset({Role.admin, Role.host, Role.duty_officer, Role.leader}),
    #: Uploading and managing pre-recorded greeting videos (media/playout.py).
    "greetings.media": frozenset({Role.admin, Role.host, Role.leader}),
    #: Leadership greetings (慰问): leaders start them, hosts on a leader's behalf; viewers read.
    "greetings.start": frozenset({Role.admin, Role.host, Role.leader}),
    "greetings.read": frozenset({Role.admin, Role.host, Role.leader, Role.viewer}),
}
#: A duty-room console signed in with a device credential may only do this much.
DEVICE_PERMISSIONS = frozenset({"conference.join", "roster.read", "rooms.read", "units.read"})


class PrincipalKind(StrEnum):
    """Who signed in: a person's account, or a duty room's console by its device credential."""

    ACCOUNT = "account"
    DEVICE = "device"


@dataclass(frozen=True)
class Principal:
    """An account, or a console signed in for one duty room."""

    kind: PrincipalKind
    id: int
    name: str
    role: Role | None
    unit_id: int
    unit_path: str
    duty_room_id: int | None = None
    session_id: int | None = None
    csrf_token: str = ""

    def may(self, permission: str) -> bool:
        if self.kind == PrincipalKind.DEVICE:
            return permission in DEVICE_PERMISSIONS
        return self.role is not None and self.role in PERMISSIONS.get(permission, frozenset())

    def require(self, permission: str) -> None:
        if not self.may(permission):
            raise Forbidden("directory.not_allowed", permission=permission)

    def covers(self, unit_path: str) -> bool:
        """Whether a unit (by its path) lies in this principal's subtree."""
        return unit_path.startswith(self.unit_path)

    def describe(self) -> dict[str, object]:
        return {
            "kind": self.kind, "id": self.id, "name": self.name,
            "role": self.role.value if self.role else "console",
            "unit_id": self.unit_id, "duty_room_id": self.duty_room_id,
        }
