"""Playback and download of the archive: a segment's file for a player (HTTP Range is aiohttp's
``FileResponse``), and a source's time range joined into one file without re-encoding.

Scope like incident reads: an account that may read incidents and whose subtree holds the
incident; anything else is told there is no such footage (404), consoles are refused (403).

A range download (:func:`remux_range`) demuxes the segments that overlap the range and muxes
their packets, untouched, into one file (PyAV, stream copy): it starts at the last video
keyframe at or before the range's start (so the file opens on a picture) and ends before the
range's end; timestamps follow the wall clock of the recording, so a gap between segments stays
a gap. It runs in a worker thread, into a temporary file the route streams and then deletes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import pathlib
import re
import tempfile
from fractions import Fraction
from typing import Any
from urllib.parse import quote

import av
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..directory.models import as_utc
from ..directory.principal import Principal
from ..incidents.models import Incident
from .errors import Forbidden, Invalid, NotFound
from .models import FootageSegment, FootageSource

logger = logging.getLogger(__name__)

CONTENT_TYPES = {"webm": "video/webm", "mp4": "video/mp4", "mkv": "video/x-matroska"}
#: The longest range one download joins.
MAX_RANGE = dt.timedelta(hours=6)
MS = Fraction(1, 1000)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def may_read(who: Principal, incident: Incident | None) -> bool:
    return (incident is not None and who.kind == "account" and who.may("incidents.read")
            and who.covers(incident.unit_path))


def _reader(who: Principal) -> None:
    if who.kind != "account":
        raise Forbidden("footage.consoles_no")


def content_disposition(kind: str, ascii_name: str, name: str) -> str:
    """``attachment``/``inline`` with a safe ASCII ``filename`` and the real name as ``filename*``."""
    safe = _UNSAFE.sub("_", ascii_name)[:120] or "footage"
    return f"{kind}; filename=\"{safe}\"; filename*=UTF-8''{quote(name[:120], safe='')}"


@dataclasses.dataclass(frozen=True)
class SegmentFile:
    path: pathlib.Path
    segment_id: int
    source_id: int
    incident_id: int
    container: str
    filename: str
    label: str


def segment_json(segment: FootageSegment) -> dict[str, Any]:
    return {"id": segment.id, "number": segment.number, "container": segment.container,
            "video_codec": segment.video_codec, "audio_codec": segment.audio_codec,
            "width": segment.width, "height": segment.height,
            "started_at": as_utc(segment.started_at).isoformat(),
            "ended_at": as_utc(segment.ended_at).isoformat() if segment.ended_at else None,
            "duration": segment.duration, "size": segment.size, "sha256": segment.sha256, "status": segment.status,
            "url": f"/api/footage/segments/{segment.id}/media"}


class Playback:
    """Reads of the archive, scoped."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], directory: pathlib.Path) -> None:
        self.sessionmaker = sessionmaker
        self.directory = directory

    async def footage(self, who: Principal, incident_id: int) -> list[dict[str, Any]]:
        """The incident's sources, each with its segments (hash, times, size) for the page."""
        _reader(who)
        async with self.sessionmaker() as db:
            incident = await db.get(Incident, incident_id)
            if not may_read(who, incident):
                raise NotFound("footage.incident_not_found", id=incident_id)
            sources = list((await db.execute(select(FootageSource).where(FootageSource.incident_id == incident_id)
                                             .order_by(FootageSource.id))).scalars())
            segments = list((await db.execute(select(FootageSegment).where(
                FootageSegment.incident_id == incident_id).order_by(FootageSegment.source_id,
                                                                    FootageSegment.number))).scalars())
        return [{"id": s.id, "kind": s.kind, "label": s.label, "live": s.ended_at is None,
                 "started_at": as_utc(s.started_at).isoformat(),
                 "ended_at": as_utc(s.ended_at).isoformat() if s.ended_at else None, "end_reason": s.end_reason,
                 "segments": [segment_json(g) for g in segments if g.source_id == s.id]} for s in sources]

    async def segment_file(self, who: Principal, segment_id: int) -> SegmentFile:
        _reader(who)
        async with self.sessionmaker() as db:
            segment = await db.get(FootageSegment, segment_id)
            incident = await db.get(Incident, segment.incident_id) if segment is not None else None
            source = await db.get(FootageSource, segment.source_id) if segment is not None else None
            if segment is None or source is None or not may_read(who, incident):
                raise NotFound("footage.segment_not_found", id=segment_id)
        path = self.directory / segment.path
        if not path.is_file():
            raise NotFound("footage.segment_not_found", id=segment_id)
        stamp = as_utc(segment.started_at).strftime("%Y%m%dT%H%M%SZ")
        return SegmentFile(path, segment.id, segment.source_id, segment.incident_id, segment.container,
                           f"incident-{segment.incident_id}-source-{segment.source_id}-{segment.number:04d}-{stamp}"
                           f".{segment.container}", source.label)

    async def range_segments(self, who: Principal, source_id: int, start: dt.datetime, end: dt.datetime
                             ) -> tuple[FootageSource, list[tuple[pathlib.Path, dt.datetime, str]]]:
        """The source (in scope) and its finished segments overlapping [start, end), in order."""
        _reader(who)
        if end <= start or end - start > MAX_RANGE:
            raise Invalid("footage.range", field="to", hours=int(MAX_RANGE.total_seconds() // 3600))
        async with self.sessionmaker() as db:
            source = await db.get(FootageSource, source_id)
            incident = await db.get(Incident, source.incident_id) if source is not None else None
            if source is None or not may_read(who, incident):
                raise NotFound("footage.source_not_found", id=source_id)
            segments = list((await db.execute(select(FootageSegment).where(
                FootageSegment.source_id == source_id, FootageSegment.status != "recording",
                FootageSegment.started_at < end).order_by(FootageSegment.number))).scalars())
        found = []
        for segment in segments:
            seg_start = as_utc(segment.started_at)
            seg_end = as_utc(segment.ended_at) if segment.ended_at else seg_start + dt.timedelta(
                seconds=segment.duration or 0)
            if seg_end > start and (self.directory / segment.path).is_file():
                found.append((self.directory / segment.path, seg_start, segment.container))
        if not found:
            raise NotFound("footage.range_empty")
        return source, found


def parse_instant(value: str | None, name: str) -> dt.datetime:
    """An ISO 8601 instant with its offset (a query parameter)."""
    try:
        parsed = dt.datetime.fromisoformat(value or "")
        if parsed.tzinfo is None:
            raise ValueError("no offset")
        return parsed.astimezone(dt.UTC)
    except (ValueError, OverflowError):  # not ISO 8601, no offset, out of range in UTC
        raise Invalid("footage.instant", field=name) from None


def remux_range(segments: list[tuple[pathlib.Path, dt.datetime, str]], start: dt.datetime, end: dt.datetime,
                directory: pathlib.Path | None = None) -> tuple[pathlib.Path, str]:
    """Join the packets of ``segments`` (path, wall clock of its t=0, container) between the last
    video keyframe at or before ``start`` and ``end`` into one file, without re-encoding. Returns
    the temporary file (the caller deletes it) and its container. Blocking: a worker thread's."""
    containers = {c for _, _, c in segments}
    kind = containers.pop() if len(containers) == 1 else "mkv"
    cut = _cut_start(segments, start)
    handle = tempfile.NamedTemporaryFile(prefix="footage-", suffix=f".{kind}", dir=directory, delete=False)
    handle.close()
    out_path = pathlib.Path(handle.name)
    try:
        output: Any = av.open(str(out_path), "w", format={"mkv": "matroska"}.get(kind, kind))
        with output:
            streams: dict[str, Any] = {}
            last: dict[str, int] = {}
            for path, wall0, _ in segments:
                with av.open(str(path)) as source:
                    inputs = [s for s in source.streams if s.type in ("video", "audio")]
                    for stream in inputs:
                        if stream.type not in streams and not last:  # before the header is written
                            out = output.add_stream_from_template(stream)
                            out.time_base = MS
                            streams[stream.type] = out
                    for packet in source.demux(*inputs):
                        if packet.pts is None or packet.dts is None or packet.time_base is None:
                            continue
                        out_stream = streams.get(packet.stream.type)
                        if out_stream is None:
                            continue
                        t = wall0 + dt.timedelta(seconds=float(packet.pts * packet.time_base))
                        if t < cut or t >= end:
                            continue
                        ms = round((t - cut).total_seconds() * 1000)
                        previous = last.get(packet.stream.type)
                        if previous is not None and ms <= previous:
                            ms = previous + 1
                        last[packet.stream.type] = ms
                        duration = round(float((packet.duration or 0) * packet.time_base) * 1000)
                        packet.stream = out_stream
                        packet.time_base = MS
                        packet.pts = packet.dts = ms
                        packet.duration = duration
                        output.mux(packet)
    except BaseException:
        out_path.unlink(missing_ok=True)
        raise
    return out_path, kind


def _cut_start(segments: list[tuple[pathlib.Path, dt.datetime, str]], start: dt.datetime) -> dt.datetime:
    """The last video keyframe at or before ``start`` (else the first one after it; audio only:
    ``start`` itself)."""
    best: dt.datetime | None = None
    first_after: dt.datetime | None = None
    for path, wall0, _ in segments:
        with av.open(str(path)) as source:
            if not source.streams.video:
                continue
            for packet in source.demux(source.streams.video[0]):
                if packet.pts is None or packet.time_base is None or not packet.is_keyframe:
                    continue
                t = wall0 + dt.timedelta(seconds=float(packet.pts * packet.time_base))
                if t <= start:
                    best = t
                else:
                    first_after = first_after or t
                    break
        if first_after is not None:
            break
    return best or first_after or start
