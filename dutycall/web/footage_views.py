"""Routes of live relay, playback and the footage access audit (``media/relay.py``,
``media/playback.py``, ``media/audit.py``), installed by :func:`setup` (one call from
``create_app``, after ``footage.setup``: they use its archive's directory).

Relays (hosts, scope like incident writes): ``POST /api/incidents/{id}/relays`` {source_id,
rooms, accounts} → 201; ``GET`` the incident's relays; ``DELETE /api/relays/{id}`` stops one;
``GET /api/relays``: the live relays sent to the caller (a console or leader, when it connects).
Watching goes over the signalling socket: ``relay_watch`` {relay_id, sdp} → ``relay_watching``
{sdp}; ``relay_unwatch`` {relay_id}; events ``footage_relay``, ``footage_relay_ended``,
``footage_relay_watch_ended``.

Playback (scope like incident reads): ``GET /api/incidents/{id}/footage`` (sources and their
segments with SHA-256); ``GET /api/footage/segments/{id}/media`` (HTTP Range; ``?download=1``
for an attachment); ``GET /api/footage/sources/{id}/download?from=&to=`` (ISO instants: the
range joined without re-encoding). Audit: ``GET /api/incidents/{id}/footage-access`` (hosts;
``?limit=`` and ``?before=<id>`` page it, newest first; a ``Link: <…>; rel="next"`` header names
the next page while there is one).

Every media request is in the access record (once per account, segment, action and minute,
whatever its ``Range``), and a browser's request for footage from another site (``Sec-Fetch-Site``
not ``same-origin``/``none``; SameSite cookies let a sibling subdomain through) is refused (403).
Range downloads: see ``media/playback.py`` (length, in flight, disk room, their own pool).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from .. import errors
from ..directory.principal import Principal
from ..media import audit
from ..media.playback import CONTENT_TYPES, Playback, content_disposition, parse_instant, refuse_cross_site, remux_range
from ..media.relay import Relays, RelayWatching
from .auth import as_signalling, json_body, parse_int, path_int, principal_of
from .clients import client_address
from .footage import ARCHIVE
from .keys import CONFERENCE, SERVICES

logger = logging.getLogger(__name__)

RELAYS = web.AppKey("footage_relays", Relays)
PLAYBACK = web.AppKey("footage_playback", Playback)
#: A player asks for many ranges of one file: "played" (and "downloaded") is recorded once per
#: account, segment and minute, whatever the range.
MEDIA_ACCESS = web.AppKey("footage_media_access", audit.Throttle)
CHUNK = 256 * 1024
routes = web.RouteTableDef()


def setup(app: web.Application) -> None:
    sessionmaker = app[SERVICES].sessionmaker
    app[RELAYS] = Relays(sessionmaker, app[CONFERENCE])
    archive = app[ARCHIVE]
    app[PLAYBACK] = Playback(sessionmaker, archive.settings.directory, archive.settings.min_free_bytes,
                             lambda directory: archive.free_space(directory))
    app[MEDIA_ACCESS] = audit.Throttle()
    app.router.add_routes(routes)
    app.cleanup_ctx.append(_relays)
    app.cleanup_ctx.append(_playback)


async def _relays(app: web.Application) -> AsyncIterator[None]:
    await app[RELAYS].recover()
    yield
    await app[RELAYS].close()


async def _playback(app: web.Application) -> AsyncIterator[None]:
    playback = app[PLAYBACK]
    try:
        await playback.in_pool(playback.sweep)  # what a killed server left in the temporary directory
    except OSError:  # the archive reports its own disk; range downloads will fail and say so
        logger.exception("footage downloads: the temporary directory %s could not be prepared",
                         playback.temp_directory)
    yield
    playback.close()


# -- the signalling socket -------------------------------------------------------------------------


def watching(request: web.Request, who: Principal, send: Callable[[dict[str, Any]], None]) -> RelayWatching:
    """One socket's relay watches (closed with the socket: ``RelayWatching.close``)."""
    return RelayWatching(request.app[RELAYS], who, send, client_address(request))


def signalling_extensions(watches: RelayWatching) -> dict[str, Any]:
    async def watch(peer: Any, msg: dict[str, Any]) -> dict[str, Any]:
        try:
            return await watches.watch(msg.get("relay_id"), msg.get("sdp"))
        except errors.DutycallError as exc:
            raise as_signalling(exc) from exc

    async def unwatch(peer: Any, msg: dict[str, Any]) -> dict[str, Any]:
        try:
            return await watches.unwatch(msg.get("relay_id"))
        except errors.DutycallError as exc:
            raise as_signalling(exc) from exc

    return {"relay_watch": watch, "relay_unwatch": unwatch}


# -- relays ------------------------------------------------------------------------------------------


@routes.post("/api/incidents/{id}/relays")
async def start_relay(request: web.Request) -> web.Response:
    started = await request.app[RELAYS].start(principal_of(request), path_int(request, "id"),
                                              await json_body(request), client_address(request))
    return web.json_response(started, status=201)


@routes.get("/api/incidents/{id}/relays")
async def list_relays(request: web.Request) -> web.Response:
    return web.json_response(await request.app[RELAYS].listing(principal_of(request), path_int(request, "id")))


@routes.delete("/api/relays/{id}")
async def stop_relay(request: web.Request) -> web.Response:
    return web.json_response(await request.app[RELAYS].stop(principal_of(request), path_int(request, "id")))


@routes.get("/api/relays")
async def my_relays(request: web.Request) -> web.Response:
    return web.json_response(request.app[RELAYS].mine(principal_of(request)),
                             headers={"Cache-Control": "no-store"})


# -- playback --------------------------------------------------------------------------------------------


@routes.get("/api/incidents/{id}/footage")
async def incident_footage(request: web.Request) -> web.Response:
    return web.json_response(await request.app[PLAYBACK].footage(principal_of(request), path_int(request, "id")))


@routes.get("/api/footage/segments/{id}/media")
async def segment_media(request: web.Request) -> web.StreamResponse:
    who = principal_of(request)
    refuse_cross_site(request.headers.get("Sec-Fetch-Site"))
    found = await request.app[PLAYBACK].segment_file(who, path_int(request, "id"))
    download = request.query.get("download") == "1"
    action = "downloaded" if download else "played"
    # Every request, whatever its Range (bytes=1- or bytes=-N fetch the whole file as well as
    # bytes=0-): a player's many ranges, or a repeated download, make one row a minute.
    key = (who.id, found.segment_id, action)
    if request.app[MEDIA_ACCESS].due(key):
        try:
            await audit.record(request.app[SERVICES].sessionmaker, who, found.incident_id, action,
                               client_address(request), source_id=found.source_id, segment_id=found.segment_id)
        except BaseException:
            request.app[MEDIA_ACCESS].forget(key)
            raise
    disposition = content_disposition("attachment" if download else "inline", found.filename,
                                      f"{found.label}-{found.filename}")
    return web.FileResponse(found.path, headers={
        "Content-Type": CONTENT_TYPES.get(found.container, "application/octet-stream"),
        "Content-Disposition": disposition, "Accept-Ranges": "bytes", "Cache-Control": "private, no-cache"})


@routes.get("/api/footage/sources/{id}/download")
async def range_download(request: web.Request) -> web.StreamResponse:
    who = principal_of(request)
    refuse_cross_site(request.headers.get("Sec-Fetch-Site"))
    playback = request.app[PLAYBACK]
    source_id = path_int(request, "id")
    start = parse_instant(request.query.get("from"), "from")
    end = parse_instant(request.query.get("to"), "to")
    source, segments = await playback.range_segments(who, source_id, start, end)
    async with playback.download_slot(who, segments):
        # Recorded before the remux starts: a download that fails or is cut off was still asked for.
        await audit.record(request.app[SERVICES].sessionmaker, who, source.incident_id, "downloaded",
                           client_address(request), source_id=source.id, range_from=start, range_to=end)
        path, kind = await playback.remux(segments, start, end, remux_range)
        try:
            handle = await playback.in_pool(lambda: path.open("rb"))
        finally:
            path.unlink(missing_ok=True)  # the open handle keeps it readable until closed
        try:
            size = await playback.in_pool(lambda: handle.seek(0, 2))
            await playback.in_pool(handle.seek, 0)
            name = (f"incident-{source.incident_id}-source-{source.id}-{start:%Y%m%dT%H%M%SZ}-"
                    f"{end:%Y%m%dT%H%M%SZ}.{kind}")
            response = web.StreamResponse(headers={
                "Content-Type": CONTENT_TYPES.get(kind, "application/octet-stream"),
                "Content-Disposition": content_disposition("attachment", name, f"{source.label}-{name}"),
                "Cache-Control": "no-store"})
            response.content_length = size
            await response.prepare(request)
            while chunk := await playback.in_pool(handle.read, CHUNK):
                await response.write(chunk)
            await response.write_eof()
            return response
        finally:
            handle.close()


# -- audit -------------------------------------------------------------------------------------------------


@routes.get("/api/incidents/{id}/footage-access")
async def footage_access(request: web.Request) -> web.Response:
    """A page of the record, newest first (``?limit=``, ``?before=<id>``); ``Link`` names the next."""
    incident_id = path_int(request, "id")
    before = request.query.get("before")
    limit = request.query.get("limit")
    rows, next_before = await audit.listing(
        request.app[SERVICES].sessionmaker, principal_of(request), incident_id,
        before=parse_int(before, "before") if before is not None else None,
        limit=parse_int(limit, "limit") if limit is not None else audit.PAGE_MAX)
    headers = {"Cache-Control": "no-store"}
    if next_before is not None:
        query = f"before={next_before}" + (f"&limit={limit}" if limit is not None else "")
        headers["Link"] = f'</api/incidents/{incident_id}/footage-access?{query}>; rel="next"'
        headers["X-Next-Before"] = str(next_before)
    return web.json_response(rows, headers=headers)
