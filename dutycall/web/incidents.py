"""Incident routes: the page, the report form's catalogue, reports, verification, instructions,
supervision. Each handler: who, check, delegate (``incidents.service``)."""

from __future__ import annotations

from aiohttp import web

from ..incidents.catalog import catalogue
from .auth import json_body, path_int, principal_of, request_language
from .keys import ALERTING, INCIDENTS

routes = web.RouteTableDef()
FILTERS = ("status", "category", "level", "unit_id", "from", "to")


@routes.get("/api/incident-catalogue")
async def incident_catalogue(request: web.Request) -> web.Response:
    principal_of(request)
    return web.json_response(catalogue(request_language(request)))


@routes.get("/api/incidents")
async def list_incidents(request: web.Request) -> web.Response:
    filters = {name: request.query[name] for name in FILTERS if request.query.get(name)}
    return web.json_response(await request.app[INCIDENTS].find(principal_of(request), filters))


@routes.post("/api/incidents")
async def create_incident(request: web.Request) -> web.Response:
    created = await request.app[INCIDENTS].create(principal_of(request), await json_body(request))
    return web.json_response(created, status=201)


@routes.get("/api/incidents/{id}")
async def incident_detail(request: web.Request) -> web.Response:
    return web.json_response(await request.app[INCIDENTS].detail(principal_of(request), path_int(request, "id")))


@routes.post("/api/incidents/{id}/reports")
async def add_report(request: web.Request) -> web.Response:
    result = await request.app[INCIDENTS].report(principal_of(request), path_int(request, "id"),
                                                 await json_body(request))
    return web.json_response(result, status=201)


@routes.post("/api/incidents/{id}/reports/{report_id}/verify")
async def verify_report(request: web.Request) -> web.Response:
    return web.json_response(await request.app[INCIDENTS].verify(
        principal_of(request), path_int(request, "id"), path_int(request, "report_id"), await json_body(request)))


@routes.post("/api/incidents/{id}/close")
async def close_incident(request: web.Request) -> web.Response:
    return web.json_response(await request.app[INCIDENTS].close(principal_of(request), path_int(request, "id")))


@routes.post("/api/incidents/{id}/merge")
async def merge_incidents(request: web.Request) -> web.Response:
    return web.json_response(await request.app[INCIDENTS].merge(
        principal_of(request), path_int(request, "id"), await json_body(request)))


@routes.post("/api/incidents/{id}/instructions")
async def instruct(request: web.Request) -> web.Response:
    result = await request.app[INCIDENTS].instruct(principal_of(request), path_int(request, "id"),
                                                   await json_body(request))
    return web.json_response(result, status=201)


@routes.post("/api/incidents/{id}/notices")
async def supervise(request: web.Request) -> web.Response:
    result = await request.app[INCIDENTS].supervise(principal_of(request), path_int(request, "id"),
                                                    await json_body(request))
    return web.json_response(result, status=201)


@routes.post("/api/incident-instructions/{id}/acknowledge")
async def acknowledge(request: web.Request) -> web.Response:
    return web.json_response(await request.app[INCIDENTS].acknowledge(principal_of(request),
                                                                      path_int(request, "id")))


@routes.post("/api/incident-instructions/{id}/feedback")
async def feedback(request: web.Request) -> web.Response:
    return web.json_response(await request.app[INCIDENTS].feedback(
        principal_of(request), path_int(request, "id"), await json_body(request)))


# -- live alerts (incidents/alerting.py) -----------------------------------------------------------

@routes.get("/api/alerts")
async def pending_alerts(request: web.Request) -> web.Response:
    """A console's unacknowledged alerts (it asks when it connects; new ones come over /ws)."""
    return web.json_response(await request.app[ALERTING].pending(principal_of(request)))


@routes.post("/api/alerts/{id}/acknowledge")
async def acknowledge_alert(request: web.Request) -> web.Response:
    return web.json_response(await request.app[ALERTING].acknowledge(principal_of(request), path_int(request, "id")))


@routes.get("/api/notification-groups")
async def notification_groups(request: web.Request) -> web.Response:
    return web.json_response(await request.app[ALERTING].groups(principal_of(request)))


@routes.post("/api/notification-groups")
async def create_notification_group(request: web.Request) -> web.Response:
    group = await request.app[ALERTING].save_group(principal_of(request), await json_body(request))
    return web.json_response(group, status=201)


@routes.put("/api/notification-groups/{id}")
async def update_notification_group(request: web.Request) -> web.Response:
    return web.json_response(await request.app[ALERTING].save_group(
        principal_of(request), await json_body(request), path_int(request, "id")))


@routes.get("/api/webhook-deliveries")
async def webhook_deliveries(request: web.Request) -> web.Response:
    """The alert webhook's log: every delivery and each attempt (status code or error, duration)."""
    return web.json_response(await request.app[ALERTING].deliveries(principal_of(request),
                                                                    request.query.get("status")))
