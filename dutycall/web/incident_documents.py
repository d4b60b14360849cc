"""Incident statistics and documents: the month's figures (JSON), the trend chart, the monthly
bulletin (PDF, XLSX) and one incident's printable report form (PDF). Each handler: who, check,
delegate (``incidents.statistics``, ``incidents.documents``); rendering happens off the loop there."""

from __future__ import annotations

from aiohttp import web

from ..incidents.documents import XLSX, IncidentDocuments
from ..incidents.statistics import IncidentStatistics, parse_month
from .auth import path_int, principal_of, request_language
from .keys import INCIDENTS

routes = web.RouteTableDef()


def _documents(request: web.Request) -> IncidentDocuments:
    return IncidentDocuments(request.app[INCIDENTS])


def _month(request: web.Request) -> str:
    """The checked month (422 otherwise); the current month when none is given."""
    return parse_month(request.query.get("month") or None).strftime("%Y-%m")


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}


@routes.get("/api/incident-statistics")
async def incident_statistics(request: web.Request) -> web.Response:
    figures = await IncidentStatistics(request.app[INCIDENTS].sessionmaker).monthly(
        principal_of(request), _month(request), request_language(request))
    return web.json_response(figures)


@routes.get("/api/incident-statistics/trend.png")
async def incident_trend(request: web.Request) -> web.Response:
    body = await IncidentStatistics(request.app[INCIDENTS].sessionmaker).trend_png(
        principal_of(request), _month(request))
    return web.Response(body=body, content_type="image/png", headers={"Cache-Control": "no-store"})


@routes.get("/api/incident-bulletin.pdf")
async def incident_bulletin_pdf(request: web.Request) -> web.Response:
    who = principal_of(request)
    month = _month(request)
    body = await _documents(request).bulletin_pdf(who, month)
    return web.Response(body=body, content_type="application/pdf",
                        headers=_attachment(f"incident-bulletin-{month}.pdf"))


@routes.get("/api/incident-bulletin.xlsx")
async def incident_bulletin_xlsx(request: web.Request) -> web.Response:
    who = principal_of(request)
    month = _month(request)
    body = await _documents(request).bulletin_xlsx(who, month)
    return web.Response(body=body, content_type=XLSX, headers=_attachment(f"incident-bulletin-{month}.xlsx"))


@routes.get("/api/incidents/{id}/report.pdf")
async def incident_report_pdf(request: web.Request) -> web.Response:
    who = principal_of(request)
    incident_id = path_int(request, "id")
    body = await _documents(request).report_pdf(who, incident_id)
    return web.Response(body=body, content_type="application/pdf",
                        headers=_attachment(f"incident-{incident_id}-report.pdf"))
