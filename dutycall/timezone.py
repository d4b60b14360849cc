"""The deployment's time zone: the one place local times are made.

Every time a user sees (sheets, PDFs, statistics, pages) and every local day or month the
server computes (a month's statistics, an incident month, a roster day) goes through here, so
``--timezone`` (``DUTYCALL_TIMEZONE``) decides them all; the process's own zone (``TZ``) does
not. Set once at start from the configuration (``services.build_services`` calls
:func:`set_zone`); until then, and with an empty setting, the system's zone.

Instants are stored and compared in UTC; only showing them and cutting days/months is local.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["DEFAULT", "aware", "local", "midnight", "now", "parse_zone", "set_zone", "today", "zone", "zone_name"]

#: What the demo and the README use.
DEFAULT = "Asia/Shanghai"


def _system_zone() -> dt.tzinfo:
    """The host's zone by name where it can be found (so daylight saving is right), else the
    fixed offset the C library reports now."""
    name = os.environ.get("TZ", "").lstrip(":")
    if not name:
        try:
            target = str(Path("/etc/localtime").resolve())
            if "zoneinfo/" in target:
                name = target.split("zoneinfo/", 1)[1]
        except OSError:
            name = ""
    if not name:
        try:
            name = Path("/etc/timezone").read_text().strip()
        except OSError:
            name = ""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return dt.datetime.now().astimezone().tzinfo or dt.UTC


def parse_zone(name: str) -> dt.tzinfo:
    """An IANA zone name (``Asia/Shanghai``) → tzinfo; empty → the system's zone.
    ValueError if unknown."""
    if not name.strip():
        return _system_zone()
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} (expected an IANA name such as {DEFAULT})") from exc


_zone: dt.tzinfo = _system_zone()


def set_zone(name_or_zone: str | dt.tzinfo) -> None:
    """Make this the deployment's zone (at start, from ``Config.timezone``)."""
    global _zone
    _zone = parse_zone(name_or_zone) if isinstance(name_or_zone, str) else name_or_zone


def zone() -> dt.tzinfo:
    return _zone


def zone_name() -> str:
    return getattr(_zone, "key", None) or str(_zone)


def local(at: dt.datetime) -> dt.datetime:
    """An instant in the deployment's zone (a naive value is taken as UTC, as stored)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(_zone)


def now() -> dt.datetime:
    return dt.datetime.now(_zone)


def today() -> dt.date:
    return now().date()


def midnight(day: dt.date) -> dt.datetime:
    """The start of a local day, as an aware datetime in the deployment's zone."""
    return dt.datetime.combine(day, dt.time(), tzinfo=_zone)


def aware(naive: dt.datetime) -> dt.datetime:
    """A naive wall-clock time read as the deployment's (an aware one is converted)."""
    return naive.replace(tzinfo=_zone) if naive.tzinfo is None else naive.astimezone(_zone)
