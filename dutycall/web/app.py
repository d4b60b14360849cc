"""The aiohttp application: pages, health check and the signalling WebSocket."""

from __future__ import annotations

import asyncio
import logging
import os
import pathlib
import weakref
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from .. import db
from ..conference import Conference, ConferenceSettings
from ..conference.signalling import SignallingPeer
from ..config import Config
from ..directory.bootstrap import ensure_first_admin
from ..directory.roster import Roster
from ..directory.service import Directory
from ..rollcall.coordinator import RollCallCoordinator
from ..rollcall.plans import Plans
from ..rollcall.results import Results
from ..rollcall.statistics import Statistics
from . import api, rollcalls, rooms
from ..directory.errors import DirectoryError
from ..directory.service import DEVICE_SESSION_TTL
from .auth import (
    DIRECTORY, PRINCIPAL, ROSTER, SECURE_COOKIES, SESSION_COOKIE, SIGN_IN_LIMITER, SignInLimiter, auth_middleware,
    error_response, errors_middleware, set_session_cookie,
)
from .hardening import add_security_headers, body_timeout_middleware, unexpected_error_middleware
from .live import LIVE_SOCKETS, LiveSockets

logger = logging.getLogger(__name__)

STATIC = pathlib.Path(__file__).parent / "static"
CONFIG = web.AppKey("config", Config)
CONFERENCE = web.AppKey("conference", Conference)
SOCKETS = web.AppKey("sockets", weakref.WeakSet)
CLEANUPS = web.AppKey("cleanups", set)
ENGINE = web.AppKey("engine", object)

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


async def results_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "results.html", headers={"Cache-Control": "no-cache"})


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
        return error_response(401, "not_signed_in", "sign in first")
    if not principal.may("conference.join") or not _same_origin(request):
        return error_response(403, "forbidden", "不允许从此处加入视频会议")
    live = request.app[LIVE_SOCKETS]
    if not live.admit(principal):
        return error_response(429, "too_many_connections",
                              "该账号（或终端）同时打开的连接过多，请关闭其他窗口后重试")
    ws = web.WebSocketResponse(heartbeat=WS_HEARTBEAT, max_msg_size=WS_HARD_LIMIT)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    live.add(ws, principal, request.cookies.get(SESSION_COOKIE, ""))
    # One writer per socket keeps replies and events in the order they were made.
    outbox: asyncio.Queue[dict | None] = asyncio.Queue()
    writer = asyncio.ensure_future(_write(ws, outbox))
    config = request.app[CONFIG]
    identity = {"name": principal.name, "kind": principal.kind,
                "account_id": principal.id if principal.kind == "account" else None,
                "duty_room_id": principal.duty_room_id}
    peer = SignallingPeer(request.app[CONFERENCE], outbox.put_nowait, config.client_ice_servers, identity,
                          extensions=rollcalls.signalling_extensions(request.app),
                          may_join=lambda room: rooms.may_join(request.app, principal, room))
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
        outbox.put_nowait(None)
        # Leaving the room must complete even if this handler is being cancelled.
        cleanup = asyncio.ensure_future(peer.close("disconnected"))
        request.app[CLEANUPS].add(cleanup)
        cleanup.add_done_callback(request.app[CLEANUPS].discard)
        await asyncio.shield(cleanup)
    return ws


async def _write(ws: web.WebSocketResponse, outbox: "asyncio.Queue[dict | None]") -> None:
    while (message := await outbox.get()) is not None:
        if ws.closed:
            continue
        try:
            await ws.send_json(message)
        except (ConnectionError, RuntimeError):
            pass


def create_app(config: Config | None = None) -> web.Application:
    """Build the application; the conference lives as long as the app."""
    config = config or Config()
    settings = ConferenceSettings(
        ice_addresses=config.ice_addresses,
        ice_servers=config.server_ice_servers,
        forwarding=config.forwarding,
        media_timeout=config.media_timeout,
    )
    app = web.Application(client_max_size=6 * 1024 * 1024, middlewares=[
        unexpected_error_middleware, body_timeout_middleware, errors_middleware, auth_middleware])
    app.on_response_prepare.append(add_security_headers)
    app[CONFIG] = config
    engine = db.make_engine(config.database_url)
    app[ENGINE] = engine
    app[DIRECTORY] = Directory(db.make_sessionmaker(engine))
    app[ROSTER] = Roster(app[DIRECTORY].sessionmaker)
    app[SECURE_COOKIES] = config.secure_cookies
    app[SIGN_IN_LIMITER] = SignInLimiter()
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_socket_sweeper)
    app[CONFERENCE] = Conference(settings)
    app[rollcalls.COORDINATOR] = RollCallCoordinator(app[DIRECTORY].sessionmaker, app[CONFERENCE],
                                                     evidence_gap=config.evidence_gap)
    app[rollcalls.PLANS] = Plans(app[DIRECTORY].sessionmaker, app[rollcalls.COORDINATOR])
    app[rollcalls.RESULTS] = Results(app[DIRECTORY].sessionmaker)
    app[rollcalls.STATISTICS] = Statistics(app[DIRECTORY].sessionmaker)
    app[rollcalls.COORDINATOR].on_finished = app[rollcalls.RESULTS].issue_notices
    app[SOCKETS] = weakref.WeakSet()
    app[LIVE_SOCKETS] = LiveSockets(app[DIRECTORY])
    app[DIRECTORY].on_access_changed = app[LIVE_SOCKETS].revalidate_soon
    app[rooms.FREE_ROOMS] = rooms.FreeRooms(app[CONFERENCE])
    app[CLEANUPS] = set()
    app.router.add_get("/", index)
    app.router.add_get("/directory", directory_page)
    app.router.add_get("/rollcall", rollcall_page)
    app.router.add_get("/results", results_page)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/ws", signalling)
    app.router.add_routes(api.routes)
    app.router.add_routes(rollcalls.routes)
    app.router.add_routes(rooms.routes)
    app.router.add_static("/static/", STATIC, append_version=True)
    app.on_shutdown.append(_close_sockets)
    app.on_cleanup.append(_close_conference)
    return app


async def _database(app: web.Application):  # type: ignore[no-untyped-def]
    """Migrate at start (nothing recorded is lost: migrations only add), dispose at stop."""
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
    interrupted = await app[rollcalls.COORDINATOR].recover()
    if interrupted:
        logger.warning("roll-calls %s were running when the server stopped: closed as interrupted", interrupted)
    scheduler = asyncio.ensure_future(app[rollcalls.PLANS].run(config.scheduler_interval))
    yield
    scheduler.cancel()
    await asyncio.gather(scheduler, return_exceptions=True)
    await app[rollcalls.COORDINATOR].close()
    await app[ENGINE].dispose()  # type: ignore[attr-defined]


async def _socket_sweeper(app: web.Application):  # type: ignore[no-untyped-def]
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
    for ws in list(app[SOCKETS]):
        await ws.close(code=1001, message=b"server shutdown")


async def _close_conference(app: web.Application) -> None:
    if app[CLEANUPS]:
        await asyncio.gather(*app[CLEANUPS], return_exceptions=True)
    await app[CONFERENCE].close()
