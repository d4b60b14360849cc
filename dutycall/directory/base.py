"""The shared base of the directory's parts (see service.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .models import AuditEntry
from .principal import Principal, PrincipalKind


class DirectoryBase:
    """What every part of the directory shares: the sessionmaker, auditing, the access-changed hook."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker
        #: Called after any change that may end or narrow someone's live access (sign-out,
        #: revocation, reset, deactivation, a move): the web layer re-checks open sockets.
        self.on_access_changed: Callable[[], None] | None = None
        #: Failed sign-ins per unknown username: they lock like real accounts do.
        self._unknown_failures: dict[str, tuple[int, dt.datetime | None]] = {}

    # -- helpers -----------------------------------------------------------------------

    @staticmethod
    def audit(db: AsyncSession, who: Principal | None, action: str, target_type: str,
              target_id: object, unit_path: str, **detail: Any) -> None:
        db.add(AuditEntry(
            account_id=who.id if who and who.kind == PrincipalKind.ACCOUNT else None,
            actor=f"{who.kind}:{who.name}" if who else "system",
            action=action, target_type=target_type, target_id=str(target_id),
            unit_path=unit_path, detail=detail,
        ))

    def _access_changed(self) -> None:
        if self.on_access_changed is not None:
            self.on_access_changed()
