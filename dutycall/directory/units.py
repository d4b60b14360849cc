"""Units: listing in tree order, create, edit, move (with every stored path copy), (de)activate."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from .base import DirectoryBase
from .errors import Conflict, Invalid
from .fields import CODE_RE, pinyin_key, sort_order_field, text_field
from .models import Unit, UnitKind
from .principal import Principal
from .scope import move_path_copies, tree_order, unit_in_scope, within
from .shapes import unit_json


class Units(DirectoryBase):
    """Units: listing in tree order, create, edit, move (with every stored path copy), (de)activate."""

    # -- units ---------------------------------------------------------------------------

    async def list_units(self, who: Principal, include_inactive: bool = False) -> list[dict[str, Any]]:
        who.require("units.read")
        async with self.sessionmaker() as db:
            query = select(Unit).where(within(Unit.path, who))
            if not include_inactive:
                query = query.where(Unit.active.is_(True))
            units = (await db.execute(query)).scalars().all()
        return [unit_json(u) for u in tree_order(units)]

    async def create_unit(self, who: Principal, data: dict[str, Any]) -> dict[str, Any]:
        who.require("units.write")
        code = text_field(data, "code", 32)
        if not CODE_RE.match(code):
            raise Invalid("directory.unit_code_format", field="code")
        name = text_field(data, "name", 128)
        try:
            kind = UnitKind(data.get("kind"))
        except ValueError as exc:
            raise Invalid("directory.unit_kind", field="kind", kinds=", ".join(k.value for k in UnitKind)) from exc
        async with self.sessionmaker() as db:
            parent = await unit_in_scope(db, who, data.get("parent_id"))
            if (await db.execute(select(Unit.id).where(Unit.code == code))).first():
                raise Conflict("directory.unit_code_taken", field="code", code=code)
            unit = Unit(code=code, name=name, kind=kind, parent_id=parent.id, path=parent.path,
                        sort_order=sort_order_field(data), name_pinyin=pinyin_key(name))
            db.add(unit)
            await db.flush()
            unit.path = f"{parent.path}{unit.id}/"
            self.audit(db, who, "create", "unit", unit.id, unit.path, code=code, name=name)
            await db.commit()
            return unit_json(unit)

    async def update_unit(self, who: Principal, unit_id: int, data: dict[str, Any]) -> dict[str, Any]:
        who.require("units.write")
        async with self.sessionmaker() as db:
            unit = await unit_in_scope(db, who, unit_id)
            changes: dict[str, Any] = {}
            if "name" in data:
                unit.name = changes["name"] = text_field(data, "name", 128)
                unit.name_pinyin = pinyin_key(unit.name)
            if "code" in data:
                code = text_field(data, "code", 32)
                if not CODE_RE.match(code):
                    raise Invalid("directory.unit_code_format", field="code")
                if code != unit.code and (await db.execute(select(Unit.id).where(Unit.code == code))).first():
                    raise Conflict("directory.unit_code_taken", field="code", code=code)
                unit.code = changes["code"] = code
            if "kind" in data:
                try:
                    unit.kind = UnitKind(data["kind"])
                except ValueError as exc:
                    raise Invalid("directory.unit_kind", field="kind",
                                  kinds=", ".join(k.value for k in UnitKind)) from exc
                changes["kind"] = unit.kind.value
            if "sort_order" in data:
                unit.sort_order = changes["sort_order"] = sort_order_field(data)
            self.audit(db, who, "update", "unit", unit.id, unit.path, **changes)
            await db.commit()
            return unit_json(unit)

    async def move_unit(self, who: Principal, unit_id: int, parent_id: object) -> dict[str, Any]:
        who.require("units.write")
        async with self.sessionmaker() as db:
            unit = await unit_in_scope(db, who, unit_id)
            parent = await unit_in_scope(db, who, parent_id)
            if unit.parent_id is None or unit.path == who.unit_path:
                raise Invalid("directory.cannot_move_root", field="parent_id")
            if parent.path.startswith(unit.path):
                raise Conflict("directory.move_cycle", field="parent_id")
            old_path, new_path = unit.path, f"{parent.path}{unit.id}/"
            for descendant in (await db.execute(select(Unit).where(Unit.path.startswith(old_path)))).scalars():
                descendant.path = new_path + descendant.path[len(old_path):]
            unit.parent_id = parent.id
            await move_path_copies(db, old_path, new_path)
            self.audit(db, who, "move", "unit", unit.id, new_path, old_parent=old_path, new_parent=parent.id)
            await db.commit()
        self._access_changed()
        return unit_json(unit)

    async def set_unit_active(self, who: Principal, unit_id: int, active: bool) -> dict[str, Any]:
        who.require("units.write")
        async with self.sessionmaker() as db:
            unit = await unit_in_scope(db, who, unit_id)
            if unit.path == who.unit_path and not active:
                raise Invalid("directory.cannot_deactivate_root", field="active")
            unit.active = active
            self.audit(db, who, "activate" if active else "deactivate", "unit", unit.id, unit.path)
            await db.commit()
        self._access_changed()
        return unit_json(unit)
