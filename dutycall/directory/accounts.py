"""Accounts and console (device) credentials."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from . import security
from .base import DirectoryBase
from .errors import Conflict, Invalid, NotFound
from .fields import USERNAME_RE, phone_field, pinyin_key, text_field
from .models import Account, DeviceCredential, Role, Unit, WebSession, as_utc, utcnow
from .principal import Principal, PrincipalKind
from .scope import room_in_scope, unit_in_scope, within
from .shapes import account_json


class Accounts(DirectoryBase):
    """Accounts and console (device) credentials."""

    # -- accounts and device credentials ---------------------------------------------------

    async def list_accounts(self, who: Principal) -> list[dict[str, Any]]:
        who.require("accounts.read")
        async with self.sessionmaker() as db:
            rows = (await db.execute(select(Account).join(Unit).where(within(Unit.path, who))
                                     .order_by(Account.id))).scalars().all()
        return [account_json(a) for a in rows]

    async def create_account(self, who: Principal, data: dict[str, Any]) -> dict[str, Any]:
        who.require("accounts.write")
        username = text_field(data, "username", 64)
        if not USERNAME_RE.match(username):
            raise Invalid("directory.username_format", field="username")
        display_name = text_field(data, "display_name", 128)
        password = data.get("password")
        if not isinstance(password, str) or len(password) < security.MIN_PASSWORD_LENGTH:
            raise Invalid("directory.password_short", field="password", min=security.MIN_PASSWORD_LENGTH)
        try:
            role = Role(data.get("role"))
        except ValueError as exc:
            raise Invalid("directory.unknown_role", field="role") from exc
        phone = phone_field(data)
        async with self.sessionmaker() as db:
            unit = await unit_in_scope(db, who, data.get("unit_id"))
            if (await db.execute(select(Account.id).where(Account.username == username))).first():
                raise Conflict("directory.username_taken", field="username", username=username)
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
                raise NotFound("directory.account_not_found", id=account_id)
            changes: dict[str, Any] = {}
            if "display_name" in data:
                account.display_name = changes["display_name"] = text_field(data, "display_name", 128)
                account.name_pinyin = pinyin_key(account.display_name)
            if "phone" in data:
                account.phone = changes["phone"] = phone_field(data)
            if "role" in data:
                try:
                    account.role = Role(data["role"])
                except ValueError as exc:
                    raise Invalid("directory.unknown_role", field="role") from exc
                changes["role"] = account.role.value
            if "unit_id" in data:
                unit = await unit_in_scope(db, who, data["unit_id"])
                account.unit_id = changes["unit_id"] = unit.id
            if "active" in data:
                if not isinstance(data["active"], bool):
                    raise Invalid("field.boolean", field="active", name="active")
                if account.id == who.id and not data["active"]:
                    raise Invalid("directory.cannot_deactivate_self", field="active")
                account.active = changes["active"] = data["active"]
            if "password" in data:
                password = data["password"]
                if not isinstance(password, str) or len(password) < security.MIN_PASSWORD_LENGTH:
                    raise Invalid("directory.password_short", field="password", min=security.MIN_PASSWORD_LENGTH)
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
                raise NotFound("directory.account_not_found", id=account_id)
            return {"id": account.id, "display_name": account.display_name, "unit_id": account.unit_id}

    async def create_device_credential(self, who: Principal, room_id: int, label: str = "") -> dict[str, Any]:
        """A new console credential for a duty room; the token is shown once, stored hashed."""
        who.require("devices.write")
        async with self.sessionmaker() as db:
            room = await room_in_scope(db, who, room_id)
            token = security.new_token()
            credential = DeviceCredential(duty_room_id=room.id, token_hash=security.token_hash(token),
                                          label=label[:128],
                                          created_by=who.id if who.kind == PrincipalKind.ACCOUNT else None)
            db.add(credential)
            await db.flush()
            unit = await db.get(Unit, room.unit_id)
            self.audit(db, who, "create", "device_credential", credential.id, unit.path if unit else "/",
                       duty_room_id=room.id)
            await db.commit()
            return {"id": credential.id, "duty_room_id": room.id, "token": token, "label": credential.label}

    async def list_device_credentials(self, who: Principal, room_id: int) -> list[dict[str, Any]]:
        """A duty room's console credentials, newest first (never their tokens), so one can be revoked."""
        who.require("devices.write")
        async with self.sessionmaker() as db:
            room = await room_in_scope(db, who, room_id)
            rows = (await db.execute(select(DeviceCredential).where(DeviceCredential.duty_room_id == room.id)
                                     .order_by(DeviceCredential.id.desc()))).scalars().all()

        def when(value: Any) -> str | None:
            return as_utc(value).isoformat() if value is not None else None

        return [{"id": c.id, "duty_room_id": c.duty_room_id, "label": c.label, "created_at": when(c.created_at),
                 "last_used_at": when(c.last_used_at), "revoked_at": when(c.revoked_at)} for c in rows]

    async def revoke_device_credential(self, who: Principal, credential_id: int) -> None:
        who.require("devices.write")
        async with self.sessionmaker() as db:
            credential = await db.get(DeviceCredential, credential_id)
            if credential is None:
                raise NotFound("directory.credential_not_found", id=credential_id)
            room = await room_in_scope(db, who, credential.duty_room_id)
            credential.revoked_at = credential.revoked_at or utcnow()
            await db.execute(delete(WebSession).where(WebSession.device_id == credential.id))
            unit = await db.get(Unit, room.unit_id)
            self.audit(db, who, "revoke", "device_credential", credential.id, unit.path if unit else "/")
            await db.commit()
        self._access_changed()
