"""Incident footage routes: ingest tokens (hosts) and the WHIP endpoint (devices, RFC 9725).

``setup(app)`` builds the archive and the ingest service from the app's services and
configuration, adds the routes and a cleanup context: at start the archive finishes what a
crash left open; at stop every WHIP session ends and its last segment is closed and hashed.

WHIP: ``POST /api/whip`` with ``Authorization: Bearer <token>`` and an ``application/sdp``
offer → 201, the answer, ``Location: /api/whip/sessions/<id>`` and an ETag; ``DELETE`` on the
Location (with the same token) ends it; ``PATCH`` (trickle, ICE restart) answers 405. A wrong,
expired or revoked token → 401 with ``WWW-Authenticate: Bearer``; a bad offer → 400.

WHEP (``media/whep.py``): ``POST /api/whep/<source id>`` by a signed-in account (session cookie
and CSRF token) with a recvonly ``application/sdp`` offer → 201, the answer and
``Location: /api/whep/sessions/<id>``; ``DELETE`` on it (the same account) ends the viewing;
``PATCH`` 405. A source outside the account's scope, unknown or not live → 404; a bad offer → 400.

An offer (WHIP, WHEP, field) is looked at only after its sender is known (token, session, link),
and at most ``MAX_OFFER_BYTES`` of it (413 beyond; ``read_offer`` streams it, or takes the bytes
the body-deadline middleware, ``hardening.py``, already read up front). WHIP sessions end when their token is revoked or
expires and when their incident closes or merges (the Incidents service's ``on_ended`` hook and
a sweep); WHEP viewings when their account's access changes (the directory's
``on_access_changed``, chained after the signalling sockets' check).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from .. import errors
from ..conference import ConferenceError
from ..media.errors import BadToken
from ..media.ingest import Ingest
from ..media.recording import Archive, RecordingSettings
from ..media.whep import Whep
from ..messages import Msg
from .auth import SESSION_COOKIE, error_response, json_body, path_int, principal_of, status_of
from .clients import client_address
from .keys import CONFIG, SERVICES

logger = logging.getLogger(__name__)

ARCHIVE = web.AppKey("footage_archive", Archive)
INGEST = web.AppKey("footage_ingest", Ingest)
WHEP = web.AppKey("footage_whep", Whep)
SESSION_PATH = "/api/whip/sessions/{session}"
WHEP_SESSION_PATH = "/api/whep/sessions/{session}"
#: The largest SDP offer read (as the conference's own limit): WHIP, WHEP and field publishes.
MAX_OFFER_BYTES = 64 * 1024
routes = web.RouteTableDef()


def setup(app: web.Application) -> None:
    """Install the archive, WHIP ingest and their routes (one call from ``create_app``)."""
    services, config = app[SERVICES], app[CONFIG]
    archive = Archive(services.sessionmaker, RecordingSettings.from_config(config))
    app[ARCHIVE] = archive
    app[INGEST] = ingest = Ingest(services.sessionmaker, services.conference, archive)
    app[WHEP] = whep = Whep(services.sessionmaker, services.conference, services.directory)
    services.incidents.on_ended.append(ingest.incident_ended)  # closed or merged: its WHIP sessions end
    previous = services.directory.on_access_changed

    def access_changed() -> None:
        if previous is not None:
            previous()
        whep.revalidate_soon()

    services.directory.on_access_changed = access_changed
    app.router.add_routes(routes)
    app.cleanup_ctx.append(_footage)


async def _footage(app: web.Application) -> AsyncIterator[None]:
    recovered = await app[ARCHIVE].recover()
    if recovered:
        logger.warning("footage segments %s were cut short by the last stop: recovered", recovered)
    sweepers = [asyncio.ensure_future(app[INGEST].run()), asyncio.ensure_future(app[WHEP].run())]
    yield
    for sweeper in sweepers:
        sweeper.cancel()
    await asyncio.gather(*sweepers, return_exceptions=True)
    await app[WHEP].close()
    await app[INGEST].close()


def _bearer(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


async def read_offer(request: web.Request) -> str | web.Response:
    """The request's SDP offer (``application/sdp``, UTF-8, at most ``MAX_OFFER_BYTES``), or the
    error response to answer: 415, 413, 400."""
    if request.content_type != "application/sdp":
        return error_response(request, 415, "unsupported_media_type", Msg("footage.sdp_type"))
    too_large = error_response(request, 413, "too_large", Msg("web.body_too_large"))
    if request.content_length is not None and request.content_length > MAX_OFFER_BYTES:
        return too_large
    body = bytearray()
    while chunk := await request.content.read(MAX_OFFER_BYTES + 1 - len(body)):
        body += chunk
        if len(body) > MAX_OFFER_BYTES:
            return too_large
    if not body:  # read already (the body-deadline middleware reads bodies up front): its cached bytes
        body = bytearray(await request.read())
        if len(body) > MAX_OFFER_BYTES:
            return too_large
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return error_response(request, 400, "invalid_sdp", Msg("footage.sdp_encoding"))


def _unauthorised(request: web.Request, exc: BadToken) -> web.Response:
    response = error_response(request, 401, exc.code, exc.msg)
    response.headers["WWW-Authenticate"] = 'Bearer realm="dutycall WHIP"'
    return response


# -- tokens (hosts) --------------------------------------------------------------------------------


@routes.post("/api/incidents/{id}/ingest-tokens")
async def issue_token(request: web.Request) -> web.Response:
    issued = await request.app[INGEST].issue(principal_of(request), path_int(request, "id"),
                                             await json_body(request))
    return web.json_response(issued, status=201, headers={"Cache-Control": "no-store"})


@routes.get("/api/incidents/{id}/ingest-tokens")
async def list_tokens(request: web.Request) -> web.Response:
    return web.json_response(await request.app[INGEST].tokens(principal_of(request), path_int(request, "id")))


@routes.delete("/api/ingest-tokens/{id}")
async def revoke_token(request: web.Request) -> web.Response:
    return web.json_response(await request.app[INGEST].revoke(principal_of(request), path_int(request, "id")))


# -- WHIP (devices) --------------------------------------------------------------------------------


@routes.post("/api/whip")
async def whip_publish(request: web.Request) -> web.Response:
    ingest = request.app[INGEST]
    try:
        await ingest.check_token(_bearer(request))  # 401 before the body is even looked at
    except BadToken as exc:
        return _unauthorised(request, exc)
    sdp = await read_offer(request)
    if isinstance(sdp, web.Response):
        return sdp
    try:
        session, answer = await ingest.publish(_bearer(request), sdp)
    except BadToken as exc:
        return _unauthorised(request, exc)
    except ConferenceError as exc:
        if isinstance(exc, errors.Invalid):  # the offer: malformed, wrong direction, no common codec
            return error_response(request, 400, exc.code, Msg("footage.bad_offer", reason=exc.msg))
        return error_response(request, status_of(exc), exc.code, exc.msg)
    location = SESSION_PATH.replace("{session}", session.id)
    return web.Response(status=201, body=answer.encode("utf-8"), content_type="application/sdp", headers={
        "Location": location, "ETag": f'"{session.id}"', "Cache-Control": "no-store"})


@routes.delete(SESSION_PATH)
async def whip_delete(request: web.Request) -> web.Response:
    try:
        await request.app[INGEST].delete(request.match_info["session"], _bearer(request))
    except BadToken as exc:
        return _unauthorised(request, exc)
    return web.Response(status=200)


@routes.patch(SESSION_PATH)
async def whip_patch(request: web.Request) -> web.Response:
    """No trickle and no ICE restart: RFC 9725 lets a server answer 405."""
    response = error_response(request, 405, "method_not_allowed", Msg("footage.no_trickle"))
    response.headers["Allow"] = "DELETE"
    return response


# -- WHEP (players) --------------------------------------------------------------------------------


@routes.post("/api/whep/{source}")
async def whep_watch(request: web.Request) -> web.Response:
    who = principal_of(request)  # 401 unsigned
    source_id = path_int(request, "source")
    sdp = await read_offer(request)
    if isinstance(sdp, web.Response):
        return sdp
    try:
        viewing, answer = await request.app[WHEP].watch(who, source_id, sdp, client_address(request),
                                                        request.cookies.get(SESSION_COOKIE))
    except ConferenceError as exc:
        if isinstance(exc, errors.Invalid):  # the offer: malformed, wrong direction, no common codec
            return error_response(request, 400, exc.code, Msg("footage.bad_offer", reason=exc.msg))
        return error_response(request, status_of(exc), exc.code, exc.msg)
    location = WHEP_SESSION_PATH.replace("{session}", viewing.id)
    return web.Response(status=201, body=answer.encode("utf-8"), content_type="application/sdp", headers={
        "Location": location, "ETag": f'"{viewing.id}"', "Cache-Control": "no-store"})


@routes.delete(WHEP_SESSION_PATH)
async def whep_delete(request: web.Request) -> web.Response:
    await request.app[WHEP].stop(principal_of(request), request.match_info["session"])
    return web.Response(status=200)


@routes.patch(WHEP_SESSION_PATH)
async def whep_patch(request: web.Request) -> web.Response:
    """No trickle and no ICE restart, as for WHIP."""
    response = error_response(request, 405, "method_not_allowed", Msg("footage.no_trickle"))
    response.headers["Allow"] = "DELETE"
    return response
