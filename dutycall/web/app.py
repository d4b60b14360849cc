"""The aiohttp application: pages, health check and the signalling WebSocket."""

from __future__ import annotations

import asyncio
import logging
import os
import pathlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from .. import db
from ..conference import SignallingPeer
from ..config import Config
from ..directory.bootstrap import ensure_first_admin
from ..directory.errors import DirectoryError
from ..directory.principal import PrincipalKind
from ..directory.service import DEVICE_SESSION_TTL
from ..media import evidence
from ..messages import Msg
from ..rollcall.presence import console_tag
from ..services import Services, build_services
from . import api, footage, footage_views, incident_documents, incidents, metrics, notices, rollcalls, rooms, wall
from . import console as console_pages
from . import field as field_links
from . import greeting_media as greeting_videos
from . import greetings as greeting_pages
from . import rtsp as rtsp_pulls
from .auth import (
    PRINCIPAL,
    SESSION_COOKIE,
    auth_middleware,
    error_response,
    errors_middleware,
    request_language,
    set_session_cookie,
)
from .clients import CLIENT_ADDRESSES, ClientAddresses
from .hardening import add_security_headers, body_timeout_middleware, hide_server_version, unexpected_error_middleware
from .keys import (
    ALERTING,
    CLEANUPS,
    CONFERENCE,
    CONFIG,
    COORDINATOR,
    DIRECTORY,
    ENGINE,
    FREE_ROOMS,
    INCIDENTS,
    LIVE_SOCKETS,
    PLANS,
    RESULTS,
    ROSTER,
    SECURE_COOKIES,
    SERVICES,
    SIGN_IN_LIMITER,
    STATISTICS,
    SUPERVISION,
)
from .limits import SignInLimiter
from .live import LiveSockets
from .meetings import FreeRooms

logger = logging.getLogger(__name__)

STATIC = pathlib.Path(__file__).parent / "static"

#: Frames above this are refused by aiohttp itself (the connection closes); frames
#: between MAX_MESSAGE_BYTES and this get an error reply and the connection stays.
WS_HARD_LIMIT = 1024 * 1024
#: Ping interval; a client that does not answer within half of it is dropped, so one
#: that vanishes without closing is noticed within ~6 s (media stalls sooner: 3 s).
WS_HEARTBEAT = 4.0


async def index(request: web.Request) -> web.StreamResponse:
    """The console. ``/?device=TOKEN`` (a duty room's console link) is exchanged here for the
    session cookie and redirected to a clean URL, so the token stays in no history, log or Referer."""
    device_token = request.query.get("device")
    if device_token and request.headers.get("Sec-Fetch-Site", "none") not in ("none", "same-origin"):
        # Opened from another site: exchanging would swap the visitor's own session for a
        # console's (login CSRF). The link is dropped; a duty-room PC opens it directly.
        clean = {k: v for k, v in request.query.items() if k == "lang"}
        raise web.HTTPSeeOther(request.url.with_query(clean).relative())
    if device_token:
        try:
            token, _ = await request.app[DIRECTORY].device_sign_in(device_token)
        except DirectoryError:
            pass  # the page says the link is invalid or revoked
        else:
            clean = {k: v for k, v in request.query.items() if k == "lang"}
            redirect = web.HTTPSeeOther(request.url.with_query(clean).relative())
            set_session_cookie(request, redirect, token, int(DEVICE_SESSION_TTL.total_seconds()))
            redirect.headers["Cache-Control"] = "no-store"
            raise redirect
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def directory_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "directory.html", headers={"Cache-Control": "no-cache"})


async def rollcall_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "rollcall.html", headers={"Cache-Control": "no-cache"})


async def command_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "command.html", headers={"Cache-Control": "no-cache"})


async def results_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "results.html", headers={"Cache-Control": "no-cache"})


async def incidents_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "incidents.html", headers={"Cache-Control": "no-cache"})


async def healthz(request: web.Request) -> web.Response:
    # No version: an attacker learns nothing about which release (and which holes) runs here.
    conference = request.app[CONFERENCE]
    return web.json_response({"status": "ok", **conference.stats()})


def _same_origin(request: web.Request) -> bool:
    """Browsers always send Origin on WebSockets; refuse other sites riding our cookie.

    Scheme and host:port must both match: a plain-http page on the same host (another
    service, a downgrade) must not ride an HTTPS deployment's cookie."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser (the Python client, load tools)
    parts = urlsplit(origin)
    scheme = "https" if request.secure or request.app.get(SECURE_COOKIES, False) else "http"
    return parts.scheme == scheme and parts.netloc == request.host


async def signalling(request: web.Request) -> web.StreamResponse:
    principal = request.get(PRINCIPAL)
    if principal is None:
        return error_response(request, 401, "not_signed_in", Msg("web.sign_in_first"))
    if not principal.may("conference.join") or not _same_origin(request):
        return error_response(request, 403, "forbidden", Msg("web.join_not_allowed"))
    live = request.app[LIVE_SOCKETS]
    if not live.admit(principal):
        return error_response(request, 429, "too_many_connections", Msg("web.too_many_connections"))
    ws = web.WebSocketResponse(heartbeat=WS_HEARTBEAT, max_msg_size=WS_HARD_LIMIT)
    live.add(ws, principal, request.cookies.get(SESSION_COOKIE, ""))  # counted before any await
    try:
        await ws.prepare(request)
    except BaseException:
        live.discard(ws)
        raise
    # One writer per socket keeps replies and events in the order they were made.
    outbox: asyncio.Queue[dict | None] = asyncio.Queue()
    writer = asyncio.ensure_future(_write(ws, outbox))
    request.app[CLEANUPS].add(writer)  # held until it drains, so shutdown waits for it
    writer.add_done_callback(request.app[CLEANUPS].discard)
    config = request.app[CONFIG]
    identity = {"name": principal.name, "kind": principal.kind,
                "account_id": principal.id if principal.kind == PrincipalKind.ACCOUNT else None}
    # A console is filed under its duty room (rollcall's presence finds it by this tag) and
    # shows its duty room to the others; the conference itself knows no duty rooms.
    console = principal.duty_room_id is not None
    # A host or viewer may follow a roll-call's board over this socket (scope checked there).
    following = rollcalls.BoardFollowing(request.app, principal, outbox.put_nowait)
    relay_watches = footage_views.watching(request, principal, outbox.put_nowait)  # relayed footage (media/relay.py)
    peer = SignallingPeer(request.app[CONFERENCE], outbox.put_nowait, config.client_ice_servers, identity,
                          extensions={**rollcalls.signalling_extensions(request.app), **following.extensions(),
                                      **footage_views.signalling_extensions(relay_watches)},
                          may_join=lambda room: rooms.may_join(request.app, principal, room),
                          # and roll-calls'; a greeting's names what the one joining watches
                          room_info=lambda room: greeting_pages.room_info(request.app, room, peer.participant),
                          tag=console_tag(principal.duty_room_id) if principal.duty_room_id is not None else None,
                          shown={"duty_room_id": principal.duty_room_id} if console else None,
                          lang=request_language(request))  # /ws?lang=, or the page's cookie
    console_pages.name_rooms(peer, request.app, principal)  # joined.room_info: the room's title too
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                # Shielded: aiohttp cancels the handler when the client drops, and a
                # half-done request must still finish or undo itself, not vanish.
                await asyncio.shield(peer.handle_text(msg.data))
            elif msg.type == WSMsgType.BINARY:
                peer.handle_binary()
            elif msg.type == WSMsgType.ERROR:
                logger.info("websocket error: %s", ws.exception())
    finally:
        logger.info("signalling socket closed (%s)", ws.close_code)
        live.discard(ws)
        following.close_all()
        relay_watches.close()
        outbox.put_nowait(None)
        # Leaving the room must complete even if this handler is being cancelled.
        cleanup = asyncio.ensure_future(peer.close("disconnected"))
        request.app[CLEANUPS].add(cleanup)
        cleanup.add_done_callback(request.app[CLEANUPS].discard)
        await asyncio.shield(cleanup)
    return ws


async def _write(ws: web.WebSocketResponse, outbox: asyncio.Queue[dict | None]) -> None:
    while (message := await outbox.get()) is not None:
        if ws.closed:
            continue
        try:
            await ws.send_json(message)
        except (ConnectionError, RuntimeError):
            pass


def create_app(config: Config | None = None, services: Services | None = None) -> web.Application:
    """Build the application from one services object; each resource starts and stops in its
    own cleanup context, in dependency order."""
    config = config or Config()
    services = services or build_services(config)
    app = web.Application(client_max_size=6 * 1024 * 1024, middlewares=[
        unexpected_error_middleware, errors_middleware, auth_middleware, body_timeout_middleware])
    app.on_response_prepare.append(add_security_headers)
    hide_server_version()
    app[SERVICES] = services
    app[CONFIG] = config
    app[ENGINE] = services.engine
    app[DIRECTORY] = services.directory
    app[ROSTER] = services.roster
    app[CONFERENCE] = services.conference
    app[COORDINATOR] = services.coordinator
    app[PLANS] = services.plans
    app[RESULTS] = services.results
    app[STATISTICS] = services.statistics
    app[SUPERVISION] = services.supervision
    app[INCIDENTS] = services.incidents
    app[ALERTING] = services.alerting
    app[SECURE_COOKIES] = config.secure_cookies
    app[SIGN_IN_LIMITER] = SignInLimiter()
    app[CLIENT_ADDRESSES] = ClientAddresses(config.trusted_proxies)
    app[LIVE_SOCKETS] = LiveSockets(services.directory)
    services.directory.on_access_changed = app[LIVE_SOCKETS].revalidate_soon
    app[FREE_ROOMS] = FreeRooms(services.conference)
    app[CLEANUPS] = set()
    # Started in this order, stopped in the reverse: the database outlives everything that
    # writes to it; the conference closes after roll-calls stop driving it.
    app.cleanup_ctx.extend([_database, _evidence_pool, _conference, _rollcalls, _incidents, _socket_sweeper])
    app.router.add_get("/", index)
    app.router.add_get("/directory", directory_page)
    app.router.add_get("/rollcall", rollcall_page)
    app.router.add_get("/command", command_page)  # the host's command seat and the wall (command.js)
    app.router.add_get("/results", results_page)
    app.router.add_get("/incidents", incidents_page)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/ws", signalling)
    app.router.add_routes(api.routes)
    app.router.add_routes(rollcalls.routes)
    app.router.add_routes(rooms.routes)
    app.router.add_routes(console_pages.routes)  # the rooms a console may join, by name
    app.router.add_routes(notices.routes)
    app.router.add_routes(incidents.routes)
    app.router.add_routes(incident_documents.routes)
    footage.setup(app)  # incident footage: the archive, WHIP ingest, their routes and cleanup
    footage_views.setup(app)  # live relay to consoles, playback and download, the footage access audit
    field_links.setup(app)  # field streaming links (after footage: it records into its archive)
    rtsp_pulls.setup(app)  # RTSP pull sources (after footage: they record into its archive)
    greeting_videos.setup(app)  # pre-recorded greeting videos: upload, prepare once, play out (media/playout.py)
    greeting_pages.setup(app)  # leadership greetings: receipts, the reply floor, the leader's page
    wall.setup(app)  # the wall's keyframe thumbnails (media/wall.py)
    metrics.setup(app)  # /metrics for Prometheus, the event-loop lag probe, --metrics-address
    app.router.add_static("/static/", STATIC, append_version=True)
    app.on_shutdown.append(_close_sockets)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    """Migrate at start (nothing recorded is lost: migrations only add), create the first
    administrator on a new database; dispose of the engine at stop."""
    config = app[CONFIG]
    await db.upgrade(config.database_url)
    admin = await ensure_first_admin(app[DIRECTORY].sessionmaker, config.admin_username, config.admin_password)
    if admin is not None:
        if admin.generated:
            # Never in the log: logs are shipped and kept. A file only root can read, as GitLab
            # does with its initial root password; the operator deletes it after signing in.
            path = write_secret_file(initial_password_path(config.database_url), admin.password + "\n")
            message = (f"first run: sign in as {admin.username!r} with the password in {path} "
                       "(readable by root only); change it, then delete the file")
        else:
            message = f"first run: sign in as {admin.username!r} with DUTYCALL_ADMIN_PASSWORD"
        logger.warning(message)
        print(message, flush=True)
    yield
    await app[ENGINE].dispose()


async def _evidence_pool(app: web.Application) -> AsyncIterator[None]:
    """The evidence worker process (spawned on first use) goes with the server."""
    yield
    await asyncio.to_thread(evidence.shutdown_pool)


async def _conference(app: web.Application) -> AsyncIterator[None]:
    """Media workers start first; rooms close after every dropped socket's leave has finished."""
    await app[CONFERENCE].start()
    yield
    if app[CLEANUPS]:
        await asyncio.gather(*app[CLEANUPS], return_exceptions=True)
    await app[CONFERENCE].close()


async def _rollcalls(app: web.Application) -> AsyncIterator[None]:
    """Roll-calls a stopped server left running are closed as interrupted; the plan scheduler runs."""
    interrupted = await app[COORDINATOR].recover()
    if interrupted:
        logger.warning("roll-calls %s were running when the server stopped: closed as interrupted", interrupted)
    scheduler = asyncio.ensure_future(app[PLANS].run(app[CONFIG].scheduler_interval))
    yield
    scheduler.cancel()
    await asyncio.gather(scheduler, return_exceptions=True)
    await app[COORDINATOR].close()


async def _incidents(app: web.Application) -> AsyncIterator[None]:
    """The incident deadline watch (late and missing reports flagged and supervised) and the
    alert webhook's sender."""
    watch = asyncio.ensure_future(app[INCIDENTS].run(app[CONFIG].incident_interval))
    sender = asyncio.ensure_future(app[ALERTING].run())  # the alert webhook, if one is configured
    yield
    for task in (watch, sender):
        task.cancel()
    await asyncio.gather(watch, sender, return_exceptions=True)


async def _socket_sweeper(app: web.Application) -> AsyncIterator[None]:
    """Open signalling sockets are re-checked against their sessions now and then, besides
    at once after every change of access (sign-out, revocation, reset, deactivation)."""
    task = asyncio.ensure_future(app[LIVE_SOCKETS].sweep_forever())
    yield
    task.cancel()
    await asyncio.gather(task, app[LIVE_SOCKETS].pending(), return_exceptions=True)


def initial_password_path(database_url: str) -> pathlib.Path:
    """Beside the SQLite file (``data/`` by default), else ``data/`` under the working directory."""
    if database_url.startswith("sqlite:///"):
        return pathlib.Path(database_url[len("sqlite:///"):]).parent / "initial-admin-password"
    return pathlib.Path("data") / "initial-admin-password"


def write_secret_file(path: pathlib.Path, text: str) -> pathlib.Path:
    """Write ``text`` to a file readable by its owner only (created 0600, never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path.resolve()


async def _close_sockets(app: web.Application) -> None:
    for ws in app[LIVE_SOCKETS].all():
        await ws.close(code=1001, message=b"server shutdown")
