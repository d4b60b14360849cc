"""RTSP pull routes (``media/rtsp.py``): hosts add, list and stop the RTSP sources of an incident.

``POST /api/incidents/{id}/rtsp-sources`` ``{url, label}`` → 201 and the source (its URL masked:
credentials never leave the server); a URL that is not ``rtsp://`` or ``rtsps://`` with a host, or
whose host or port ``rtsp_allow`` (DUTYCALL_RTSP_ALLOW) does not let the server reach → 400.
``GET`` the same path lists them with their state ("connecting", "live", "retrying" with
``next_attempt_at``, "stopped"; ``last_error`` one of "unreachable", "not_rtsp", "auth_failed",
"timeout", "ended"). ``DELETE /api/rtsp-sources/{id}`` stops one. Scope as ingest
tokens: an account with ``incidents.manage`` whose subtree holds the incident (404 otherwise).

``setup(app)`` (one call from ``create_app``, after the footage archive exists) adds the routes
and a cleanup context: at start the sources not stopped are pulled again; at stop every pull ends
(its recording closed and hashed) and stays due to resume.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from ..media.rtsp import AllowPolicy, BadUrl, RtspPulls
from .auth import error_response, json_body, path_int, principal_of
from .footage import ARCHIVE
from .keys import CONFIG, INCIDENTS, SERVICES

logger = logging.getLogger(__name__)

RTSP = web.AppKey("footage_rtsp", RtspPulls)
routes = web.RouteTableDef()


def setup(app: web.Application) -> None:
    """Install the RTSP pulls and their routes (after ``footage.setup``: they record into its archive)."""
    services = app[SERVICES]
    app[RTSP] = RtspPulls(services.sessionmaker, services.conference, app[ARCHIVE],
                          policy=AllowPolicy(app[CONFIG].rtsp_allow))
    # A closed or merged incident's sources stop at once (the pulls also check every 30 s).
    hooks = getattr(app[INCIDENTS], "on_ended", None)
    if isinstance(hooks, list):
        hooks.append(app[RTSP].incident_ended)
    app.router.add_routes(routes)
    app.cleanup_ctx.append(_rtsp)


async def _rtsp(app: web.Application) -> AsyncIterator[None]:
    await app[RTSP].resume()
    yield
    await app[RTSP].close()


@routes.post("/api/incidents/{id}/rtsp-sources")
async def add_source(request: web.Request) -> web.Response:
    try:
        added = await request.app[RTSP].add(principal_of(request), path_int(request, "id"), await json_body(request))
    except BadUrl as exc:
        return error_response(request, 400, exc.code, exc.msg, exc.errors)
    return web.json_response(added, status=201, headers={"Cache-Control": "no-store"})


@routes.get("/api/incidents/{id}/rtsp-sources")
async def list_sources(request: web.Request) -> web.Response:
    return web.json_response(await request.app[RTSP].sources(principal_of(request), path_int(request, "id")),
                             headers={"Cache-Control": "no-store"})


@routes.delete("/api/rtsp-sources/{id}")
async def stop_source(request: web.Request) -> web.Response:
    return web.json_response(await request.app[RTSP].stop(principal_of(request), path_int(request, "id")))
