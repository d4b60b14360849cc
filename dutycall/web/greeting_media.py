"""Pre-recorded greeting videos (``media/playout.py``): leaders, hosts and administrators upload,
list and delete them; scope is the uploader's unit subtree.

``POST /api/greeting-media?label=…`` with the file as the raw body (``Content-Type: video/mp4``,
``video/webm`` or ``application/octet-stream``; ``X-Filename`` optional) or as the ``file`` field
of ``multipart/form-data`` → 201 and the row (``status`` "processing"); at most
:data:`~dutycall.media.playout.MAX_BYTES` (413 beyond, declared or not). The body is streamed to
disk as it arrives (never held in memory: ``web/hardening.py`` leaves this route's body unread,
:data:`~dutycall.web.hardening.STREAMED_BODY_ROUTES`), a pause of over
``greeting_upload_idle_seconds`` (30), or on average under ``greeting_upload_min_rate`` bytes a
second (32 KiB) once that long has passed, ends the upload (408, the partial file removed, the
connection closed and the upload's slot free again), and the file is checked (PyAV, in a thread) before anything is
stored: not an MP4/WebM with a video stream, or damaged → 422 ``invalid_media`` with the reason.
Room is checked before a byte is read and again as bytes arrive: past the unit's quota
(``greeting_media_unit_quota_bytes``) 413 ``quota_exceeded``; leaving the disk under its floor
(``greeting_media_min_free_bytes`` / ``_ratio``) 507 ``insufficient_storage``; the partial file removed.
``GET /api/greeting-media`` lists; ``GET /api/greeting-media/{id}`` is one (poll ``status``:
"processing" → "ready" or "failed" with ``failure``); ``DELETE`` removes one not playing.

``setup(app)`` installs the library (``app[GREETING_MEDIA]``; the greetings layer plays videos
through ``app[GREETING_MEDIA].playouts``) and its routes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from aiohttp import BodyPartReader, web

from ..directory.principal import Principal
from ..media.playout import MAX_BYTES, BadMedia, DiskFull, GreetingMediaLibrary, TooLarge
from ..messages import Msg
from .auth import error_response, path_int, principal_of
from .clients import client_address
from .keys import CONFIG, SERVICES

logger = logging.getLogger(__name__)
T = TypeVar("T")
GREETING_MEDIA = web.AppKey("greeting_media", GreetingMediaLibrary)
CHUNK = 256 * 1024
#: Uploads in flight: one per account, this many in all (each holds a connection and a temporary
#: file of up to MAX_BYTES); beyond, 429.
MAX_UPLOADS = 2
#: A multipart field other than the file (the label) is read up to this many bytes, never whole.
MAX_FIELD = 512
UPLOADS = web.AppKey("greeting_media_uploads", set)
routes = web.RouteTableDef()


def setup(app: web.Application) -> None:
    services = app[SERVICES]
    app[GREETING_MEDIA] = GreetingMediaLibrary(services.sessionmaker, services.conference, app[CONFIG].recordings_dir,
                                               config=app[CONFIG])
    app[UPLOADS] = set()
    app.router.add_routes(routes)
    app.cleanup_ctx.append(_library)


async def _library(app: web.Application) -> AsyncIterator[None]:
    await app[GREETING_MEDIA].sweep()
    yield
    await app[GREETING_MEDIA].close()


class Pace:
    """An upload's deadlines: each read within ``idle`` seconds, and, once ``idle`` seconds have
    passed, on average ``min_rate`` bytes a second (a client trickling bytes would otherwise hold
    the upload's slot for ever); TimeoutError when either is missed."""

    def __init__(self, idle: float, min_rate: float) -> None:
        self.idle, self.min_rate = idle, min_rate
        self.began = time.monotonic()
        self.received = 0

    async def within(self, read: Callable[[], Awaitable[T]]) -> T:
        wait = self.idle
        if self.min_rate > 0:
            wait = min(wait, self.began + self.idle + self.received / self.min_rate - time.monotonic())
        if wait <= 0:
            raise TimeoutError
        return await asyncio.wait_for(read(), wait)

    async def chunks(self, read: Callable[[int], Awaitable[bytes | bytearray]]) -> AsyncIterator[bytes]:
        """Chunks from ``read(n)`` until it answers b"", each within the deadlines."""
        while True:
            chunk = await self.within(lambda: read(CHUNK))
            if not chunk:
                return
            self.received += len(chunk)
            yield bytes(chunk)


@routes.post("/api/greeting-media")
async def upload(request: web.Request) -> web.Response:
    who = principal_of(request)
    library = request.app[GREETING_MEDIA]
    library.require(who)  # before reading a byte from someone who may not upload at all
    too_big = error_response(request, 413, "too_large", Msg("greeting_media.too_large", mb=MAX_BYTES // (1024 * 1024)))
    if (request.content_length or 0) > MAX_BYTES:
        return too_big
    uploads = request.app[UPLOADS]
    if who.id in uploads or len(uploads) >= MAX_UPLOADS:
        busy = error_response(request, 429, "too_many", Msg("greeting_media.busy", max=MAX_UPLOADS))
        busy.headers["Retry-After"] = "30"
        return busy
    uploads.add(who.id)
    try:
        # Before a byte is read: no room left in the unit's quota or above the disk's floor.
        room = await library.room(who)
        refused = library.refusal(room, max(1, request.content_length or 0))
        if refused is not None:
            return _refused(request, refused)
        return await _upload(request, who, library, too_big, room)
    finally:
        uploads.discard(who.id)


def _refused(request: web.Request, refused: BadMedia | DiskFull) -> web.Response:
    """Over the unit's quota: 413; the disk would fall below its floor: 507."""
    return error_response(request, 507 if isinstance(refused, DiskFull) else 413, refused.code, refused.msg)


async def _field(part: BodyPartReader, pace: Pace) -> str:
    """A small form field (the label): at most MAX_FIELD bytes, each read within the deadlines;
    ValueError if it is longer (never read whole into memory)."""
    data = b""
    while chunk := await pace.within(lambda: part.read_chunk(MAX_FIELD + 1)):
        pace.received += len(chunk)
        data += chunk
        if len(data) > MAX_FIELD:
            raise ValueError("form field too long")
    return data.decode("utf-8", "replace")


async def _upload(request: web.Request, who: Principal, library: GreetingMediaLibrary,
                  too_big: web.Response, room: tuple[int, int, int]) -> web.Response:
    name = request.headers.get("X-Filename")
    label = request.query.get("label")
    path = library.upload_path()
    config = request.app[CONFIG]
    pace = Pace(config.greeting_upload_idle_seconds, config.greeting_upload_min_rate)
    try:
        if request.content_type.startswith("multipart/"):
            try:
                reader = await request.multipart()
                part = await pace.within(reader.next)
                while part is not None and (not isinstance(part, BodyPartReader) or part.name != "file"):
                    if isinstance(part, BodyPartReader):
                        field = await _field(part, pace)  # any field before the file, bounded
                        if part.name == "label" and label is None:
                            label = field
                    part = await pace.within(reader.next)
            except (ValueError, RuntimeError, AssertionError, UnicodeError):  # a malformed form (no boundary…)
                return error_response(request, 422, "invalid_media", Msg("greeting_media.bad_form"))
            if part is None:
                return error_response(request, 422, "invalid_media", Msg("greeting_media.empty"))
            name = name or part.filename
            try:
                size = await library.receive(pace.chunks(part.read_chunk), path, room=room)
            except (ValueError, RuntimeError, AssertionError):
                return error_response(request, 422, "invalid_media", Msg("greeting_media.bad_form"))
        else:
            size = await library.receive(pace.chunks(request.content.read), path, room=room)
    except TimeoutError:
        # Told why, then the connection closed (the rest of the body is never read).
        logger.info("greeting upload from %s too slow: abandoned", client_address(request))
        slow = error_response(request, 408, "body_timeout", Msg("web.body_too_slow"))
        slow.force_close()
        await slow.prepare(request)
        await slow.write_eof()
        if request.transport is not None:
            request.transport.close()
        return slow
    except (TooLarge, DiskFull) as exc:
        return too_big if type(exc) is TooLarge else _refused(request, exc)
    added = await library.add(who, path, size, label, name)
    return web.json_response(added, status=201, headers={"Cache-Control": "no-store"})


@routes.get("/api/greeting-media")
async def list_media(request: web.Request) -> web.Response:
    return web.json_response(await request.app[GREETING_MEDIA].list(principal_of(request)),
                             headers={"Cache-Control": "no-store"})


@routes.get("/api/greeting-media/{id}")
async def get_media(request: web.Request) -> web.Response:
    return web.json_response(await request.app[GREETING_MEDIA].get(principal_of(request), path_int(request, "id")),
                             headers={"Cache-Control": "no-store"})


@routes.delete("/api/greeting-media/{id}")
async def delete_media(request: web.Request) -> web.Response:
    await request.app[GREETING_MEDIA].delete(principal_of(request), path_int(request, "id"))
    return web.json_response({"deleted": True})
