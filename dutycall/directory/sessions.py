"""Sign-in (accounts and consoles), the principal behind a session, sign-out; the lockout."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from . import security
from .base import DirectoryBase
from .errors import AccountLocked, NotSignedIn
from .models import (
    Account,
    DeviceCredential,
    DutyRoom,
    Unit,
    WebSession,
    as_utc,
    utcnow,
)
from .principal import Principal, PrincipalKind
from .scope import unit_active

MAX_FAILED_SIGN_INS = 5
LOCKOUT = dt.timedelta(minutes=15)
SESSION_TTL = dt.timedelta(hours=12)
DEVICE_SESSION_TTL = dt.timedelta(days=365)

class Sessions(DirectoryBase):
    """Sign-in (accounts and consoles), the principal behind a session, sign-out; the lockout."""

    # -- sign-in -----------------------------------------------------------------------

    async def sign_in(self, username: str, password: str, client: str = "") -> tuple[str, Principal]:
        """A session for an account, or NotSignedIn / AccountLocked; ``client`` (the address it
        came from) goes into the audit log.

        Each attempt is counted *before* the slow password check, atomically in the database,
        so parallel guesses cannot all slip past the lockout; unknown usernames cost the same
        time and lock the same way (in memory), so neither timing nor 423 tells which exist.
        """
        now = utcnow()
        async with self.sessionmaker() as db:
            account = (await db.execute(select(Account).where(Account.username == username))).scalar_one_or_none()
            if account is None:
                claimed = self._claim_unknown(username, now)
            else:
                claimed = await self._claim_attempt(db, account, now)
            password_hash = account.password_hash if account is not None and account.active else None
            if account is not None and password_hash is not None and not await unit_active(db, account.unit_id):
                password_hash = None
        ok = await security.verify_password_async(password_hash, password)
        async with self.sessionmaker() as db:
            if not ok:
                if account is None:
                    self._fail_unknown(username, claimed, now)
                elif claimed >= MAX_FAILED_SIGN_INS:
                    await db.execute(update(Account).where(Account.id == account.id, Account.locked_until.is_(None))
                                     .values(locked_until=now + LOCKOUT))
                    self.audit(db, None, "lock", "account", account.id, "/", username=username, client=client)
                    await db.commit()
                raise NotSignedIn("directory.bad_credentials")
            assert account is not None
            await db.execute(update(Account).where(Account.id == account.id).values(failed_logins=0, locked_until=None))
            token = security.new_token()
            session = WebSession(token_hash=security.token_hash(token), csrf_token=security.new_token(),
                                 account_id=account.id, expires_at=now + SESSION_TTL)
            db.add(session)
            unit = await db.get(Unit, account.unit_id)
            assert unit is not None
            await db.flush()
            principal = Principal(PrincipalKind.ACCOUNT, account.id, account.display_name, account.role, unit.id,
                                  unit.path, session_id=session.id, csrf_token=session.csrf_token)
            self.audit(db, principal, "sign_in", "account", account.id, unit.path, client=client)
            await db.commit()
            return token, principal

    async def _claim_attempt(self, db: AsyncSession, account: Account, now: dt.datetime) -> int:
        """Count one more attempt in the database (atomically); AccountLocked when over the limit."""
        locked_until = as_utc(account.locked_until)
        if locked_until is not None and locked_until > now:
            raise AccountLocked("directory.account_locked")
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
            raise AccountLocked("directory.account_locked")
        return int(claimed)

    def _claim_unknown(self, username: str, now: dt.datetime) -> int:
        """An unknown username counts and locks exactly as an account does (before the check,
        no time window until it locks, 15 min locked), so no answer tells the two apart."""
        count, locked_until = self._unknown_failures.get(username, (0, None))
        if locked_until is not None and locked_until > now:
            raise AccountLocked("directory.account_locked")
        if locked_until is not None:
            count = 0
        if username not in self._unknown_failures and len(self._unknown_failures) >= 10_000:
            del self._unknown_failures[next(iter(self._unknown_failures))]  # bounded: forget the oldest
        self._unknown_failures[username] = (count + 1, None)
        if count + 1 > MAX_FAILED_SIGN_INS:
            raise AccountLocked("directory.account_locked")
        return count + 1

    def _fail_unknown(self, username: str, claimed: int, now: dt.datetime) -> None:
        if claimed >= MAX_FAILED_SIGN_INS:
            self._unknown_failures[username] = (claimed, now + LOCKOUT)

    async def device_sign_in(self, device_token: str) -> tuple[str, Principal]:
        async with self.sessionmaker() as db:
            credential = (await db.execute(select(DeviceCredential).where(
                DeviceCredential.token_hash == security.token_hash(device_token)))).scalar_one_or_none()
            if credential is None or credential.revoked_at is not None:
                raise NotSignedIn("directory.device_invalid")
            room, unit = await _console_room(db, credential)
            now = utcnow()
            credential.last_used_at = now
            token = security.new_token()
            session = WebSession(token_hash=security.token_hash(token), csrf_token=security.new_token(),
                                 device_id=credential.id, expires_at=now + DEVICE_SESSION_TTL)
            db.add(session)
            await db.commit()
            return token, Principal(PrincipalKind.DEVICE, credential.id, room.name, None, unit.id, unit.path,
                                    duty_room_id=room.id, session_id=session.id, csrf_token=session.csrf_token)

    async def principal(self, session_token: str) -> Principal:
        """The principal behind a session cookie, or NotSignedIn."""
        async with self.sessionmaker() as db:
            session = (await db.execute(select(WebSession).where(
                WebSession.token_hash == security.token_hash(session_token)))).scalar_one_or_none()
            if session is None or as_utc(session.expires_at) <= utcnow():
                raise NotSignedIn("directory.session_expired")
            if session.account_id is not None:
                account = await db.get(Account, session.account_id)
                if account is None or not account.active:
                    raise NotSignedIn("directory.account_inactive")
                unit = await db.get(Unit, account.unit_id)
                assert unit is not None
                if not await unit_active(db, unit.id):
                    raise NotSignedIn("directory.unit_inactive")
                return Principal(PrincipalKind.ACCOUNT, account.id, account.display_name, account.role, unit.id,
                                 unit.path, session_id=session.id, csrf_token=session.csrf_token)
            credential = await db.get(DeviceCredential, session.device_id)
            if credential is None or credential.revoked_at is not None:
                raise NotSignedIn("directory.device_revoked")
            room, unit = await _console_room(db, credential)
            return Principal(PrincipalKind.DEVICE, credential.id, room.name, None, unit.id, unit.path,
                             duty_room_id=room.id, session_id=session.id, csrf_token=session.csrf_token)

    async def sign_out(self, who: Principal) -> None:
        async with self.sessionmaker() as db:
            session = await db.get(WebSession, who.session_id)
            if session is not None:
                await db.delete(session)
            self.audit(db, who, "sign_out", who.kind, who.id, who.unit_path)
            await db.commit()
        self._access_changed()


async def _console_room(db: AsyncSession, credential: DeviceCredential) -> tuple[DutyRoom, Unit]:
    """A console credential's duty room and unit, or NotSignedIn while either is deactivated."""
    room = await db.get(DutyRoom, credential.duty_room_id)
    assert room is not None
    unit = await db.get(Unit, room.unit_id)
    assert unit is not None
    if not room.active or not await unit_active(db, unit.id):
        raise NotSignedIn("directory.room_inactive")
    return room, unit
