"""First run: a root unit and an administrator, so someone can sign in."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from . import security
from .models import Account, Role, Unit, UnitKind
from .service import Directory, pinyin_key


@dataclass
class FirstAdmin:
    username: str
    password: str
    generated: bool


async def ensure_first_admin(
    sessionmaker: async_sessionmaker[AsyncSession], username: str | None, password: str | None
) -> FirstAdmin | None:
    """Create the root unit and an administrator if there are no accounts; None otherwise."""
    async with sessionmaker() as db:
        if (await db.execute(select(func.count(Account.id)))).scalar_one():
            return None
        root = (await db.execute(select(Unit).where(Unit.parent_id.is_(None)).order_by(Unit.id))).scalars().first()
        if root is None:
            root = Unit(code="city", name="市总值班室", kind=UnitKind.city, path="/",
                        name_pinyin=pinyin_key("市总值班室"))
            db.add(root)
            await db.flush()
            root.path = f"/{root.id}/"
        generated = not password
        admin = FirstAdmin(username or "admin", password or security.new_password(), generated)
        db.add(Account(username=admin.username, display_name="系统管理员", role=Role.admin, unit_id=root.id,
                       password_hash=security.hash_password(admin.password), name_pinyin=pinyin_key("系统管理员")))
        Directory.audit(db, None, "create_first_admin", "account", admin.username, root.path)
        await db.commit()
        return admin
