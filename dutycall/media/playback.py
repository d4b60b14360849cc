"""Playback and download of the archive: a segment's file for a player (HTTP Range is aiohttp's
``FileResponse``), and a source's time range joined into one file without re-encoding.

Scope like incident reads: an account that may read incidents and whose subtree holds the
incident; anything else is told there is no such footage (404), consoles are refused (403).

A range download (:func:`remux_range`) demuxes the segments that overlap the range and muxes
their packets, untouched, into one file (PyAV, stream copy): it starts at the last video
keyframe at or before the range's start (so the file opens on a picture) and ends before the
range's end; timestamps follow the wall clock of the recording, so a gap between segments stays
a gap. It runs in a worker thread, into a temporary file the route streams and then deletes.

Range downloads are bounded so that readers cannot starve the archive or the server:

- at most :data:`MAX_RANGE` (2 h) a download (longer: 422);
- they run on their own small pool (:data:`REMUX_WORKERS` threads at nice 10), never on the
  default executor that serves free-space checks, charts and PDFs; every file operation of a
  download (sizes, the remux, reading it out) goes there;
- :data:`MAX_DOWNLOADS_PER_ACCOUNT` in flight per account and :data:`MAX_DOWNLOADS` in all,
  from the start of the remux until the file is sent (beyond: 429 with ``Retry-After``);
- one starts only while the recordings disk keeps, besides what the downloads in flight may
  still write, the sum of the overlapping segments' sizes (what the joined file can take at
  most) plus the archive's minimum free space (``recording_min_free_bytes``): else 503, and
  live recording never runs out of room because of a download;
- the temporary files live in ``<recordings>/.tmp`` (:data:`TEMP_DIR`), out of the archive's
  own tree; whatever a killed server left there is deleted at start (:meth:`Playback.sweep`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import os
import pathlib
import re
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from typing import Any, TypeVar
from urllib.parse import quote

import av
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..directory.models import as_utc
from ..directory.principal import Principal
from ..incidents.models import Incident
from .errors import Forbidden, Invalid, NoSpace, NotFound, TooMany
from .messages import CATALOGUE, EN, ZH
from .models import FootageSegment, FootageSource
from .recording import free_bytes

logger = logging.getLogger(__name__)
T = TypeVar("T")

CONTENT_TYPES = {"webm": "video/webm", "mp4": "video/mp4", "mkv": "video/x-matroska"}
#: The longest range one download joins.
MAX_RANGE = dt.timedelta(hours=2)
#: Threads of the range downloads' own pool.
REMUX_WORKERS = 2
#: Range downloads in flight (remuxing or being sent): per account, and in all.
MAX_DOWNLOADS_PER_ACCOUNT = 1
MAX_DOWNLOADS = 2
#: Seconds a refused download is asked to wait (``Retry-After``).
DOWNLOAD_RETRY_AFTER = 30
#: The range downloads' temporary files, under the recordings directory.
TEMP_DIR = ".tmp"

CATALOGUE.update({
    "footage.download_busy_account": {
        ZH: "您已有一个时间段下载正在进行，请等它完成后再试",
        EN: "One of your range downloads is still in progress; try again when it has finished"},
    "footage.download_busy": {
        ZH: "正在进行的时间段下载过多，请稍后再试",
        EN: "Too many range downloads are in progress; try again in a moment"},
    "footage.download_no_space": {
        ZH: "录像磁盘剩余空间不足，无法生成该下载（需要 {need_mb} MB，可用 {free_mb} MB）；请缩短时间段或稍后再试",
        EN: "The recordings disk has too little free space for this download ({need_mb} MB needed, "
            "{free_mb} MB available); choose a shorter range or try later"},
    "footage.cross_site": {
        ZH: "不能从其他网站发起影像播放或下载，请在本系统页面中操作",
        EN: "Footage cannot be played or downloaded from another site; use this system's own pages"},
})
MS = Fraction(1, 1000)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def may_read(who: Principal, incident: Incident | None) -> bool:
    return (incident is not None and who.kind == "account" and who.may("incidents.read")
            and who.covers(incident.unit_path))


def _reader(who: Principal) -> None:
    if who.kind != "account":
        raise Forbidden("footage.consoles_no")


def refuse_cross_site(fetch_site: str | None) -> None:
    """A browser's request from another site (``Sec-Fetch-Site`` other than ``same-origin`` or
    ``none``: a sibling subdomain is ``same-site``, which SameSite cookies let through) is
    refused; clients that send no ``Sec-Fetch-Site`` (not browsers) are let through."""
    if fetch_site is not None and fetch_site.strip().lower() not in ("same-origin", "none"):
        raise Forbidden("footage.cross_site")


def _busy(key: str) -> TooMany:
    error = TooMany(key)
    error.retry_after = DOWNLOAD_RETRY_AFTER
    return error


def _lower_priority() -> None:
    """Remux threads run at nice 10: under contention the event loop forwarding media wins."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # not Linux, or not permitted
        pass


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

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], directory: pathlib.Path,
                 min_free_bytes: int = 0, free_space: Callable[[pathlib.Path], int] = free_bytes) -> None:
        self.sessionmaker = sessionmaker
        self.directory = directory
        #: The archive's minimum free space: downloads leave it (and what they will write) free.
        self.min_free_bytes = min_free_bytes
        self.free_space = free_space
        self.temp_directory = directory / TEMP_DIR
        self._pool: ThreadPoolExecutor | None = None
        #: Range downloads in flight per account id, and the bytes they may still write.
        self.downloads: dict[int, int] = {}
        self.reserved = 0

    # -- the range downloads' pool ---------------------------------------------------------------

    async def in_pool(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the range downloads' own threads (never the default executor)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(REMUX_WORKERS, thread_name_prefix="footage-remux",
                                            initializer=_lower_priority)
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        """Stop the pool (a remux under way finishes in its thread; nothing new starts)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def remux(self, segments: list[tuple[pathlib.Path, dt.datetime, str]], start: dt.datetime,
                    end: dt.datetime, remux: Callable[..., tuple[pathlib.Path, str]] | None = None
                    ) -> tuple[pathlib.Path, str]:
        """:func:`remux_range` on the pool into the temporary directory. Cancelled (the client
        went away), it still waits for the thread, which cannot be stopped, and deletes its file:
        the download's slot and disk room stay held until the work is really over."""
        future = asyncio.ensure_future(self.in_pool(remux or remux_range, segments, start, end,
                                                    self.temp_directory))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                path, _ = await future
                path.unlink(missing_ok=True)
            raise

    def sweep(self) -> int:
        """Create the temporary directory, deleting what a killed server left there. Blocking."""
        self.temp_directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        removed = 0
        for path in self.temp_directory.iterdir():
            try:
                if path.is_dir() and not path.is_symlink():
                    continue  # never ours
                path.unlink()
                removed += 1
            except OSError:
                logger.exception("footage downloads: %s could not be deleted", path)
        if removed:
            logger.warning("footage downloads: %d temporary files left by an earlier run deleted", removed)
        return removed

    def _need_and_free(self, paths: list[pathlib.Path]) -> tuple[int, int]:
        return sum(p.stat().st_size for p in paths), self.free_space(self.directory)

    @contextlib.asynccontextmanager
    async def download_slot(self, who: Principal, segments: list[tuple[pathlib.Path, dt.datetime, str]]
                            ) -> AsyncIterator[None]:
        """Hold one of the range downloads in flight (429 beyond the limits) with the disk room the
        joined file can take (503 when that would eat into the archive's minimum free space)."""
        if self.downloads.get(who.id, 0) >= MAX_DOWNLOADS_PER_ACCOUNT:
            raise _busy("footage.download_busy_account")
        if sum(self.downloads.values()) >= MAX_DOWNLOADS:
            raise _busy("footage.download_busy")
        self.downloads[who.id] = self.downloads.get(who.id, 0) + 1
        reserved = 0
        try:
            need, free = await self.in_pool(self._need_and_free, [path for path, _, _ in segments])
            available = free - self.reserved  # decided and reserved on the loop: no race between two
            if available < need + self.min_free_bytes:
                logger.warning("footage range download refused: %d MB needed, %d MB free (%d MB reserved for "
                               "downloads, %d MB kept for recording)", need // 2**20, free // 2**20,
                               self.reserved // 2**20, self.min_free_bytes // 2**20)
                raise NoSpace("footage.download_no_space", need_mb=-(-(need + self.min_free_bytes) // 2**20),
                              free_mb=max(0, available) // 2**20)
            self.reserved += need
            reserved = need
            yield
        finally:
            self.reserved -= reserved
            left = self.downloads.get(who.id, 1) - 1
            if left > 0:
                self.downloads[who.id] = left
            else:
                self.downloads.pop(who.id, None)

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
