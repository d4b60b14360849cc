"""The directory's operations: every one checks role and scope, writes, and audits.

Handlers in ``web`` call these with the signed-in :class:`Principal`; nothing here
knows about HTTP.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from pypinyin import Style, lazy_pinyin
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from . import security
from .errors import AccountLocked, Conflict, Invalid, NotFound, NotSignedIn
from .models import (
    as_utc,
    Account, AuditEntry, DeviceCredential, DutyRoom, Role, Unit, UnitKind, WebSession, utcnow,
)
from .principal import Principal

MAX_FAILED_SIGN_INS = 5
LOCKOUT = dt.timedelta(minutes=15)
SESSION_TTL = dt.timedelta(hours=12)
DEVICE_SESSION_TTL = dt.timedelta(days=365)
CODE_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.\-@]{2,64}$")
PHONE_RE = re.compile(r"^[0-9+\-() ]{0,32}$")


def pinyin_key(text: str) -> str:
    """Searchable romanisation: initials then full pinyin, "ftq futianqu" for 福田区."""
    initials = "".join(lazy_pinyin(text, style=Style.FIRST_LETTER)).lower()
    full = "".join(lazy_pinyin(text)).lower()
    return f"{initials} {full}"



def _text(data: dict[str, Any], key: str, max_len: int, required: bool = True, default: str = "") -> str:
    value = data.get(key, None)
    if value is None:
        if required:
            raise Invalid(f"{key} is required", [{"field": key, "message": "required"}])
        return default
    if not isinstance(value, str) or (required and not value.strip()) or len(value.strip()) > max_len:
        raise Invalid(f"{key} must be text of 1 to {max_len} characters",
                      [{"field": key, "message": f"1 to {max_len} characters"}])
    return value.strip()


def _phone(data: dict[str, Any], key: str = "phone") -> str:
    phone = _text(data, key, 32, required=False)
    if not PHONE_RE.match(phone):
        raise Invalid(f"{key} is not a phone number", [{"field": key, "message": "digits, +, -, spaces"}])
    return phone


def unit_json(unit: Unit) -> dict[str, Any]:
    return {"id": unit.id, "code": unit.code, "name": unit.name, "kind": unit.kind.value,
            "parent_id": unit.parent_id, "active": unit.active, "sort_order": unit.sort_order}


def room_json(room: DutyRoom) -> dict[str, Any]:
    return {"id": room.id, "unit_id": room.unit_id, "name": room.name, "phone": room.phone,
            "location": room.location, "active": room.active}


def account_json(account: Account) -> dict[str, Any]:
    return {"id": account.id, "username": account.username, "display_name": account.display_name,
            "phone": account.phone, "role": account.role.value, "unit_id": account.unit_id,
            "active": account.active}


class Directory:
    """Units, duty rooms, accounts, credentials, sessions and the audit log."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    # -- helpers -----------------------------------------------------------------------

    @staticmethod
    def audit(db: AsyncSession, who: Principal | None, action: str, target_type: str,
              target_id: object, unit_path: str, **detail: Any) -> None:
        db.add(AuditEntry(
            account_id=who.id if who and who.kind == "account" else None,
            actor=f"{who.kind}:{who.name}" if who else "system",
            action=action, target_type=target_type, target_id=str(target_id),
            unit_path=unit_path, detail=detail,
        ))

    async def _unit_in_scope(self, db: AsyncSession, who: Principal, unit_id: object) -> Unit:
        unit = await db.get(Unit, unit_id) if isinstance(unit_id, int) and not isinstance(unit_id, bool) else None
        if unit is None or not who.covers(unit.path):
            raise NotFound(f"no unit {unit_id!r} in your scope")
        return unit

    async def _room_in_scope(self, db: AsyncSession, who: Principal, room_id: object) -> DutyRoom:
        room = await db.get(DutyRoom, room_id) if isinstance(room_id, int) and not isinstance(room_id, bool) else None
        if room is None:
            raise NotFound(f"no duty room {room_id!r} in your scope")
        unit = await db.get(Unit, room.unit_id)
        if unit is None or not who.covers(unit.path):
            raise NotFound(f"no duty room {room_id!r} in your scope")
        if who.kind == "device" and who.duty_room_id != room.id:
            raise NotFound(f"no duty room {room_id!r} in your scope")
        return room

    # -- sign-in -----------------------------------------------------------------------

    async def sign_in(self, username: str, password: str) -> tuple[str, Principal]:
        async with self.sessionmaker() as db:
            account = (await db.execute(select(Account).where(Account.username == username))).scalar_one_or_none()
            now = utcnow()
            if account is not None and as_utc(account.locked_until) and as_utc(account.locked_until) > now:
                raise AccountLocked("account locked after repeated failed sign-ins; try again later")
            if account is None or not account.active or not security.verify_password(account.password_hash, password):
                if account is not None:
                    account.failed_logins += 1
                    if account.failed_logins >= MAX_FAILED_SIGN_INS:
                        account.locked_until = now + LOCKOUT
                        account.failed_logins = 0
                        self.audit(db, None, "lock", "account", account.id, "/", username=username)
                    await db.commit()
                raise NotSignedIn("wrong username or password")
            account.failed_logins = 0
            account.locked_until = None
            token = security.new_token()
            session = WebSession(token_hash=security.token_hash(token), csrf_token=security.new_token(),
                                 account_id=account.id, expires_at=now + SESSION_TTL)
            db.add(session)
            unit = await db.get(Unit, account.unit_id)
            assert unit is not None
            principal = Principal("account", account.id, account.display_name, account.role, unit.id,
                                  unit.path, session_id=None, csrf_token=session.csrf_token)
            self.audit(db, principal, "sign_in", "account", account.id, unit.path)
            await db.commit()
            return token, Principal(**{**principal.__dict__, "session_id": session.id})

    async def device_sign_in(self, device_token: str) -> tuple[str, Principal]:
        async with self.sessionmaker() as db:
            credential = (await db.execute(select(DeviceCredential).where(
                DeviceCredential.token_hash == security.token_hash(device_token)))).scalar_one_or_none()
            if credential is None or credential.revoked_at is not None:
                raise NotSignedIn("unknown or revoked device credential")
            room = await db.get(DutyRoom, credential.duty_room_id)
            assert room is not None
            unit = await db.get(Unit, room.unit_id)
            assert unit is not None
            if not room.active or not unit.active:
                raise NotSignedIn("this duty room is deactivated")
            now = utcnow()
            credential.last_used_at = now
            token = security.new_token()
            session = WebSession(token_hash=security.token_hash(token), csrf_token=security.new_token(),
                                 device_id=credential.id, expires_at=now + DEVICE_SESSION_TTL)
            db.add(session)
            await db.commit()
            return token, Principal("device", credential.id, room.name, None, unit.id, unit.path,
                                    duty_room_id=room.id, session_id=session.id, csrf_token=session.csrf_token)

    async def principal(self, session_token: str) -> Principal:
        """The principal behind a session cookie, or NotSignedIn."""
        async with self.sessionmaker() as db:
            session = (await db.execute(select(WebSession).where(
                WebSession.token_hash == security.token_hash(session_token)))).scalar_one_or_none()
            if session is None or as_utc(session.expires_at) <= utcnow():
                raise NotSignedIn("session expired; sign in again")
            if session.account_id is not None:
                account = await db.get(Account, session.account_id)
                if account is None or not account.active:
                    raise NotSignedIn("account disabled")
                unit = await db.get(Unit, account.unit_id)
                assert unit is not None
                return Principal("account", account.id, account.display_name, account.role, unit.id,
                                 unit.path, session_id=session.id, csrf_token=session.csrf_token)
            credential = await db.get(DeviceCredential, session.device_id)
            if credential is None or credential.revoked_at is not None:
                raise NotSignedIn("device credential revoked")
            room = await db.get(DutyRoom, credential.duty_room_id)
            assert room is not None
            unit = await db.get(Unit, room.unit_id)
            assert unit is not None
            if not room.active:
                raise NotSignedIn("this duty room is deactivated")
            return Principal("device", credential.id, room.name, None, unit.id, unit.path,
                             duty_room_id=room.id, session_id=session.id, csrf_token=session.csrf_token)

    async def sign_out(self, who: Principal) -> None:
        async with self.sessionmaker() as db:
            session = await db.get(WebSession, who.session_id)
            if session is not None:
                await db.delete(session)
            self.audit(db, who, "sign_out", who.kind, who.id, who.unit_path)
            await db.commit()

    # -- units ---------------------------------------------------------------------------

    async def list_units(self, who: Principal, include_inactive: bool = False) -> list[dict[str, Any]]:
        who.require("units.read")
        async with self.sessionmaker() as db:
            query = select(Unit).where(Unit.path.startswith(who.unit_path))
            if not include_inactive:
                query = query.where(Unit.active.is_(True))
            units = (await db.execute(query)).scalars().all()
        return [unit_json(u) for u in tree_order(units)]

    async def create_unit(self, who: Principal, data: dict[str, Any]) -> dict[str, Any]:
        who.require("units.write")
        code = _text(data, "code", 32)
        if not CODE_RE.match(code):
            raise Invalid("code may hold letters, digits, '.', '-', '_'", [{"field": "code", "message": "format"}])
        name = _text(data, "name", 128)
        try:
            kind = UnitKind(data.get("kind"))
        except ValueError as exc:
            raise Invalid(f"kind must be one of {', '.join(k.value for k in UnitKind)}",
                          [{"field": "kind", "message": "unknown"}]) from exc
        async with self.sessionmaker() as db:
            parent = await self._unit_in_scope(db, who, data.get("parent_id"))
            if (await db.execute(select(Unit.id).where(Unit.code == code))).first():
                raise Conflict(f"unit code {code!r} is taken")
            unit = Unit(code=code, name=name, kind=kind, parent_id=parent.id, path=parent.path,
                        sort_order=int(data.get("sort_order") or 0), name_pinyin=pinyin_key(name))
            db.add(unit)
            await db.flush()
            unit.path = f"{parent.path}{unit.id}/"
            self.audit(db, who, "create", "unit", unit.id, unit.path, code=code, name=name)
            await db.commit()
            return unit_json(unit)

    async def update_unit(self, who: Principal, unit_id: int, data: dict[str, Any]) -> dict[str, Any]:
        who.require("units.write")
        async with self.sessionmaker() as db:
            unit = await self._unit_in_scope(db, who, unit_id)
            changes: dict[str, Any] = {}
            if "name" in data:
                unit.name = changes["name"] = _text(data, "name", 128)
                unit.name_pinyin = pinyin_key(unit.name)
            if "code" in data:
                code = _text(data, "code", 32)
                if not CODE_RE.match(code):
                    raise Invalid("code format", [{"field": "code", "message": "format"}])
                if code != unit.code and (await db.execute(select(Unit.id).where(Unit.code == code))).first():
                    raise Conflict(f"unit code {code!r} is taken")
                unit.code = changes["code"] = code
            if "kind" in data:
                try:
                    unit.kind = UnitKind(data["kind"])
                except ValueError as exc:
                    raise Invalid("unknown kind", [{"field": "kind", "message": "unknown"}]) from exc
                changes["kind"] = unit.kind.value
            if "sort_order" in data:
                if not isinstance(data["sort_order"], int):
                    raise Invalid("sort_order must be an integer", [{"field": "sort_order", "message": "integer"}])
                unit.sort_order = changes["sort_order"] = data["sort_order"]
            self.audit(db, who, "update", "unit", unit.id, unit.path, **changes)
            await db.commit()
            return unit_json(unit)

    async def move_unit(self, who: Principal, unit_id: int, parent_id: object) -> dict[str, Any]:
        who.require("units.write")
        async with self.sessionmaker() as db:
            unit = await self._unit_in_scope(db, who, unit_id)
            parent = await self._unit_in_scope(db, who, parent_id)
            if unit.parent_id is None or unit.path == who.unit_path:
                raise Invalid("the root of your scope cannot be moved")
            if parent.path.startswith(unit.path):
                raise Conflict("a unit cannot move under itself or its own descendants")
            old_path, new_path = unit.path, f"{parent.path}{unit.id}/"
            for descendant in (await db.execute(select(Unit).where(Unit.path.startswith(old_path)))).scalars():
                descendant.path = new_path + descendant.path[len(old_path):]
            unit.parent_id = parent.id
            self.audit(db, who, "move", "unit", unit.id, new_path, old_parent=old_path, new_parent=parent.id)
            await db.commit()
            return unit_json(unit)

    async def set_unit_active(self, who: Principal, unit_id: int, active: bool) -> dict[str, Any]:
        who.require("units.write")
        async with self.sessionmaker() as db:
            unit = await self._unit_in_scope(db, who, unit_id)
            if unit.path == who.unit_path and not active:
                raise Invalid("you cannot deactivate the root of your own scope")
            unit.active = active
            self.audit(db, who, "activate" if active else "deactivate", "unit", unit.id, unit.path)
            await db.commit()
            return unit_json(unit)

    # -- duty rooms ----------------------------------------------------------------------

    async def list_rooms(self, who: Principal, unit_id: int | None = None) -> list[dict[str, Any]]:
        who.require("rooms.read")
        async with self.sessionmaker() as db:
            query = select(DutyRoom).join(Unit).where(Unit.path.startswith(who.unit_path), DutyRoom.active.is_(True))
            if unit_id is not None:
                unit = await self._unit_in_scope(db, who, unit_id)
                query = query.where(DutyRoom.unit_id == unit.id)
            if who.kind == "device":
                query = query.where(DutyRoom.id == who.duty_room_id)
            rooms = (await db.execute(query.order_by(DutyRoom.id))).scalars().all()
        return [room_json(r) for r in rooms]

    async def get_room(self, who: Principal, room_id: int) -> dict[str, Any]:
        who.require("rooms.read")
        async with self.sessionmaker() as db:
            return room_json(await self._room_in_scope(db, who, room_id))

    async def create_room(self, who: Principal, data: dict[str, Any]) -> dict[str, Any]:
        who.require("rooms.write")
        name = _text(data, "name", 128)
        phone = _phone(data)
        location = _text(data, "location", 256, required=False)
        async with self.sessionmaker() as db:
            unit = await self._unit_in_scope(db, who, data.get("unit_id"))
            room = DutyRoom(unit_id=unit.id, name=name, phone=phone, location=location, name_pinyin=pinyin_key(name))
            db.add(room)
            await db.flush()
            self.audit(db, who, "create", "duty_room", room.id, unit.path, name=name)
            await db.commit()
            return room_json(room)

    async def update_room(self, who: Principal, room_id: int, data: dict[str, Any]) -> dict[str, Any]:
        who.require("rooms.write")
        async with self.sessionmaker() as db:
            room = await self._room_in_scope(db, who, room_id)
            changes: dict[str, Any] = {}
            if "name" in data:
                room.name = changes["name"] = _text(data, "name", 128)
                room.name_pinyin = pinyin_key(room.name)
            if "phone" in data:
                room.phone = changes["phone"] = _phone(data)
            if "location" in data:
                room.location = changes["location"] = _text(data, "location", 256, required=False)
            if "unit_id" in data:
                unit = await self._unit_in_scope(db, who, data["unit_id"])
                room.unit_id = changes["unit_id"] = unit.id
            if "active" in data:
                if not isinstance(data["active"], bool):
                    raise Invalid("active must be true or false", [{"field": "active", "message": "boolean"}])
                room.active = changes["active"] = data["active"]
            unit = await db.get(Unit, room.unit_id)
            self.audit(db, who, "update", "duty_room", room.id, unit.path if unit else "/", **changes)
            await db.commit()
            return room_json(room)

    # -- accounts and device credentials ---------------------------------------------------

    async def list_accounts(self, who: Principal) -> list[dict[str, Any]]:
        who.require("accounts.read")
        async with self.sessionmaker() as db:
            rows = (await db.execute(select(Account).join(Unit).where(Unit.path.startswith(who.unit_path))
                                     .order_by(Account.id))).scalars().all()
        return [account_json(a) for a in rows]

    async def create_account(self, who: Principal, data: dict[str, Any]) -> dict[str, Any]:
        who.require("accounts.write")
        username = _text(data, "username", 64)
        if not USERNAME_RE.match(username):
            raise Invalid("username may hold letters, digits, '.', '-', '_', '@'",
                          [{"field": "username", "message": "format"}])
        display_name = _text(data, "display_name", 128)
        password = data.get("password")
        if not isinstance(password, str) or len(password) < security.MIN_PASSWORD_LENGTH:
            raise Invalid(f"password must be at least {security.MIN_PASSWORD_LENGTH} characters",
                          [{"field": "password", "message": "too short"}])
        try:
            role = Role(data.get("role"))
        except ValueError as exc:
            raise Invalid("unknown role", [{"field": "role", "message": "unknown"}]) from exc
        phone = _phone(data)
        async with self.sessionmaker() as db:
            unit = await self._unit_in_scope(db, who, data.get("unit_id"))
            if (await db.execute(select(Account.id).where(Account.username == username))).first():
                raise Conflict(f"username {username!r} is taken")
            account = Account(username=username, display_name=display_name, phone=phone, role=role,
                              unit_id=unit.id, password_hash=security.hash_password(password),
                              name_pinyin=pinyin_key(display_name))
            db.add(account)
            await db.flush()
            self.audit(db, who, "create", "account", account.id, unit.path, username=username, role=role.value)
            await db.commit()
            return account_json(account)

    async def update_account(self, who: Principal, account_id: int, data: dict[str, Any]) -> dict[str, Any]:
        who.require("accounts.write")
        async with self.sessionmaker() as db:
            account = await db.get(Account, account_id)
            unit = await db.get(Unit, account.unit_id) if account else None
            if account is None or unit is None or not who.covers(unit.path):
                raise NotFound(f"no account {account_id!r} in your scope")
            changes: dict[str, Any] = {}
            if "display_name" in data:
                account.display_name = changes["display_name"] = _text(data, "display_name", 128)
                account.name_pinyin = pinyin_key(account.display_name)
            if "phone" in data:
                account.phone = changes["phone"] = _phone(data)
            if "role" in data:
                try:
                    account.role = Role(data["role"])
                except ValueError as exc:
                    raise Invalid("unknown role", [{"field": "role", "message": "unknown"}]) from exc
                changes["role"] = account.role.value
            if "unit_id" in data:
                unit = await self._unit_in_scope(db, who, data["unit_id"])
                account.unit_id = changes["unit_id"] = unit.id
            if "active" in data:
                if not isinstance(data["active"], bool):
                    raise Invalid("active must be true or false", [{"field": "active", "message": "boolean"}])
                if account.id == who.id and not data["active"]:
                    raise Invalid("you cannot deactivate yourself")
                account.active = changes["active"] = data["active"]
            if "password" in data:
                password = data["password"]
                if not isinstance(password, str) or len(password) < security.MIN_PASSWORD_LENGTH:
                    raise Invalid("password too short", [{"field": "password", "message": "too short"}])
                account.password_hash = security.hash_password(password)
                account.locked_until = None
                account.failed_logins = 0
                changes["password"] = "reset"
            self.audit(db, who, "update", "account", account.id, unit.path, **changes)
            await db.commit()
            return account_json(account)

    async def create_device_credential(self, who: Principal, room_id: int, label: str = "") -> dict[str, Any]:
        """A new console credential for a duty room; the token is shown once, stored hashed."""
        who.require("devices.write")
        async with self.sessionmaker() as db:
            room = await self._room_in_scope(db, who, room_id)
            token = security.new_token()
            credential = DeviceCredential(duty_room_id=room.id, token_hash=security.token_hash(token),
                                          label=label[:128], created_by=who.id if who.kind == "account" else None)
            db.add(credential)
            await db.flush()
            unit = await db.get(Unit, room.unit_id)
            self.audit(db, who, "create", "device_credential", credential.id, unit.path if unit else "/",
                       duty_room_id=room.id)
            await db.commit()
            return {"id": credential.id, "duty_room_id": room.id, "token": token, "label": credential.label}

    async def revoke_device_credential(self, who: Principal, credential_id: int) -> None:
        who.require("devices.write")
        async with self.sessionmaker() as db:
            credential = await db.get(DeviceCredential, credential_id)
            if credential is None:
                raise NotFound(f"no device credential {credential_id!r} in your scope")
            room = await self._room_in_scope(db, who, credential.duty_room_id)
            credential.revoked_at = credential.revoked_at or utcnow()
            unit = await db.get(Unit, room.unit_id)
            self.audit(db, who, "revoke", "device_credential", credential.id, unit.path if unit else "/")
            await db.commit()

    # -- audit and contacts ------------------------------------------------------------------

    async def audit_log(self, who: Principal, limit: int = 200) -> list[dict[str, Any]]:
        who.require("audit.read")
        async with self.sessionmaker() as db:
            rows = (await db.execute(select(AuditEntry).where(AuditEntry.unit_path.startswith(who.unit_path))
                                     .order_by(AuditEntry.id.desc()).limit(max(1, min(limit, 1000))))).scalars()
            return [{"id": e.id, "at": as_utc(e.at).isoformat(), "actor": e.actor, "action": e.action,
                     "target_type": e.target_type, "target_id": e.target_id, "detail": e.detail} for e in rows]

    async def search_contacts(self, who: Principal, q: str, limit: int = 50) -> list[dict[str, Any]]:
        """Units, duty rooms and people by name, pinyin (initials or full) or phone number."""
        who.require("contacts.read")
        q = q.strip().lower()
        if not q:
            return []
        like = f"%{q}%"
        results: list[dict[str, Any]] = []
        async with self.sessionmaker() as db:
            units = (await db.execute(select(Unit).where(
                Unit.path.startswith(who.unit_path), Unit.active.is_(True),
                or_(Unit.name.contains(q), Unit.name_pinyin.like(like), Unit.code.ilike(like)),
            ).limit(limit))).scalars()
            results += [{"type": "unit", "id": u.id, "name": u.name, "phone": "", "unit_id": u.id} for u in units]
            rooms = (await db.execute(select(DutyRoom, Unit).join(Unit).where(
                Unit.path.startswith(who.unit_path), DutyRoom.active.is_(True),
                or_(DutyRoom.name.contains(q), DutyRoom.name_pinyin.like(like), DutyRoom.phone.contains(q)),
            ).limit(limit))).all()
            results += [{"type": "duty_room", "id": r.id, "name": r.name, "phone": r.phone, "unit_id": r.unit_id,
                         "unit_name": u.name} for r, u in rooms]
            people = (await db.execute(select(Account, Unit).join(Unit).where(
                Unit.path.startswith(who.unit_path), Account.active.is_(True),
                or_(Account.display_name.contains(q), Account.name_pinyin.like(like), Account.phone.contains(q)),
            ).limit(limit))).all()
            results += [{"type": "person", "id": a.id, "name": a.display_name, "phone": a.phone,
                         "unit_id": a.unit_id, "unit_name": u.name} for a, u in people]
        return results[:limit]


def tree_order(units: Any) -> list[Unit]:
    """Units depth-first, siblings by (sort_order, code): the order of every listing and the handbook."""
    children: dict[int | None, list[Unit]] = {}
    ids = {u.id for u in units}
    for unit in units:
        parent = unit.parent_id if unit.parent_id in ids else None
        children.setdefault(parent, []).append(unit)
    for siblings in children.values():
        siblings.sort(key=lambda u: (u.sort_order, u.code))
    ordered: list[Unit] = []

    def walk(parent: int | None) -> None:
        for unit in children.get(parent, []):
            ordered.append(unit)
            walk(unit.id)

    walk(None)
    return ordered
