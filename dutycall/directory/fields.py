"""Checking input fields (names, codes, phones, order) and the pinyin key of searchable names."""

from __future__ import annotations

import re
from typing import Any

from pypinyin import Style, lazy_pinyin

from ..text import unsafe_reason
from .errors import Invalid

CODE_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.\-@]{2,64}$")
PHONE_RE = re.compile(r"^[0-9+\-() ]{0,32}$")


def pinyin_key(text: str) -> str:
    """Searchable romanisation: initials then full pinyin, "ftq futianqu" for 福田区."""
    initials = "".join(lazy_pinyin(text, style=Style.FIRST_LETTER)).lower()
    full = "".join(lazy_pinyin(text)).lower()
    return f"{initials} {full}"



def text_field(data: dict[str, Any], key: str, max_len: int, required: bool = True, default: str = "") -> str:
    value = data.get(key, None)
    if value is None:
        if required:
            raise Invalid("field.required", field=key, name=key)
        return default
    if not isinstance(value, str) or (required and not value.strip()) or len(value.strip()) > max_len:
        raise Invalid("field.text_length", field=key, name=key, max=max_len)
    if unsafe_reason(value):
        raise Invalid("field.control_characters", field=key, name=key)
    return value.strip()


def sort_order_field(data: dict[str, Any]) -> int:
    value = data.get("sort_order", 0)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or not -1_000_000 <= value <= 1_000_000:
        raise Invalid("field.integer", field="sort_order", name="sort_order")
    return value


def phone_field(data: dict[str, Any], key: str = "phone") -> str:
    phone = text_field(data, key, 32, required=False)
    if not PHONE_RE.match(phone):
        raise Invalid("field.phone", field=key, name=key)
    return phone
