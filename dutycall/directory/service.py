"""The directory's operations: every one checks role and scope, writes, and audits.

Handlers in ``web`` call these with the signed-in :class:`Principal`; nothing here
knows about HTTP.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from pypinyin import Style, lazy_pinyin
from collections.abc import Callable

from sqlalchemy import delete, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..db import Base
from ..text import unsafe_reason
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
        raise Invalid(f"{key} 应为 1 至 {max_len} 个字符的文本",
                      [{"field": key, "message": f"1 to {max_len} characters"}])
    reason = unsafe_reason(value)
    if reason:
        raise Invalid(f"{key} {reason}", [{"field": key, "message": "control characters"}])
    return value.strip()


def _sort_order(data: dict[str, Any]) -> int:
    value = data.get("sort_order", 0)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or not -1_000_000 <= value <= 1_000_000:
        raise Invalid("sort_order 应为整数", [{"field": "sort_order", "message": "integer"}])
    return value


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
        #: Called after any change that may end or narrow someone's live access (sign-out,
        #: revocation, reset, deactivation, a move): the web layer re-checks open sockets.
        self.on_access_changed: Callable[[], None] | None = None
        #: Failed sign-ins per unknown username: they lock like real accounts do.
        self._unknown_failures: dict[str, tuple[int, dt.datetime]] = {}

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
        """A session for an account, or NotSignedIn / AccountLocked.

        Each attempt is counted *before* the slow password check, atomically in the database,
        so parallel guesses cannot all slip past the lockout; unknown usernames cost the same
        time and lock the same way (in memory), so neither timing nor 423 tells which exist.
        """
        now = utcnow()
        async with self.sessionmaker() as db:
            account = (await db.execute(select(Account).where(Account.username == username))).scalar_one_or_none()
            if account is None:
                self._check_unknown_lock(username, now)
                claimed = 0
            else:
                claimed = await self._claim_attempt(db, account, now)
            password_hash = account.password_hash if account is not None and account.active else None
            if account is not None and password_hash is not None and not await self._unit_active(db, account.unit_id):
                password_hash = None
        ok = await security.verify_password_async(password_hash, password)
        async with self.sessionmaker() as db:
            if not ok:
                if account is None:
                    self._fail_unknown(username, now)
                elif claimed >= MAX_FAILED_SIGN_INS:
                    await db.execute(update(Account).where(Account.id == account.id, Account.locked_until.is_(None))
                                     .values(locked_until=now + LOCKOUT))
                    self.audit(db, None, "lock", "account", account.id, "/", username=username)
                    await db.commit()
                raise NotSignedIn("用户名或密码错误")
            assert account is not None
            await db.execute(update(Account).where(Account.id == account.id).values(failed_logins=0, locked_until=None))
            token = security.new_token()
            session = WebSession(token_hash=security.token_hash(token), csrf_token=security.new_token(),
                                 account_id=account.id, expires_at=now + SESSION_TTL)
            db.add(session)
            unit = await db.get(Unit, account.unit_id)
            assert unit is not None
            await db.flush()
            principal = Principal("account", account.id, account.display_name, account.role, unit.id,
                                  unit.path, session_id=session.id, csrf_token=session.csrf_token)
            self.audit(db, principal, "sign_in", "account", account.id, unit.path)
            await db.commit()
            return token, principal

    async def _claim_attempt(self, db: AsyncSession, account: Account, now: dt.datetime) -> int:
        """Count one more attempt in the database (atomically); AccountLocked when over the limit."""
        locked_until = as_utc(account.locked_until)
        if locked_until is not None and locked_until > now:
            raise AccountLocked("连续登录失败次数过多，账号已暂时锁定，请稍后再试")
        if locked_until is not None:  # the lock has run out: start counting afresh
            await db.execute(update(Account).where(Account.id == account.id, Account.locked_until.is_not(None))
                             .values(failed_logins=0, locked_until=None))
        # UPDATE takes the row's write lock until commit (SQLite: the database's), so the
        # count read back in the same transaction is ours alone.
        await db.execute(update(Account).where(Account.id == account.id)
                         .values(failed_logins=Account.failed_logins + 1))
        claimed = (await db.execute(select(Account.failed_logins).where(Account.id == account.id))).scalar_one()
        await db.commit()
        if claimed > MAX_FAILED_SIGN_INS:
            raise AccountLocked("连续登录失败次数过多，账号已暂时锁定，请稍后再试")
        return int(claimed)

    def _check_unknown_lock(self, username: str, now: dt.datetime) -> None:
        count, since = self._unknown_failures.get(username, (0, now))
        if now - since > LOCKOUT:
            self._unknown_failures.pop(username, None)
        elif count >= MAX_FAILED_SIGN_INS:
            raise AccountLocked("连续登录失败次数过多，账号已暂时锁定，请稍后再试")

    def _fail_unknown(self, username: str, now: dt.datetime) -> None:
        if len(self._unknown_failures) >= 10_000:  # bounded: forget the oldest
            oldest = min(self._unknown_failures, key=lambda k: self._unknown_failures[k][1])
            del self._unknown_failures[oldest]
        count, since = self._unknown_failures.get(username, (0, now))
        self._unknown_failures[username[:128]] = (count + 1, since)

    async def _unit_active(self, db: AsyncSession, unit_id: int) -> bool:
        """Whether a unit and every unit above it are active (a deactivated district takes its streets)."""
        unit = await db.get(Unit, unit_id)
        if unit is None or not unit.active:
            return False
        ids = [int(p) for p in unit.path.strip("/").split("/") if p]
        inactive = (await db.execute(select(func.count(Unit.id)).where(
            Unit.id.in_(ids), Unit.active.is_(False)))).scalar_one()
        return inactive == 0

    def _access_changed(self) -> None:
        if self.on_access_changed is not None:
            self.on_access_changed()

    async def device_sign_in(self, device_token: str) -> tuple[str, Principal]:
        async with self.sessionmaker() as db:
            credential = (await db.execute(select(DeviceCredential).where(
                DeviceCredential.token_hash == security.token_hash(device_token)))).scalar_one_or_none()
            if credential is None or credential.revoked_at is not None:
                raise NotSignedIn("终端凭证无效或已被吊销")
            room = await db.get(DutyRoom, credential.duty_room_id)
            assert room is not None
            unit = await db.get(Unit, room.unit_id)
            assert unit is not None
            if not room.active or not await self._unit_active(db, unit.id):
                raise NotSignedIn("该值班室或其单位已停用")
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
                raise NotSignedIn("登录已过期，请重新登录")
            if session.account_id is not None:
                account = await db.get(Account, session.account_id)
                if account is None or not account.active:
                    raise NotSignedIn("账号已停用")
                unit = await db.get(Unit, account.unit_id)
                assert unit is not None
                if not await self._unit_active(db, unit.id):
                    raise NotSignedIn("账号所属单位已停用")
                return Principal("account", account.id, account.display_name, account.role, unit.id,
                                 unit.path, session_id=session.id, csrf_token=session.csrf_token)
            credential = await db.get(DeviceCredential, session.device_id)
            if credential is None or credential.revoked_at is not None:
                raise NotSignedIn("终端凭证已被吊销")
            room = await db.get(DutyRoom, credential.duty_room_id)
            assert room is not None
            unit = await db.get(Unit, room.unit_id)
            assert unit is not None
            if not room.active or not await self._unit_active(db, unit.id):
                raise NotSignedIn("该值班室或其单位已停用")
            return Principal("device", credential.id, room.name, None, unit.id, unit.path,
                             duty_room_id=room.id, session_id=session.id, csrf_token=session.csrf_token)

    async def sign_out(self, who: Principal) -> None:
        async with self.sessionmaker() as db:
            session = await db.get(WebSession, who.session_id)
            if session is not None:
                await db.delete(session)
            self.audit(db, who, "sign_out", who.kind, who.id, who.unit_path)
            await db.commit()
        self._access_changed()

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
                        sort_order=_sort_order(data), name_pinyin=pinyin_key(name))
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
                unit.sort_order = changes["sort_order"] = _sort_order(data)
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
            await _move_path_copies(db, old_path, new_path)
            self.audit(db, who, "move", "unit", unit.id, new_path, old_parent=old_path, new_parent=parent.id)
            await db.commit()
        self._access_changed()
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
        self._access_changed()
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
        if "active" in changes or "unit_id" in changes or "name" in changes:
            self._access_changed()
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
                              unit_id=unit.id, password_hash=await security.hash_password_async(password),
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
                account.password_hash = await security.hash_password_async(password)
                account.locked_until = None
                account.failed_logins = 0
                changes["password"] = "reset"
            if "password" in changes or changes.get("active") is False:
                # A reset or a deactivation ends every session of the account, everywhere.
                await db.execute(delete(WebSession).where(WebSession.account_id == account.id))
            self.audit(db, who, "update", "account", account.id, unit.path, **changes)
            await db.commit()
        if changes:
            self._access_changed()
        return account_json(account)

    async def account_in_scope(self, who: Principal, account_id: int) -> dict[str, Any]:
        """An active account in the principal's scope, by id (its public fields), or NotFound."""
        async with self.sessionmaker() as db:
            account = await db.get(Account, account_id)
            unit = await db.get(Unit, account.unit_id) if account else None
            if account is None or unit is None or not account.active or not who.covers(unit.path):
                raise NotFound(f"no account {account_id!r} in your scope")
            return {"id": account.id, "display_name": account.display_name, "unit_id": account.unit_id}

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
            await db.execute(delete(WebSession).where(WebSession.device_id == credential.id))
            unit = await db.get(Unit, room.unit_id)
            self.audit(db, who, "revoke", "device_credential", credential.id, unit.path if unit else "/")
            await db.commit()
        self._access_changed()

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


async def _move_path_copies(db: AsyncSession, old_path: str, new_path: str) -> None:
    """Rows elsewhere keep a copy of their unit's path for scope (notices, roll-calls, plans,
    the audit log): move every copy under ``old_path`` in the same transaction as the units,
    so nothing is orphaned out of its new scope or left visible to the old one."""
    for table in Base.metadata.sorted_tables:
        column = table.c.get("unit_path")
        if column is None:
            continue
        await db.execute(table.update().where(column.startswith(old_path, autoescape=True)).values(
            {column: literal(new_path) + func.substr(column, len(old_path) + 1)}))


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
