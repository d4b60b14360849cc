"""The conference room of a greeting, by name: made and read here only (``greeting-<id>``)."""

from __future__ import annotations

import re

_NAME = re.compile(r"greeting-([0-9]{1,15})", re.ASCII)


def greeting_room(greeting_id: int) -> str:
    """Where a greeting's leader and the consoles of its target rooms meet."""
    return f"greeting-{greeting_id}"


def parse_greeting_room(name: str) -> int | None:
    """The greeting id ``name`` names; None for any other room."""
    match = _NAME.fullmatch(name)
    return int(match.group(1)) if match is not None else None
