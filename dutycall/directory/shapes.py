"""The JSON shapes of directory objects, as the API answers them."""

from __future__ import annotations

from typing import Any

from .models import Account, DutyRoom, Unit


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
