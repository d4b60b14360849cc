"""Reporting deadlines per level and what is overdue: pure, given the reports' times and now.

The defaults are what such cities use: 较大 and above (and unrated, until rated) by phone within
30 minutes of being learned and in writing within an hour; 一般 within two hours; a follow-up at
least every 24 hours while the incident is open (until its final report). A site sets its own in
``DUTYCALL_INCIDENT_DEADLINES`` (JSON: {"III": {"first_minutes": 30, ...}, ...}).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .catalog import Channel, FlagKind, Level, Stage


@dataclass(frozen=True)
class Deadlines:
    first_minutes: int
    written_minutes: int
    followup_hours: int


SERIOUS_DEFAULT = Deadlines(first_minutes=30, written_minutes=60, followup_hours=24)
DEFAULT_DEADLINES: dict[Level, Deadlines] = {
    Level.I: SERIOUS_DEFAULT, Level.II: SERIOUS_DEFAULT, Level.III: SERIOUS_DEFAULT,
    Level.unrated: SERIOUS_DEFAULT,
    Level.IV: Deadlines(first_minutes=120, written_minutes=120, followup_hours=24),
}


def parse_deadlines(text: str | None) -> dict[Level, Deadlines]:
    """The defaults, overridden per level by a JSON object; a bad value stops the server at start."""
    table = dict(DEFAULT_DEADLINES)
    if not text:
        return table
    try:
        given = json.loads(text)
        if not isinstance(given, dict):
            raise ValueError("expected a JSON object keyed by level")
        for level, values in given.items():
            base = table[Level(level)]
            merged = {**base.__dict__, **values}
            if set(merged) != set(base.__dict__) or not all(
                    isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 10_000 for v in merged.values()):
                raise ValueError(f"{level}: first_minutes, written_minutes, followup_hours are whole numbers")
            table[Level(level)] = Deadlines(**merged)
    except (ValueError, TypeError, KeyError) as exc:
        raise SystemExit(f"DUTYCALL_INCIDENT_DEADLINES: {exc}") from exc
    return table


@dataclass(frozen=True)
class ReportTime:
    at: dt.datetime
    channel: Channel
    stage: Stage


@dataclass(frozen=True)
class Due:
    """A report that was due at ``due_at``; ``met_at`` when it came (None: not yet)."""

    kind: FlagKind
    due_at: dt.datetime
    met_at: dt.datetime | None

    def late(self, now: dt.datetime) -> bool:
        return (self.met_at if self.met_at is not None else now) > self.due_at


def dues(rules: Deadlines, learned_at: dt.datetime, reports: Sequence[ReportTime], open_until: dt.datetime | None,
         now: dt.datetime) -> list[Due]:
    """Every deadline of an incident so far: the first report, the written report, and one
    follow-up per interval while it was open (``open_until``: when its final report came)."""
    ordered = sorted(reports, key=lambda r: r.at)
    first = ordered[0].at if ordered else None
    written = next((r.at for r in ordered if r.channel is Channel.written), None)
    result = [Due(FlagKind.late_first, learned_at + dt.timedelta(minutes=rules.first_minutes), first),
              Due(FlagKind.late_written, learned_at + dt.timedelta(minutes=rules.written_minutes), written)]
    interval = dt.timedelta(hours=rules.followup_hours)
    end = open_until or now
    for before, after in zip(ordered, [*ordered[1:], None]):
        if before.at >= end:
            break
        due = before.at + interval
        met = after.at if after is not None else None
        if met is not None and met <= due:
            continue
        if met is None and due > end:
            continue  # not due yet (or the incident ended first)
        result.append(Due(FlagKind.late_followup, due, met if met is not None and due <= end else None))
    return result


def overdue(rules_by_level: Mapping[Level, Deadlines], level: str | None, learned_at: dt.datetime,
            reports: Sequence[ReportTime], open_until: dt.datetime | None, now: dt.datetime) -> list[Due]:
    """The dues that are (or were) late at ``now``."""
    rules = rules_by_level[Level(level) if level else Level.unrated]
    return [d for d in dues(rules, learned_at, reports, open_until, now) if d.late(now)]
