"""The directory's operations: every one checks role and scope, writes, and audits.

Handlers in ``web`` call these with the signed-in :class:`Principal`; nothing here knows
about HTTP. One class, split by concern into parts (as LiveKit splits a participant over
files): ``sessions.py`` (sign-in, sessions, lockout), ``units.py``, ``duty_rooms.py``,
``accounts.py`` (accounts and console credentials), ``contacts.py`` (audit log and contacts
search); the scope rule lives in ``scope.py``, input checks in ``fields.py``, JSON shapes in
``shapes.py``.
"""

from __future__ import annotations

from .accounts import Accounts
from .contacts import AuditAndContacts
from .duty_rooms import DutyRooms
from .fields import CODE_RE, PHONE_RE, USERNAME_RE, pinyin_key
from .scope import tree_order, within
from .sessions import (
    DEVICE_SESSION_TTL,
    LOCKOUT,
    MAX_FAILED_SIGN_INS,
    SESSION_TTL,
    Sessions,
)
from .shapes import account_json, room_json, unit_json
from .units import Units

__all__ = [
    "CODE_RE", "DEVICE_SESSION_TTL", "LOCKOUT", "MAX_FAILED_SIGN_INS", "PHONE_RE", "SESSION_TTL", "USERNAME_RE",
    "Directory", "account_json", "pinyin_key", "room_json", "tree_order", "unit_json", "within",
]


class Directory(Sessions, Units, DutyRooms, Accounts, AuditAndContacts):
    """Units, duty rooms, accounts, credentials, sessions and the audit log."""
