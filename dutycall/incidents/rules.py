"""Checking a report's elements, and what the incident looks like once every report is folded in.

Pure functions: no database, no clock of their own (``now`` is passed in). A report is checked
whole and refused whole: each problem is listed with the element's Chinese name, and nothing
is stored unless every element is right.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .. import timezone
from ..messages import Msg
from ..text import unsafe_reason
from .catalog import (
    BY_NAME,
    HEADLINE,
    PER_REPORT,
    REQUIRED,
    REQUIRED_SERIOUS_INITIAL,
    SERIOUS,
    SUBTYPES,
    Category,
    Kind,
    Level,
    Stage,
)
from .errors import Invalid

MAX_COUNT = 1_000_000
MAX_MONEY = 1e9  # 万元
#: A clock a little ahead of ours is not "the future"; an hour is.
SKEW = dt.timedelta(minutes=2)
EARLIEST = dt.datetime(1990, 1, 1, tzinfo=dt.UTC)
_PHONE = re.compile(r"^[0-9+\-() ]{3,32}$")


def parse_instant(value: str) -> dt.datetime:
    """ISO 8601; a time without an offset is in the deployment's zone (what a form sends)."""
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = timezone.aware(parsed)  # the deployment's zone (--timezone)
    return parsed.astimezone(dt.UTC)


def _label(name: str) -> Msg:
    return Msg(f"incident.el.{name}")


def _problem(name: str, key: str, **params: object) -> dict[str, object]:
    return {"field": name, "message": Msg(key, label=_label(name), **params)}


class _Bad(ValueError):
    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key, self.params = key, params


def clean_elements(data: Mapping[str, Any], now: dt.datetime) -> tuple[dict[str, Any], list[dict[str, object]]]:
    """Each given element checked and normalised (instants as UTC ISO strings); problems listed.
    Empty strings and nulls count as not given."""
    clean: dict[str, Any] = {}
    problems: list[dict[str, object]] = []
    for name, value in data.items():
        element = BY_NAME.get(name)
        if element is None:
            problems.append({"field": str(name)[:64], "message": Msg("incident.not_an_element", field=str(name)[:64])})
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        try:
            clean[name] = _clean_value(element.kind, value, element.max_length, now)
        except _Bad as exc:
            problems.append(_problem(name, exc.key, **exc.params))
    category = clean.get("category")
    if "subtype" in clean and category is not None and clean["subtype"] not in SUBTYPES[Category(category)]:
        problems.append(_problem("subtype", "incident.subtype_category"))
    if ("latitude" in clean) != ("longitude" in clean):
        problems.append(_problem("longitude" if "latitude" in clean else "latitude", "incident.coordinates"))
    return clean, problems


def _clean_value(kind: Kind, value: Any, max_length: int, now: dt.datetime) -> Any:
    if kind in (Kind.text, Kind.long_text, Kind.phone):
        if not isinstance(value, str):
            raise _Bad("incident.text")
        text = value.strip()
        if len(text) > max_length:
            raise _Bad("incident.too_long", max=max_length)
        if unsafe_reason(text, multiline=kind is Kind.long_text):
            raise _Bad("incident.unsafe")
        if kind is Kind.phone and not _PHONE.match(text):
            raise _Bad("incident.phone")
        return text
    if kind is Kind.people:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _Bad("incident.integer")
        if not 0 <= value <= MAX_COUNT:
            raise _Bad("incident.range", low=0, high=MAX_COUNT)
        return value
    if kind in (Kind.money, Kind.latitude, Kind.longitude):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise _Bad("incident.number")
        low, high = {Kind.money: (0.0, MAX_MONEY), Kind.latitude: (-90.0, 90.0),
                     Kind.longitude: (-180.0, 180.0)}[kind]
        if not low <= value <= high:
            raise _Bad("incident.range", low=f"{low:g}", high=f"{high:g}")
        return round(float(value), 2 if kind is Kind.money else 6)
    if kind is Kind.instant:
        if not isinstance(value, str) or len(value) > 40:
            raise _Bad("incident.instant")
        try:
            at = parse_instant(value)
        except ValueError as exc:
            raise _Bad("incident.instant") from exc
        if at > now + SKEW:
            raise _Bad("incident.future")
        if at < EARLIEST:
            raise _Bad("incident.too_early")
        return at.isoformat()
    if kind is Kind.category:
        if not isinstance(value, str) or value not in {c.value for c in Category}:
            raise _Bad("incident.category")
        return value
    if kind is Kind.level:
        if not isinstance(value, str) or value not in {v.value for v in Level}:
            raise _Bad("incident.level")
        return value
    if kind is Kind.subtype:
        if not isinstance(value, str) or not any(value in s for s in SUBTYPES.values()):
            raise _Bad("incident.subtype")
        return value
    raise AssertionError(kind)


def fold(reports: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The incident as it stands: every report's elements in order, the latest value winning;
    per-report elements (what changed, who reported) are not carried forward."""
    current: dict[str, Any] = {}
    for elements in reports:
        current.update({k: v for k, v in elements.items() if k not in PER_REPORT})
    return current


def check_report(stage: Stage, data: Mapping[str, Any], previous: Mapping[str, Any],
                 now: dt.datetime) -> dict[str, Any]:
    """The report's clean elements, or Invalid listing every problem (each naming its element)."""
    clean, problems = clean_elements(data, now)
    merged = {**{k: v for k, v in previous.items() if k not in PER_REPORT}, **clean}
    if "subtype" in clean and "category" not in clean and merged.get("category"):
        if clean["subtype"] not in SUBTYPES[Category(merged["category"])]:
            problems.append(_problem("subtype", "incident.subtype_category"))
    required = list(REQUIRED[stage])
    if stage is Stage.initial and merged.get("level") in SERIOUS:
        required += REQUIRED_SERIOUS_INITIAL
    flagged = {p["field"] for p in problems}
    missing = [name for name in dict.fromkeys(required)
               if (clean if name in PER_REPORT else merged).get(name) is None and name not in flagged]
    problems += [_problem(name, "incident.missing") for name in missing]
    occurred, learned = merged.get("occurred_at"), merged.get("learned_at")
    if occurred and learned and occurred > learned:
        problems.append({"field": "learned_at", "message": Msg("incident.learned_before_occurred")})
    if problems:
        raise Invalid("incident.report_invalid", errors=problems, count=len(problems), first=problems[0]["message"])
    return clean


def headline(current: Mapping[str, Any]) -> dict[str, Any]:
    """The elements the incident row carries (listed and filtered), from the folded view."""
    return {name: current.get(name) for name in HEADLINE}


def is_serious(level: str | None) -> bool:
    return level is None or Level(level) in SERIOUS
